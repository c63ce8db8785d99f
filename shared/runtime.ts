/**
 * Builds the process's Shoal runtime once per cold start: configuration, AWS clients,
 * storage adapters, the shard cache and the core service. Every function handler gets
 * its dependencies here, so handlers stay thin and never read the environment.
 */
import { readFileSync } from 'node:fs';
import type { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoApiKeyStore } from './auth/dynamo-key-store.js';
import { ApiKeys, type Principal } from './auth/keys.js';
import type { ShoalConfig } from './config.js';
import type { ShoalCore } from './core.js';
import { slotFailure } from './search/coordinator.js';
import { nodeScatter } from './search/node-scatter.js';
import type { ShardCache } from './search/shard-cache.js';
import { TailCache } from './search/tail-cache.js';
import type { ShardSearchRequest, ShardSearchResponse } from './search/shard-searcher.js';
import type { LifecycleService, ShoalService } from './service.js';
import type { ObjectStore } from './storage/types.js';
import { makeAwsClients } from './storage/clients.js';
import { describeFaults } from './storage/faults.js';
import { DynamoCatalog } from './storage/dynamo-catalog.js';
import { DynamoRecordStore } from './storage/dynamo-records.js';
import { DynamoImportJobs } from './storage/dynamo-import-jobs.js';
import type { ImportService } from './import/service.js';
import type { Indexer } from './indexing/indexer.js';
import { traceClient } from './storage/trace.js';
import { DynamoPlanStore } from './storage/dynamo-plans.js';
import { DynamoLifecycleStore } from './storage/dynamo-lifecycle.js';
import { DynamoDriftStore } from './storage/dynamo-drift.js';
import { DriftMonitor, driftApi, type DriftApi } from './models/drift-monitor.js';
import { sqsQueueProducer } from './queue/messages.js';
import { getSearcherRuntime, resetSearcherRuntime, type SearcherRuntime } from './searcher-runtime.js';
import type { MigrationService } from './models/migration.js';
import { DynamoMigrationStore } from './storage/dynamo-migrations.js';
import { ModelRuntime } from './models/runtime.js';
import { createServices } from './services.js';
import { logger } from './log.js';
import { recordSearchNodeFallback } from './metrics.js';

export interface Runtime {
  config: ShoalConfig;
  core: ShoalCore;
  /** Builds, sweeps, garbage collection: the index-builder function's service. */
  indexer: Indexer;
  service: ShoalService;
  /** Bulk imports (API routes and the import function). */
  imports: ImportService;
  /** Aliases, evaluation, model registry (docs/architecture.md §8). */
  lifecycle: LifecycleService;
  /** Re-embedding migrations (API routes and the import function). */
  migrations: MigrationService;
  cache: ShardCache;
  objects: ObjectStore;
  /** Who a bearer token belongs to (role, scope, rate limit), or undefined for no valid key. */
  authorize(token: string | undefined): Promise<Principal | undefined>;
  /** The key id of a catalog API key (`keyId` attribute), when known. */
  identify(token: string | undefined): Promise<string | undefined>;
  /** API keys: checks and management (`/v1/keys`). */
  keys: ApiKeys;
  /** Embedding drift reports and reference resets (docs/architecture.md §8.8). */
  drift: DriftApi;
  /** The builder's hand-off of tune jobs to the build workers (absent without a build-task queue). */
  forwardTune?: (work: { kind: 'tune'; collection: string; version: number; jobId: string }) => Promise<void>;
  healthExtra(): Record<string, unknown>;
  version: string;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    // Bundled Lambdas carry no package.json; the build stamps SHOAL_GIT_SHA instead.
    return '0.0.0';
  }
}

/**
 * Invokes searcher slots. The Lambda SDK is imported and its client created on the first scatter: the
 * coordinator scatters only above SHOAL_SCATTER_MIN_MB of shards, and the other roles never do, so no
 * function pays for loading the SDK at cold start (`npm run bench:cold-start`).
 */
export function lambdaScatter(
  cfg: ShoalConfig,
): (slot: number, request: ShardSearchRequest) => Promise<ShardSearchResponse> {
  let client: Promise<{ lambda: LambdaClient; InvokeCommand: typeof InvokeCommand }> | undefined;
  const connect = async () => {
    const sdk = await import('@aws-sdk/client-lambda');
    const lambda = new sdk.LambdaClient({
      region: cfg.region,
      ...(cfg.endpoints?.lambda ? { endpoint: cfg.endpoints.lambda } : {}),
    });
    traceClient(lambda, 'Lambda');
    return { lambda, InvokeCommand: sdk.InvokeCommand };
  };
  return async (slot, request) => {
    client ??= connect();
    const { lambda, InvokeCommand: Invoke } = await client;
    const out = await lambda.send(
      new Invoke({
        FunctionName: cfg.shardSearchFunction.replace('{slot}', String(slot)),
        Payload: new TextEncoder().encode(JSON.stringify(request)),
      }),
    );
    const text = new TextDecoder().decode(out.Payload ?? new Uint8Array());
    if (out.FunctionError) throw slotFailure(slot, text);
    return JSON.parse(text) as ShardSearchResponse;
  };
}

function createRuntime({ config: cfg, objects, cache }: SearcherRuntime): Runtime {
  const aws = makeAwsClients(cfg);
  const catalog = new DynamoCatalog({ ddb: aws.ddb, table: cfg.catalogTable, objects });
  const records = new DynamoRecordStore({ ddb: aws.ddb, table: cfg.recordsTable, logTable: cfg.catalogTable });
  const version = `${packageVersion()}${cfg.gitSha ? `+${cfg.gitSha}` : ''}`;
  const scatter = cfg.searchNodes
    ? nodeScatter({
        nodes: cfg.searchNodes,
        timeoutMs: cfg.searchNodeTimeoutMs,
        fallback: lambdaScatter(cfg),
        onFallback: (slot, reason) => {
          logger.warn('search node unavailable: slot searched by its Lambda', { slot, reason });
          recordSearchNodeFallback();
        },
      })
    : lambdaScatter(cfg);

  const queues = sqsQueueProducer(aws.sqs, {
    build: cfg.buildQueueUrl,
    import: cfg.importQueueUrl,
    buildTask: cfg.buildTaskQueueUrl,
  });
  // One per process: its in-memory windows add up every request this container serves.
  const drift = new DriftMonitor({
    store: new DynamoDriftStore({ ddb: aws.ddb, table: cfg.catalogTable }),
    records,
    flushIntervalMs: cfg.driftFlushMs,
  });
  const { core, indexer, lifecycle, imports, migrations } = createServices({
    catalog,
    records,
    objects,
    cache,
    lifecycleStore: new DynamoLifecycleStore({ ddb: aws.ddb, table: cfg.catalogTable }),
    queues,
    codeVersion: version,
    slots: cfg.searchSlots,
    scatter,
    scatterMinBytes: cfg.scatterMinBytes,
    tails: new TailCache(catalog, records),
    policy: { DELTA_MIN_ROWS: cfg.buildDeltaMinRows, DELTA_MAX_AGE_MS: cfg.buildDeltaMaxAgeMs },
    // Large artifacts are hashed by the builder function (15 min), not inside a 30 s API request.
    artifactSyncVerifyBytes: cfg.artifactSyncVerifyBytes,
    // Tunes of large versions run as tune jobs on the builder function; this is where the API stops.
    tuneSyncMaxRows: cfg.tuneSyncMaxRows,
    tailCapBytes: cfg.tailCapBytes,
    strongReadBudgetMs: cfg.strongReadBudgetMs,
    // Nothing loads until a collection embeds or an ONNX version is committed (the runtime imports lazily).
    models: new ModelRuntime({ runtime: cfg.onnxRuntime, maxLoadedBytes: cfg.modelMemoryBytes }),
    migrationStore: new DynamoMigrationStore({ ddb: aws.ddb, table: cfg.catalogTable }),
    drift,
    ...(cfg.buildTaskQueueUrl
      ? {
          plans: {
            store: new DynamoPlanStore({ ddb: aws.ddb, table: cfg.catalogTable }),
            queues,
            policy: { MIN_ROWS: cfg.planMinRows, STALL_MS: cfg.planStallMs },
          },
        }
      : {}),
    imports: {
      s3: aws.s3,
      bucket: cfg.bucket,
      jobs: new DynamoImportJobs({ ddb: aws.ddb, table: cfg.catalogTable }),
      enqueue: cfg.importQueueUrl !== undefined,
      limits: cfg.importLimits,
      sweepStaleMs: cfg.importSweepStaleMs,
    },
  });
  // The environment's keys (local mode) are admin keys; catalog keys carry their role and scope — the same
  // items the API Gateway authorizer reads, so AWS and local agree on who may do what (docs/security.md).
  const keys = new ApiKeys({
    store: new DynamoApiKeyStore({ ddb: aws.ddb, table: cfg.catalogTable }),
    envKeys: cfg.apiKeys,
    defaultRateLimit: cfg.rateLimit,
  });
  return {
    config: cfg,
    core,
    indexer,
    service: core,
    // Always wired here (the `imports` deps above); optional only for services built without S3.
    imports: imports as ImportService,
    lifecycle,
    // Always wired here (models and a migration store above).
    migrations: migrations as MigrationService,
    identify: async (token) => (await keys.authenticate(token))?.keyId,
    cache,
    objects,
    version,
    authorize: (token) => keys.authenticate(token),
    keys,
    drift: driftApi(core, drift),
    ...(cfg.buildTaskQueueUrl ? { forwardTune: (work) => queues.send('buildTask', work) } : {}),
    healthExtra: () => ({
      ...(cfg.localInfo ? { local: cfg.localInfo } : {}),
      ...(describeFaults(cfg.faults).length ? { faults: describeFaults(cfg.faults) } : {}),
    }),
  };
}

let runtime: Runtime | undefined;

export async function getRuntime(): Promise<Runtime> {
  runtime ??= createRuntime(getSearcherRuntime());
  return runtime;
}

/** Drops the cached runtime (tests that restart the local stack in one process). */
export function resetRuntime(): void {
  runtime?.cache.clear();
  runtime = undefined;
  resetSearcherRuntime();
}
