/**
 * Imports against the embedded emulators, through the import function's handler: duplicate S3
 * events and an explicit import of the same object make one job; a job that outlives its
 * invocation checkpoints, re-enqueues itself and finishes in the next ones; the reject report
 * lands in S3; a poison message ends in the DLQ with its job marked failed; a stuck job (its worker
 * died, its message lost) is resumed by a re-POST of its URI and by the builder's scheduled tick
 * (the import sweeper); explicit limits are stored on the job.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScheduledEvent } from 'aws-lambda';
import { config, resetConfig } from '../../shared/config.js';
import { makeAwsClients } from '../../shared/storage/clients.js';
import { DynamoImportJobs } from '../../shared/storage/dynamo-import-jobs.js';
import { parseReport } from '../../shared/import/report.js';
import { getRuntime, resetRuntime } from '../../shared/runtime.js';
import { bootstrapLocalResources, type LocalResources } from '../../infra/local/bootstrap.js';
import { makeClientConfig } from '../../infra/local/aws-clients.js';
import { startEmulators, type Emulators } from '../../infra/local/emulators.js';
import { makeLambdaContext } from '../../infra/local/lambda-emulator.js';
import { startSqsPoller } from '../../infra/local/sqs-poller.js';
import { toS3Notification } from '../../infra/local/shoal.js';
import { sqsEvent } from '../helpers/sqs.js';

let emulators: Emulators;
let resources: LocalResources;
let s3: S3Client;
let sqs: SQSClient;
let cacheDir: string;
// Imported once the environment is set: the handler validates its configuration at load, as on a cold start.
let importHandler: (typeof import('../../functions/import/handler.js'))['importHandler'];
const saved = { ...process.env };

function ctx(timeoutMs: number): Context {
  return makeLambdaContext({ functionName: 'shoal-import', timeoutMs, region: 'us-east-1' });
}

/** The import queue's records; ids unique across calls (the handler sees several batches). */
function importEvent(bodies: unknown[]): SQSEvent {
  return sqsEvent(bodies, { queue: 'shoal-import', messageId: (i) => `m${i}-${Math.random()}` });
}

async function upload(key: string, body: string | Uint8Array): Promise<{ etag: string; size: number }> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const res = await s3.send(new PutObjectCommand({ Bucket: resources.bucket, Key: key, Body: bytes }));
  return { etag: (res.ETag ?? '').replace(/"/g, ''), size: bytes.byteLength };
}

function s3Event(key: string, o: { etag: string; size: number }, bucket = resources.bucket) {
  return toS3Notification({
    Records: [
      { eventName: 'ObjectCreated:Put', s3: { bucket: { name: bucket }, object: { key, eTag: o.etag, size: o.size } } },
    ],
  });
}

function jsonl(n: number, dim: number, prefix: string, bad: Record<number, string> = {}): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(
      bad[i] ??
        JSON.stringify({
          id: `${prefix}${i}`,
          values: Array.from({ length: dim }, (_, j) => Math.sin(i * 7 + j)),
          metadata: { i },
        }),
    );
  }
  return lines.join('\n') + '\n';
}

async function drainQueue(): Promise<Array<{ body: string }>> {
  const out: Array<{ body: string }> = [];
  for (;;) {
    const res = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: resources.importQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (!res.Messages?.length) return out;
    for (const m of res.Messages) out.push({ body: m.Body ?? '' });
  }
}

beforeAll(async () => {
  emulators = await startEmulators({});
  const e = emulators.endpoints;
  resources = await bootstrapLocalResources({
    endpoints: e,
    names: { bucket: 'shoal-imp', catalogTable: 'cat', recordsTable: 'rec', buildQueue: 'b', importQueue: 'imp' },
  });
  cacheDir = await mkdtemp(path.join(tmpdir(), 'shoal-imp-'));
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
    SHOAL_SHARD_CACHE_DIR: cacheDir,
    SHOAL_IMPORT_SAFETY_MARGIN_S: '1',
    SHOAL_IMPORT_MAX_RECEIVE: '5',
  });
  resetConfig();
  resetRuntime();
  ({ importHandler } = await import('../../functions/import/handler.js'));
  s3 = new S3Client(makeClientConfig(e, 's3'));
  sqs = new SQSClient(makeClientConfig(e, 'sqs'));
  const { service } = await getRuntime();
  await service.createCollection({ name: 'docs', dimension: 8, metric: 'l2', index: { engine: 'flat' } });
}, 60_000);

afterAll(async () => {
  resetRuntime();
  process.env = saved;
  resetConfig();
  s3?.destroy();
  sqs?.destroy();
  await emulators?.stop();
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

describe('imports through the import function', () => {
  it('collapses duplicate events and explicit imports of the same object into one job; reports rejects', async () => {
    const key = 'imports/docs/with space+plus.jsonl';
    const obj = await upload(
      key,
      jsonl(300, 8, 'a', { 10: '{"id": "x", "values": [1]}', 20: '{broken', 30: '{"values": [1,2,3,4,5,6,7,8]}' }),
    );
    const event = s3Event(key, obj);
    expect(event.Records[0].s3.object.key).toBe('imports/docs/with+space%2Bplus.jsonl');
    const res = await importHandler(importEvent([event, event]), ctx(60_000));
    expect(res.batchItemFailures).toEqual([]);
    await importHandler(importEvent([event]), ctx(60_000));
    const { imports, service } = await getRuntime();
    const explicit = await imports.createImport('docs', `s3://${resources.bucket}/${key}`);
    expect(explicit.created).toBe(false);
    const jobs = await imports.listImports('docs');
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({
      jobId: explicit.job.jobId,
      state: 'partial',
      rowsRead: 300,
      rowsWritten: 297,
      rowsRejected: 3,
      percent: 100,
    });
    expect(jobs[0].report).toBe(`reports/imports/${jobs[0].jobId}.jsonl`);
    const report = await s3.send(new GetObjectCommand({ Bucket: resources.bucket, Key: jobs[0].report! }));
    const entries = parseReport(await report.Body!.transformToByteArray());
    expect(entries.map((e) => [e.line, e.code])).toEqual([
      [11, 'WRONG_DIMENSION'],
      [21, 'BAD_JSON'],
      [31, 'MISSING_ID'],
    ]);
    const got = await service.getVectors('docs', ['a0', 'a299', 'a10']);
    expect(got.map((v) => v.id)).toEqual(['a0', 'a299']);
    await drainQueue();
  });

  it('checkpoints when out of time, re-enqueues itself and finishes in later invocations', async () => {
    const key = 'imports/docs/big.jsonl';
    const obj = await upload(key, jsonl(3000, 8, 'b'));
    // Remaining time 1.05 s minus the 1 s margin: each invocation works ~50 ms, then continues.
    let message: unknown = s3Event(key, obj);
    let invocations = 0;
    for (; message && invocations < 500; invocations++) {
      const res = await importHandler(importEvent([message]), ctx(1_050));
      expect(res.batchItemFailures).toEqual([]);
      const next = await drainQueue();
      expect(next.length).toBeLessThanOrEqual(1);
      message = next[0] ? JSON.parse(next[0].body) : undefined;
    }
    expect(invocations).toBeGreaterThan(1);
    const { imports } = await getRuntime();
    const job = (await imports.listImports('docs')).find((j) => j.uri.endsWith('big.jsonl'))!;
    expect(job).toMatchObject({ state: 'succeeded', rowsRead: 3000, rowsWritten: 3000, rowsRejected: 0, report: null });
  });

  it('fails unreadable files before writing, with the reason', async () => {
    const key = 'imports/docs/fake.parquet';
    const obj = await upload(key, 'this is not parquet');
    await importHandler(importEvent([s3Event(key, obj)]), ctx(60_000));
    const { imports } = await getRuntime();
    const job = (await imports.listImports('docs')).find((j) => j.uri.endsWith('fake.parquet'))!;
    expect(job).toMatchObject({ state: 'failed', rowsWritten: 0 });
    expect(job.error).toMatch(/not a Parquet file \(bad magic\)/);
  });

  it('sends poison messages to the DLQ and marks their job failed', async () => {
    const key = 'imports/docs/ghost.jsonl';
    // An object in a bucket that does not exist: every attempt fails (NoSuchBucket), a transient-looking error.
    const event = s3Event(key, { etag: 'abc', size: 100 }, 'no-such-bucket');
    await sqs.send(new SendMessageCommand({ QueueUrl: resources.importQueueUrl, MessageBody: JSON.stringify(event) }));
    const poller = startSqsPoller({
      sqs,
      queueUrl: resources.importQueueUrl,
      handler: (e) => importHandler(e, ctx(60_000)),
      batchSize: 1,
      waitSeconds: 0,
      visibilityTimeoutSeconds: 0,
      onError: () => undefined,
    });
    let dlq: string | undefined;
    for (let i = 0; i < 100 && !dlq; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const res = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: resources.importDlqUrl,
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      dlq = res.Messages?.[0]?.Body;
    }
    await poller.stop();
    expect(dlq).toBeDefined();
    const { imports } = await getRuntime();
    const job = (await imports.listImports('docs')).find((j) => j.uri === `s3://no-such-bucket/${key}`)!;
    expect(job.state).toBe('failed');
    expect(job.error).toMatch(/gave up after 5 attempts/);
  });

  /** The job store the runtime uses, on its own client (to stage a dead worker's lease). */
  function jobStore(): DynamoImportJobs {
    const cfg = config();
    return new DynamoImportJobs({ ddb: makeAwsClients(cfg).ddb, table: cfg.catalogTable });
  }

  it('a re-POST of a stuck job resumes it; a job with a live lease is left alone', async () => {
    const key = 'imports/docs/stuck.jsonl';
    await upload(key, jsonl(500, 8, 's'));
    const { imports } = await getRuntime();
    const uri = `s3://${resources.bucket}/${key}`;
    const first = await imports.createImport('docs', uri, { maxRows: 10_000 });
    expect(first).toMatchObject({ created: true, resumed: false });
    expect(first.job.limits).toMatchObject({ maxRows: 10_000, maxRejectRatio: 0.5, maxDurationSeconds: 21_600 });
    // The worker took the job and died: its lease is live, then expired; its message is gone.
    await drainQueue();
    const jobs = jobStore();
    expect(await jobs.claim('docs', first.job.jobId, 'dead', Date.now() + 60_000, Date.now())).toBeDefined();
    const live = await imports.createImport('docs', uri);
    expect(live).toMatchObject({ created: false, resumed: false, job: { state: 'running' } });
    expect(await drainQueue()).toEqual([]);
    expect(await jobs.claim('docs', first.job.jobId, 'dead', Date.now() - 1, Date.now())).toBeDefined();

    const again = await imports.createImport('docs', uri);
    expect(again).toMatchObject({ created: false, resumed: true, job: { state: 'running', requeues: 1 } });
    const messages = await drainQueue();
    expect(messages.map((m) => JSON.parse(m.body))).toEqual([
      { type: 'import', collection: 'docs', jobId: first.job.jobId },
    ]);
    await importHandler(importEvent([JSON.parse(messages[0].body)]), ctx(60_000));
    expect(await imports.getImport('docs', first.job.jobId)).toMatchObject({
      state: 'succeeded',
      rowsRead: 500,
      rowsWritten: 500,
      limits: { maxRows: 10_000 },
    });
  });

  it("the builder's scheduled tick re-queues a job whose worker died", async () => {
    const key = 'imports/docs/swept.jsonl';
    await upload(key, jsonl(400, 8, 't'));
    const { imports } = await getRuntime();
    const { job } = await imports.createImport('docs', `s3://${resources.bucket}/${key}`);
    await drainQueue();
    expect(await jobStore().claim('docs', job.jobId, 'dead', Date.now() - 1, Date.now())).toBeDefined();

    const builder = await import('../../functions/index-builder/handler.js');
    const tick: ScheduledEvent = {
      version: '0',
      id: 'tick',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '000000000000',
      time: new Date().toISOString(),
      region: 'us-east-1',
      resources: ['arn:aws:events:us-east-1:000000000000:rule/shoal-build-tick'],
      detail: {},
    };
    await builder.handler(
      tick,
      makeLambdaContext({ functionName: 'shoal-index-builder', timeoutMs: 60_000, region: 'us-east-1' }),
    );
    const messages = (await drainQueue()).map((m) => JSON.parse(m.body) as { jobId: string });
    expect(messages).toEqual([{ type: 'continue', collection: 'docs', jobId: job.jobId }]);
    await importHandler(importEvent(messages), ctx(60_000));
    expect(await imports.getImport('docs', job.jobId)).toMatchObject({ state: 'succeeded', rowsWritten: 400 });
  });
});
