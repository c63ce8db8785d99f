/**
 * A whole Shoal in one process: the embedded emulators, the resources the CDK stack would create, and
 * the real function handlers wired the way AWS wires them (docs/architecture.md §3.6):
 *
 *   HTTP gateway (API Gateway v2 events) ─► functions/api
 *   SQS shoal-build (event source mapping, batch ≤ 10, partial failures) ─► functions/index-builder
 *   S3 ObjectCreated under imports/ (s3rver events, as S3 event notifications) ─► SQS shoal-import
 *   SQS shoal-import (event source mapping, batch 1, partial failures) ─► functions/import
 *   schedule every `tickMs` (EventBridge Scheduled Event) ─► functions/index-builder
 *   Lambda Invoke API (`SHOAL_LAMBDA_ENDPOINT`), `shoal-shard-search` ─► functions/shard-search
 *
 * The handlers read their configuration from the environment at first use, so the environment is set
 * first and the handler modules are imported after. `npm start` (`main.ts`) is a thin CLI over
 * `startLocalShoal`; tests call it directly.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyResultV2,
  Context,
  ScheduledEvent,
  SQSBatchResponse,
  SQSEvent,
} from 'aws-lambda';
import { resetConfig } from '../../shared/config.js';
import { settled } from '../../shared/ingest/ingest.js';
import { sqsQueueProducer } from '../../shared/queue/messages.js';
import { makeClientConfig } from './aws-clients.js';
import { FUNCTION_SIZING, FUNCTION_TIMEOUT_SECONDS, shardCacheMb } from '../cdk/settings.js';
import { bootstrapLocalResources, type LocalResources } from './bootstrap.js';
import { startEmulators, type EmulatorEndpoints, type S3EventNotification } from './emulators.js';
import { formatRequestLog, startGateway } from './gateway.js';
import { makeLambdaContext, startLambdaEmulator } from './lambda-emulator.js';
import { startSchedule, tickPeriodMs } from './scheduler.js';
import { startSearchNodeThread } from './search-node-thread.js';
import { BuilderThread } from './builder-thread.js';
import { startSqsPoller } from './sqs-poller.js';
import { IMPORTS_FOLDER_PATTERN, IMPORTS_PREFIX } from '../../shared/storage/keys.js';

export const LOCAL_NAMES = {
  bucket: 'shoal-local',
  catalogTable: 'shoal-catalog',
  recordsTable: 'shoal-records',
  buildQueue: 'shoal-build',
  importQueue: 'shoal-import',
  buildTaskQueue: 'shoal-build-task',
  apiFunction: 'shoal-api',
  indexBuilderFunction: 'shoal-index-builder',
  buildWorkerFunction: 'shoal-build-worker',
  importFunction: 'shoal-import',
  shardSearchFunction: 'shoal-shard-search',
  buildTickRule: 'shoal-build-tick',
} as const;

/** Function timeouts: the CDK stack's own (infra/cdk/settings.ts). */
export const LOCAL_TIMEOUTS_MS = {
  api: FUNCTION_TIMEOUT_SECONDS.api * 1000,
  indexBuilder: FUNCTION_TIMEOUT_SECONDS.indexBuilder * 1000,
  shardSearch: FUNCTION_TIMEOUT_SECONDS.shardSearch * 1000,
  import: FUNCTION_TIMEOUT_SECONDS.importer * 1000,
  buildWorker: FUNCTION_TIMEOUT_SECONDS.buildWorker * 1000,
} as const;

/**
 * Build-worker threads of the local stack (2: this machine's cores; on AWS the worker function's reserved
 * concurrency, CDK context `buildWorkers`). More threads than cores only make each task slower.
 */
export const LOCAL_BUILD_WORKERS = 2;

/**
 * The local import function's timeout: the CDK's (300 s) unless `SHOAL_LOCAL_IMPORT_TIMEOUT_S` says
 * otherwise. Crash tests shorten it: a killed import's lease (its deadline + 60 s) then expires, and
 * the sweeper re-queues the job, within a minute or two instead of ~6. Must exceed
 * SHOAL_IMPORT_SAFETY_MARGIN_S (default 30 s), the time an invocation keeps for its checkpoint.
 */
export function localImportTimeoutMs(env: Record<string, string | undefined>): number {
  const raw = env.SHOAL_LOCAL_IMPORT_TIMEOUT_S;
  if (raw === undefined || raw === '') return LOCAL_TIMEOUTS_MS.import;
  const s = Number(raw);
  if (!Number.isInteger(s) || s < 10 || s > FUNCTION_TIMEOUT_SECONDS.importer) {
    throw new RangeError(
      `SHOAL_LOCAL_IMPORT_TIMEOUT_S must be an integer in [10, ${FUNCTION_TIMEOUT_SECONDS.importer}], got ${raw}`,
    );
  }
  return s * 1000;
}

export interface StartLocalShoalOptions {
  /** Gateway port; 0 = ephemeral. Default 8787. */
  port?: number;
  /** Gateway bind address. Default 127.0.0.1. */
  host?: string;
  /** Persisted state (S3 objects, DynamoDB LevelDB, api-key, shard cache). */
  dataDir: string;
  /** Default: env SHOAL_API_KEY, else `<dataDir>/api-key`, else a new one saved there. */
  apiKey?: string;
  /** No banner and no per-request logging. */
  silent?: boolean;
  /**
   * Period of the index-builder catch-up tick, which also runs the import sweeper. Default: env
   * `SHOAL_LOCAL_TICK_S`, else 30 s.
   */
  tickMs?: number;
  /** S3 emulator port; 0 or undefined = ephemeral (`npm start` defaults to 8788 so saved commands keep working). */
  s3Port?: number;
  /**
   * Where request-log lines (`GET /v1/collections 200 3.1ms req=<id>`) go; false = no request log.
   * Default: stdout, unless `silent`.
   */
  requestLog?: ((line: string) => void) | false;
  /**
   * Run a resident search node (its own thread) and send searcher parts to it instead of the slot functions
   * (docs/architecture.md §7.7). Default: env `SHOAL_LOCAL_SEARCH_NODES=1`.
   */
  searchNodes?: boolean;
}

export interface LocalShoalEndpoints extends EmulatorEndpoints {
  /** The Lambda Invoke API endpoint (`SHOAL_LAMBDA_ENDPOINT`). */
  lambda: string;
}

export interface LocalShoal {
  /** The HTTP API base URL, e.g. `http://127.0.0.1:8787`. */
  url: string;
  apiKey: string;
  /** Absolute data dir. */
  dataDir: string;
  endpoints: LocalShoalEndpoints;
  resources: LocalResources;
  /** Whether the API key was generated by this start (and saved to `<dataDir>/api-key`). */
  apiKeyGenerated: boolean;
  /** Stops gateway, poller, schedule and Lambda emulator, then the emulators; restores the environment. */
  stop(): Promise<void>;
}

// The handler contracts (functions/*/handler.ts). Typed with a Context parameter: a handler declared
// with the event only is assignable too.
type ApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2>;
type ShardSearchHandler = (payload: unknown, context: Context) => Promise<unknown>;
type ImportHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

/**
 * An s3rver event as S3 delivers it to SQS: keys URL-encoded the way S3 encodes them in
 * notifications (form encoding: `+` for spaces, `/` kept).
 */
export function toS3Notification(event: S3EventNotification): S3EventNotification {
  return {
    Records: event.Records.map((r) => ({
      ...r,
      s3: {
        ...r.s3,
        object: { ...r.s3.object, key: encodeURIComponent(r.s3.object.key).replace(/%20/g, '+').replace(/%2F/g, '/') },
      },
    })),
  };
}

export async function startLocalShoal(opts: StartLocalShoalOptions): Promise<LocalShoal> {
  const dataDir = path.resolve(opts.dataDir);
  const log = opts.silent ? () => undefined : (msg: string) => console.log(msg);
  await mkdir(dataDir, { recursive: true });
  const { apiKey, generated } = await resolveApiKey(dataDir, opts.apiKey);

  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  const savedEnv = new Map<string, string | undefined>();
  const setEnv = (key: string, value: string): void => {
    if (!savedEnv.has(key)) savedEnv.set(key, process.env[key]);
    process.env[key] = value;
  };
  let resetRuntime: (() => void) | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Reverse start order: entry points first (no new work), then the functions, then the emulators
      // (dynalite closes its LevelDB last, after every write has landed).
      const errors: unknown[] = [];
      for (const s of stops.reverse()) {
        try {
          await s.stop();
        } catch (err) {
          errors.push(err);
          if (!opts.silent) console.error(`[shoal] stopping ${s.name} failed`, err);
        }
      }
      // Everything that could use the runtime has stopped: release its shards and clients.
      try {
        resetRuntime?.();
      } catch (err) {
        errors.push(err);
      }
      for (const [key, value] of savedEnv) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      resetConfig();
      if (errors.length > 0) throw errors[0];
    })();
    return stopping;
  };

  try {
    // The SDK's Node 20 end-of-support notice (docs/local-emulators.md) is noise here; set before any client exists.
    setEnv(
      'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ?? 'true',
    );
    // EMF metrics are CloudWatch's format; on a laptop they would only flood the terminal.
    setEnv('POWERTOOLS_METRICS_DISABLED', process.env.POWERTOOLS_METRICS_DISABLED ?? 'true');
    // Logs as one readable line each (shared/log.ts); POWERTOOLS_LOG_LEVEL still picks the level.
    setEnv('SHOAL_LOG_FORMAT', process.env.SHOAL_LOG_FORMAT ?? 'pretty');
    const emulators = await startEmulators({ dataDir, silent: true, ports: { s3: opts.s3Port ?? 0 } });
    stops.push({ name: 'emulators', stop: () => emulators.stop() });
    // Stopped just before the emulators: acknowledged writes' leases settle while DynamoDB is still up.
    stops.push({ name: 'write-lease settling', stop: () => settled() });
    const { endpoints } = emulators;

    const resources = await bootstrapLocalResources({
      endpoints,
      names: {
        bucket: LOCAL_NAMES.bucket,
        catalogTable: LOCAL_NAMES.catalogTable,
        recordsTable: LOCAL_NAMES.recordsTable,
        buildQueue: LOCAL_NAMES.buildQueue,
        importQueue: LOCAL_NAMES.importQueue,
        buildTaskQueue: LOCAL_NAMES.buildTaskQueue,
      },
    });

    // Registered before the handler module is loaded (its config needs this endpoint); bound below.
    const bound: { shardSearch?: ShardSearchHandler } = {};
    const lambda = await startLambdaEmulator({
      region: endpoints.region,
      functions: {
        [LOCAL_NAMES.shardSearchFunction]: {
          timeoutMs: LOCAL_TIMEOUTS_MS.shardSearch,
          handler: async (payload, context) => {
            if (!bound.shardSearch) throw new Error('shard-search handler not loaded yet');
            return bound.shardSearch(payload, context);
          },
        },
      },
    });
    stops.push({ name: 'lambda emulator', stop: () => lambda.stop() });

    // --- Environment (shared/config.ts), then the handlers.
    setEnv('AWS_REGION', endpoints.region);
    setEnv('AWS_ACCESS_KEY_ID', endpoints.credentials.accessKeyId);
    setEnv('AWS_SECRET_ACCESS_KEY', endpoints.credentials.secretAccessKey);
    setEnv('SHOAL_BUCKET', resources.bucket);
    setEnv('SHOAL_CATALOG_TABLE', resources.catalogTable);
    setEnv('SHOAL_RECORDS_TABLE', resources.recordsTable);
    setEnv('SHOAL_BUILD_QUEUE_URL', resources.buildQueueUrl);
    setEnv('SHOAL_IMPORT_QUEUE_URL', resources.importQueueUrl);
    setEnv('SHOAL_BUILD_TASK_QUEUE_URL', resources.buildTaskQueueUrl);
    setEnv('SHOAL_S3_ENDPOINT', endpoints.s3);
    setEnv('SHOAL_DYNAMODB_ENDPOINT', endpoints.dynamodb);
    setEnv('SHOAL_SQS_ENDPOINT', endpoints.sqs);
    setEnv('SHOAL_LAMBDA_ENDPOINT', lambda.endpoint);
    setEnv('SHOAL_SHARD_SEARCH_FUNCTION', LOCAL_NAMES.shardSearchFunction);
    setEnv('SHOAL_SHARD_CACHE_DIR', path.join(dataDir, 'shard-cache'));
    // The api function's cache on AWS (half its memory, as the stack sets it), unless the caller chose one.
    setEnv(
      'SHOAL_SHARD_CACHE_MB',
      process.env.SHOAL_SHARD_CACHE_MB ?? String(shardCacheMb(FUNCTION_SIZING.api.memoryMb)),
    );
    // One process serves every request locally: drift reports are fresh within a second.
    setEnv('SHOAL_DRIFT_FLUSH_MS', process.env.SHOAL_DRIFT_FLUSH_MS ?? '1000');
    // Keep a key list from the environment intact; otherwise accept the resolved key.
    if (!process.env.SHOAL_API_KEY?.split(',').some((k) => k.trim() === apiKey)) setEnv('SHOAL_API_KEY', apiKey);
    setEnv(
      'SHOAL_LOCAL_INFO',
      JSON.stringify({
        s3Endpoint: endpoints.s3,
        bucket: resources.bucket,
        region: endpoints.region,
        accessKeyId: endpoints.credentials.accessKeyId,
        secretAccessKey: endpoints.credentials.secretAccessKey,
        importPrefix: IMPORTS_FOLDER_PATTERN,
      }),
    );
    if (opts.searchNodes ?? process.env.SHOAL_LOCAL_SEARCH_NODES === '1') {
      // One resident node for every slot, in its own thread with its own cache (a Fargate task on AWS);
      // the api sends slot parts to it instead of invoking the slot functions (docs/architecture.md §7.7).
      const node = await startSearchNodeThread({ SHOAL_SHARD_CACHE_DIR: path.join(dataDir, 'shard-cache-node') });
      stops.push({ name: 'search node', stop: () => node.stop() });
      setEnv('SHOAL_SEARCH_NODES', node.url);
      log(`[shoal] search node at ${node.url} (every slot; the slot functions are its fallback)`);
    }
    resetConfig();

    const [logModule, runtimeModule, apiModule, shardSearchModule, importModule] = await Promise.all([
      import('../../shared/log.js'),
      import('../../shared/runtime.js'),
      import('../../functions/api/handler.js'),
      import('../../functions/shard-search/handler.js'),
      import('../../functions/import/handler.js'),
    ]);
    // The runtime (clients, caches) is built per configuration: drop one left by an earlier start in
    // this process, and drop ours on stop, so a restart in the same process sees the new endpoints.
    runtimeModule.resetRuntime();
    resetRuntime = runtimeModule.resetRuntime;
    // The logger may have been created before this start set (or a CLI flag changed) the level.
    logModule.applyLogLevelFromEnv();
    const api: ApiHandler = apiModule.handler;
    // Its own thread, as its own sandbox on AWS (builder-thread.ts); started after the environment is set.
    const builderThread = new BuilderThread({
      functionName: LOCAL_NAMES.indexBuilderFunction,
      timeoutMs: LOCAL_TIMEOUTS_MS.indexBuilder,
      region: endpoints.region,
    });
    stops.push({ name: 'builder thread', stop: () => builderThread.stop() });
    const indexBuilder = (event: SQSEvent | ScheduledEvent) =>
      builderThread.invoke(event) as Promise<SQSBatchResponse | void>;
    const importFn: ImportHandler = importModule.handler;
    // The payload arrives as parsed JSON, exactly what the handler gets on AWS.
    type ShardSearchPayload = Parameters<typeof shardSearchModule.handler>[0];
    bound.shardSearch = (payload, context) => shardSearchModule.handler(payload as ShardSearchPayload, context);

    // --- Event sources.
    const sqs = new SQSClient(makeClientConfig(endpoints, 'sqs'));
    stops.push({ name: 'sqs client', stop: async () => sqs.destroy() });
    const poller = startSqsPoller({
      sqs,
      queueUrl: resources.buildQueueUrl,
      handler: (event) => indexBuilder(event),
      batchSize: 10,
      waitSeconds: 1,
      region: endpoints.region,
      onError: (err, ctx) => {
        if (!opts.silent) console.error(`[shoal] build queue: ${ctx.phase} failed`, err);
      },
    });
    stops.push({ name: 'build queue poller', stop: () => poller.stop() });

    // Build workers: LOCAL_BUILD_WORKERS threads (this machine's cores), as the worker function's
    // reserved concurrency on AWS; each plan task goes to the least busy one.
    const workers = Array.from(
      { length: LOCAL_BUILD_WORKERS },
      () =>
        new BuilderThread({
          functionName: LOCAL_NAMES.buildWorkerFunction,
          timeoutMs: LOCAL_TIMEOUTS_MS.buildWorker,
          region: endpoints.region,
          handler: 'build-worker',
        }),
    );
    stops.push({ name: 'build workers', stop: async () => void (await Promise.all(workers.map((w) => w.stop()))) });
    const taskPoller = startSqsPoller({
      sqs,
      queueUrl: resources.buildTaskQueueUrl,
      handler: (event) =>
        workers.reduce((a, b) => (b.busy < a.busy ? b : a)).invoke(event) as Promise<SQSBatchResponse | void>,
      batchSize: 1,
      waitSeconds: 1,
      concurrency: LOCAL_BUILD_WORKERS,
      region: endpoints.region,
      onError: (err, ctx) => {
        if (!opts.silent) console.error(`[shoal] build-task queue: ${ctx.phase} failed`, err);
      },
    });
    stops.push({ name: 'build-task queue poller', stop: () => taskPoller.stop() });

    // S3 event notifications for imports/ → the import queue (the bucket notification of the CDK stack).
    const queues = sqsQueueProducer(sqs, { import: resources.importQueueUrl });
    const unsubscribe = emulators.onS3Event((event) => {
      const records = event.Records.filter(
        (r) =>
          r.eventName.startsWith('ObjectCreated') &&
          r.s3.bucket.name === resources.bucket &&
          r.s3.object.key.startsWith(IMPORTS_PREFIX),
      );
      if (!records.length) return;
      queues.send('import', toS3Notification({ Records: records })).catch((err: unknown) => {
        if (!opts.silent) console.error('[shoal] forwarding an S3 event to the import queue failed', err);
      });
    });
    stops.push({ name: 's3 event forwarding', stop: async () => unsubscribe() });
    const importTimeoutMs = localImportTimeoutMs(process.env);
    const importPoller = startSqsPoller({
      sqs,
      queueUrl: resources.importQueueUrl,
      handler: (event) =>
        importFn(
          event,
          makeLambdaContext({
            functionName: LOCAL_NAMES.importFunction,
            timeoutMs: importTimeoutMs,
            region: endpoints.region,
          }),
        ),
      batchSize: 1,
      waitSeconds: 1,
      concurrency: 2,
      region: endpoints.region,
      onError: (err, ctx) => {
        if (!opts.silent) console.error(`[shoal] import queue: ${ctx.phase} failed`, err);
      },
    });
    stops.push({ name: 'import queue poller', stop: () => importPoller.stop() });

    const schedule = startSchedule({
      name: LOCAL_NAMES.buildTickRule,
      everyMs: opts.tickMs ?? tickPeriodMs(process.env, 30_000),
      // A restart catches up right away on writes that were never indexed.
      runOnStart: true,
      region: endpoints.region,
      handler: (event) => indexBuilder(event),
      onError: (err) => {
        if (!opts.silent) console.error('[shoal] scheduled build tick failed', err);
      },
    });
    stops.push({ name: 'build schedule', stop: () => schedule.stop() });

    const requestLog =
      opts.requestLog === undefined ? (opts.silent ? undefined : (line: string) => console.log(line)) : opts.requestLog;
    const gateway = await startGateway({
      port: opts.port ?? 8787,
      host: opts.host ?? '127.0.0.1',
      onResponse: requestLog ? (entry) => requestLog(formatRequestLog(entry)) : undefined,
      handler: (event: APIGatewayProxyEventV2) =>
        api(
          event,
          makeLambdaContext({
            functionName: LOCAL_NAMES.apiFunction,
            timeoutMs: LOCAL_TIMEOUTS_MS.api,
            region: endpoints.region,
          }),
        ),
    });
    stops.push({ name: 'gateway', stop: () => gateway.close() });

    const shoal: LocalShoal = {
      url: gateway.url,
      apiKey,
      dataDir,
      endpoints: { ...endpoints, lambda: lambda.endpoint },
      resources,
      apiKeyGenerated: generated,
      stop,
    };
    log(banner(shoal));
    return shoal;
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** Explicit key, else env SHOAL_API_KEY, else `<dataDir>/api-key`, else a new key saved there (0600). */
async function resolveApiKey(
  dataDir: string,
  explicit: string | undefined,
): Promise<{ apiKey: string; generated: boolean }> {
  if (explicit) return { apiKey: explicit, generated: false };
  // SHOAL_API_KEY may list several keys (comma-separated); the first is the one shown.
  const fromEnv = process.env.SHOAL_API_KEY?.split(',')
    .map((k) => k.trim())
    .find(Boolean);
  if (fromEnv) return { apiKey: fromEnv, generated: false };
  const file = path.join(dataDir, 'api-key');
  const saved = await readFile(file, 'utf8').then(
    (s) => s.trim(),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    },
  );
  if (saved) return { apiKey: saved, generated: false };
  const apiKey = randomBytes(24).toString('base64url');
  await writeFile(file, `${apiKey}\n`, { mode: 0o600 });
  return { apiKey, generated: true };
}

function banner(s: LocalShoal): string {
  const keyNote = s.apiKeyGenerated ? `  (new, saved to ${path.join(s.dataDir, 'api-key')})` : '';
  return [
    '',
    'Shoal is running locally',
    `  API        ${s.url}`,
    `  API key    ${s.apiKey}${keyNote}`,
    `  data dir   ${s.dataDir}`,
    `  S3         ${s.endpoints.s3}  bucket ${s.resources.bucket}  ` +
      `(access key ${s.endpoints.credentials.accessKeyId} / ${s.endpoints.credentials.secretAccessKey}, path-style)`,
    `  imports    upload to s3://${s.resources.bucket}/imports/<collection>/<file>.{jsonl,csv,parquet,npy}[.gz] ` +
      '(docs/imports.md)',
    '',
    'Try:',
    `  curl -s -H "Authorization: Bearer ${s.apiKey}" ${s.url}/v1/collections`,
    '',
  ].join('\n');
}
