/**
 * Queue and invoke faults (docs/architecture.md §7.5): SQS delivers at least once (twice, or late,
 * after the work is done), so builds and imports must be idempotent under duplicate and late
 * delivery, also while storage faults fire; a searcher slot that times out fails the search with a
 * typed 503, never with the other slots' hits presented as the answer. Runs the Lambda handlers as
 * the local runtime does (one process, embedded emulators, the local Lambda invoke endpoint).
 */
import { slotOf } from '../../shared/search/coordinator.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, resetConfig } from '../../shared/config.js';
import { ShoalError } from '../../shared/errors.js';
import { getRuntime, resetRuntime } from '../../shared/runtime.js';
import { SearchUnavailableError } from '../../shared/search/coordinator.js';
import { makeAwsClients, setFaults } from '../../shared/storage/clients.js';
import { bootstrapLocalResources, type LocalResources } from '../../infra/local/bootstrap.js';
import { makeClientConfig } from '../../infra/local/aws-clients.js';
import { startEmulators, type Emulators } from '../../infra/local/emulators.js';
import { makeLambdaContext, startLambdaEmulator, type LambdaEmulator } from '../../infra/local/lambda-emulator.js';
import { toS3Notification } from '../../infra/local/shoal.js';
import { sqsEvent } from '../helpers/sqs.js';
import { searchInput } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

const DIM = 8;
const SEED = 'faults-seed=337';
const STORAGE_FAULTS = {
  'DynamoDB throttling': `ddb-throttle=0.1,${SEED}`,
  'lost DynamoDB responses': `ddb-lost-response=0.2,${SEED}`,
  'failed DynamoDB conditions': `ddb-cond-fail=0.3,${SEED}`,
  'S3 SlowDown': `s3-slowdown=0.3,${SEED}`,
  'S3 timeouts': `s3-timeout=0.3,${SEED}`,
} as const;
type FaultName = keyof typeof STORAGE_FAULTS;

let emulators: Emulators;
let resources: LocalResources;
let lambda: LambdaEmulator;
let s3: S3Client;
let sqs: SQSClient;
let cacheDir: string;
const saved = { ...process.env };
type Handler = (event: never, context: Context) => Promise<unknown>;
// Imported once the environment is set: these handlers build the runtime at load, as on a cold start.
let builderHandler: (event: SQSEvent, context: Context) => Promise<{ batchItemFailures: unknown[] } | void>;
let importHandler: (typeof import('../../functions/import/handler.js'))['importHandler'];
let shardSearchHandler: Handler;
/** Slots whose searcher hangs past its timeout. */
const hanging = new Set<number>();
// Generous for a loaded CI machine (two cores shared): only the hanging slot may reach it.
const SLOT_TIMEOUT_MS = 1500;

const ctx = (functionName: string, timeoutMs = 60_000): Context =>
  makeLambdaContext({ functionName, timeoutMs, region: 'us-east-1' });
let messages = 0;
const event = (queue: string, bodies: unknown[]): SQSEvent =>
  sqsEvent(bodies, { queue, messageId: () => `m${++messages}` });

async function drain(queueUrl: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (;;) {
    const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    if (!res.Messages?.length) return out;
    for (const m of res.Messages) out.push(JSON.parse(m.Body ?? 'null'));
  }
}

beforeAll(async () => {
  emulators = await startEmulators({});
  const e = emulators.endpoints;
  resources = await bootstrapLocalResources({
    endpoints: e,
    names: { bucket: 'shoal-fq', catalogTable: 'cat', recordsTable: 'rec', buildQueue: 'b', importQueue: 'imp' },
  });
  const slot =
    (i: number) =>
    async (payload: unknown, context: Context): Promise<unknown> => {
      if (hanging.has(i)) await new Promise((r) => setTimeout(r, SLOT_TIMEOUT_MS * 3));
      return shardSearchHandler(payload as never, context);
    };
  lambda = await startLambdaEmulator({
    functions: {
      'shoal-shard-search-0': { handler: slot(0), timeoutMs: SLOT_TIMEOUT_MS },
      'shoal-shard-search-1': { handler: slot(1), timeoutMs: SLOT_TIMEOUT_MS },
    },
    onError: () => undefined,
  });
  cacheDir = await mkdtemp(path.join(tmpdir(), 'shoal-fq-'));
  Object.assign(process.env, {
    AWS_REGION: e.region,
    AWS_ACCESS_KEY_ID: e.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: e.credentials.secretAccessKey,
    SHOAL_BUCKET: resources.bucket,
    SHOAL_CATALOG_TABLE: resources.catalogTable,
    SHOAL_RECORDS_TABLE: resources.recordsTable,
    SHOAL_BUILD_QUEUE_URL: resources.buildQueueUrl,
    SHOAL_IMPORT_QUEUE_URL: resources.importQueueUrl,
    SHOAL_S3_ENDPOINT: e.s3,
    SHOAL_DYNAMODB_ENDPOINT: e.dynamodb,
    SHOAL_SQS_ENDPOINT: e.sqs,
    SHOAL_LAMBDA_ENDPOINT: lambda.endpoint,
    SHOAL_SEARCH_SLOTS: '2',
    SHOAL_SCATTER_MIN_MB: '0',
    SHOAL_SHARD_CACHE_DIR: cacheDir,
    SHOAL_IMPORT_SAFETY_MARGIN_S: '1',
  });
  resetConfig();
  resetRuntime();
  builderHandler = (await import('../../functions/index-builder/handler.js')).handler as typeof builderHandler;
  ({ importHandler } = await import('../../functions/import/handler.js'));
  shardSearchHandler = (await import('../../functions/shard-search/handler.js')).handler as Handler;
  s3 = new S3Client(makeClientConfig(e, 's3'));
  sqs = new SQSClient(makeClientConfig(e, 'sqs'));
}, 60_000);

afterAll(async () => {
  resetRuntime();
  process.env = saved;
  resetConfig();
  s3?.destroy();
  sqs?.destroy();
  await lambda?.stop();
  await emulators?.stop();
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

/** Turns `spec` on for the runtime's clients; returns a check that the faults really fired. */
function faults(spec: string): () => void {
  const sw = setFaults(makeAwsClients(config()), spec);
  return () => expect(Object.values(sw.injected).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
}

let collections = 0;
async function collection(): Promise<string> {
  const { service } = await getRuntime();
  const name = `q${++collections}`;
  await service.createCollection({ name, dimension: DIM, metric: 'l2', index: { engine: 'flat' } });
  return name;
}

describe('imports under duplicate and late delivery', () => {
  it.each(Object.keys(STORAGE_FAULTS) as FaultName[])('write every row once under %s', async (fault) => {
    const name = await collection();
    const rows = vectorInputs(120, DIM, 21, 'r');
    const body = rows.map((r) => JSON.stringify({ id: r.id, values: Array.from(r.values) })).join('\n') + '\n';
    const key = `imports/${name}/rows.jsonl`;
    const put = await s3.send(new PutObjectCommand({ Bucket: resources.bucket, Key: key, Body: body }));
    const notification = toS3Notification({
      Records: [
        {
          eventName: 'ObjectCreated:Put',
          s3: {
            bucket: { name: resources.bucket },
            object: { key, eTag: (put.ETag ?? '').replace(/"/g, ''), size: body.length },
          },
        },
      ],
    });
    const fired = faults(STORAGE_FAULTS[fault]);
    // The event twice in one batch and once more in a second, concurrent batch; failed items are redelivered
    // (as SQS does after the visibility timeout), continuations too.
    let pending: unknown[][] = [[notification, notification], [notification]];
    for (let round = 0; pending.length && round < 50; round++) {
      const results = await Promise.all(pending.map((b) => importHandler(event('imp', b), ctx('shoal-import'))));
      pending = results.flatMap((res, i) => (res.batchItemFailures.length ? [pending[i]] : []));
      const next = await drain(resources.importQueueUrl);
      if (next.length) pending.push(next);
    }
    fired();
    faults('');
    // Late: the same event after the job finished.
    await importHandler(event('imp', [notification]), ctx('shoal-import'));
    await drain(resources.importQueueUrl);
    const { imports, service } = await getRuntime();
    const jobs = await imports.listImports(name);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ state: 'succeeded', rowsRead: 120, rowsWritten: 120, rowsRejected: 0 });
    const got = await service.getVectors(
      name,
      rows.map((r) => r.id),
    );
    expect(got).toHaveLength(120);
    expect((await service.getCollection(name)).stats?.count).toBe(120);
  });
});

describe('builds under duplicate and late delivery', () => {
  it.each(Object.keys(STORAGE_FAULTS) as FaultName[])('commit whole manifests only under %s', async (fault) => {
    const { service } = await getRuntime();
    const name = await collection();
    const rows = vectorInputs(40, DIM, 22, 'b');
    await service.upsert(name, rows);
    const fired = faults(STORAGE_FAULTS[fault]);
    const message = { collection: name, force: true };
    // Twice at once (two batches, as two concurrent builder invocations get them), then once late.
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all([
        builderHandler(event('b', [message]), ctx('shoal-index-builder')),
        builderHandler(event('b', [message]), ctx('shoal-index-builder')),
      ]);
      if (results.every((r) => !r || r.batchItemFailures.length === 0)) break;
    }
    fired();
    faults('');
    await builderHandler(event('b', [message]), ctx('shoal-index-builder'));
    await drain(resources.buildQueueUrl);
    const versions = await service.listVersions(name);
    // Versions are contiguous (each commit one conditional put); the newest holds every row.
    expect(versions.map((m) => m.version)).toEqual(
      Array.from({ length: versions.length }, (_, i) => versions.length - i),
    );
    expect(versions[0].stats.liveRows).toBe(40);
    const out = await service.search(name, searchInput(rows[3].values, { k: 40, consistency: 'eventual' }));
    expect(out.results[0].map((h) => h.id).sort()).toEqual(rows.map((r) => r.id).sort());
  });
});

describe('search scatter', () => {
  it('fails the whole search with 503 SEARCH_UNAVAILABLE when a slot times out, and answers again after', async () => {
    const { service } = await getRuntime();
    const name = await collection();
    const rows = vectorInputs(60, DIM, 23, 's');
    // Three builds, three shards over two slots.
    for (let i = 0; i < 60; i += 20) {
      await service.upsert(name, rows.slice(i, i + 20));
      await (await getRuntime()).indexer.buildNow(name);
    }
    const query = searchInput(rows[0].values, { k: 60, consistency: 'eventual' });
    const full = await service.search(name, query);
    expect(full.results[0]).toHaveLength(60);
    // Shards go to slots by a hash of their content-addressed id, so which slots hold work varies by run.
    const versions = await service.listVersions(name);
    const head = versions.reduce((a, b) => (b.version > a.version ? b : a));
    const used = [...new Set(head.shards.map((ref) => slotOf(ref, 2)))].sort();
    expect(used.length).toBeGreaterThan(0);
    for (const slot of used) {
      hanging.add(slot);
      const err = await service.search(name, query).catch((e: unknown) => e);
      hanging.clear();
      expect(err).toBeInstanceOf(SearchUnavailableError);
      expect(err).toMatchObject({ statusCode: 503, code: 'SEARCH_UNAVAILABLE', details: { slot, timeout: true } });
    }
    expect(await service.search(name, query)).toEqual(full);
  });

  it.each(['S3 SlowDown', 'S3 timeouts'] as const)(
    'answers completely or with a typed 503 while shards load under %s',
    async (fault) => {
      const { service, cache } = await getRuntime();
      const name = await collection();
      const rows = vectorInputs(30, DIM, 24, 'c');
      await service.upsert(name, rows);
      await (await getRuntime()).indexer.buildNow(name);
      cache.clear();
      const fired = faults(STORAGE_FAULTS[fault]);
      const query = searchInput(rows[0].values, { k: 30, consistency: 'eventual' });
      const all = rows.map((r) => r.id).sort();
      // Under the fault each answer is complete or a typed 503 (a slot's 1.5 s budget can be shorter than a
      // throttled S3 retry, so some fail); once it clears, the next search answers.
      for (let attempt = 0; attempt < 3; attempt++) {
        const out = await service.search(name, query).catch((err: unknown) => {
          expect(err).toBeInstanceOf(ShoalError);
          expect((err as ShoalError).statusCode).toBe(503);
          return undefined;
        });
        if (out) expect(out.results[0].map((h) => h.id).sort()).toEqual(all);
      }
      fired();
      faults('');
      // A timed-out slot's shard load runs on here (AWS would reset the sandbox): a client's retries get through.
      let out;
      for (let attempt = 0; !out && attempt < 30; attempt++) {
        out = await service.search(name, query).catch(async (err: unknown) => {
          expect(err).toBeInstanceOf(SearchUnavailableError);
          await new Promise((r) => setTimeout(r, 500));
          return undefined;
        });
      }
      expect(out?.results[0].map((h) => h.id).sort()).toEqual(all);
    },
  );
});
