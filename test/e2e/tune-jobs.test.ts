/**
 * Asynchronous tune jobs end to end over HTTP against a whole local Shoal (docs/architecture.md §8.7): with
 * SHOAL_TUNE_SYNC_MAX_ROWS=1000 a synchronous tune of a 3,000-row partitioned version answers 422
 * ASYNC_REQUIRED and stores nothing; `async: true` answers 202 with a queued job, the index-builder function
 * (woken through the emulated build queue) runs it to `succeeded` with the evaluation the synchronous path
 * stores and the tuned nprobe/efSearch set on the collection; a redelivered message for a finished job changes
 * nothing; a job for a version that does not exist ends `failed` with NOT_FOUND.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClientConfig } from '../../infra/local/aws-clients.js';
import { Shoal } from '../../clients/typescript/src/node.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';
import { mulberry32 } from '../helpers/random.js';

const ROWS = 3000;
const DIM = 16;

let server: HttpShoal;
let shoal: Shoal;
let version: number;
const call: HttpShoal['call'] = (...args) => server.call(...args);
const saved = process.env.SHOAL_TUNE_SYNC_MAX_ROWS;

/** Rows around 8 seeded centres, so the partitions mean something. */
function rows(from: number, to: number): Array<{ id: string; values: number[] }> {
  const rng = mulberry32(7);
  const centres = Array.from({ length: 8 }, () => Array.from({ length: DIM }, () => rng() * 10));
  const out: Array<{ id: string; values: number[] }> = [];
  for (let i = 0; i < to; i++) {
    const c = centres[i % centres.length];
    const values = c.map((x) => x + rng() - 0.5);
    if (i >= from) out.push({ id: `r${i}`, values });
  }
  return out;
}

/** Polls `GET route` until `done` holds for its body (20 s at most). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function until(route: string, done: (json: Record<string, unknown>) => boolean): Promise<any> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await call('GET', route);
    if (res.status === 200 && done(res.json)) return res.json;
    if (Date.now() > deadline) throw new Error(`${route}: still ${JSON.stringify(res.json).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  process.env.SHOAL_TUNE_SYNC_MAX_ROWS = '1000';
  server = await startHttpShoal('tune');
  shoal = new Shoal({ url: server.shoal.url, apiKey: server.shoal.apiKey });
  const created = await call('POST', '/v1/collections', {
    name: 'items',
    dimension: DIM,
    metric: 'l2',
    index: { partitions: 4 },
  });
  expect(created.status).toBe(201);
  for (let i = 0; i < ROWS; i += 1000) {
    expect((await call('POST', '/v1/collections/items/vectors', { vectors: rows(i, i + 1000) })).status).toBe(200);
  }
  expect((await call('POST', '/v1/collections/items/index')).status).toBe(202);
  // Wake-ups may have built a first version mid-load: wait for the one covering every row.
  await until('/v1/collections/items', (j) => (j.stats as { indexed: number }).indexed === ROWS);
  const listed = (await call('GET', '/v1/collections/items/versions')).json;
  version = listed.versions[0].version;
  expect(listed.versions[0].partitions).toMatchObject({ count: 4 });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (saved === undefined) delete process.env.SHOAL_TUNE_SYNC_MAX_ROWS;
  else process.env.SHOAL_TUNE_SYNC_MAX_ROWS = saved;
});

describe('tune jobs over HTTP', () => {
  it('refuses a synchronous tune above the row limit with 422 ASYNC_REQUIRED and stores nothing', async () => {
    const before = (await call('GET', '/v1/collections/items')).json.index;
    const res = await call('POST', `/v1/collections/items/versions/${version}/tune`, { targetRecall: 0.9 });
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({ code: 'ASYNC_REQUIRED', field: 'async' });
    expect(res.json.error.message).toContain('`async: true`');
    expect(res.json.error.details).toMatchObject({ rows: ROWS, sample: 100, maxRows: 1000 });
    expect((await call('GET', '/v1/collections/items/versions')).json.versions[0].evaluation).toBeUndefined();
    expect((await call('GET', '/v1/collections/items')).json.index).toEqual(before);
  });

  it('validates async and sample', async () => {
    const tune = (body: unknown) => call('POST', `/v1/collections/items/versions/${version}/tune`, body);
    for (const [body, field] of [
      [{ targetRecall: 0.9, async: 'yes' }, 'async'],
      [{ targetRecall: 0.9, sample: 10 }, 'sample'],
      [{ targetRecall: 0.9, sample: 2001, async: true }, 'sample'],
    ] as const) {
      const res = await tune(body);
      expect(res.status).toBe(400);
      expect(res.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field });
    }
    const missing = await call('GET', '/v1/collections/items/tune-jobs/nope');
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ code: 'NOT_FOUND', field: 'jobId' });
  });

  it('runs an async tune on the builder: 202 queued, then succeeded with the evaluation and defaults', async () => {
    const started = await call('POST', `/v1/collections/items/versions/${version}/tune`, {
      targetRecall: 0.9,
      k: 10,
      sample: 50,
      async: true,
    });
    expect(started.status).toBe(202);
    expect(started.json).toMatchObject({
      collection: 'items',
      version,
      status: 'queued',
      progress: { measured: 0 },
      input: { targetRecall: 0.9, k: 10, sample: 50 },
    });
    expect(started.json.input).not.toHaveProperty('async');
    const job = await shoal.collection('items').waitForTune(started.json.id, { intervalMs: 100, timeoutMs: 15_000 });
    expect(job.status).toBe('succeeded');
    expect(job.error).toBeUndefined();
    const ev = job.evaluation!;
    expect(ev).toMatchObject({ collection: 'items', version, queries: 50, rows: ROWS, source: 'sample' });
    expect(ev.tuning!.chosenNprobe).toBeGreaterThanOrEqual(1);
    expect(ev.tuning!.table.length).toBeGreaterThan(0);
    expect(ev.recall).toBeGreaterThanOrEqual(0.9);
    expect(job.progress.measured).toBe(ev.tuning!.table.length);
    expect(job.progress.of).toBeGreaterThanOrEqual(job.progress.measured);
    // Stored exactly as the synchronous path stores it: the evaluation item and the line's defaults.
    expect((await call('GET', '/v1/collections/items/versions')).json.versions[0].evaluation).toEqual(ev);
    expect((await call('GET', '/v1/collections/items')).json.index).toMatchObject({
      nprobe: ev.tuning!.chosenNprobe,
      efSearch: ev.tuning!.chosenEf,
    });

    // A redelivered message for the finished job changes nothing (no rerun: the evaluation keeps its time).
    const sqs = new SQSClient(makeClientConfig(server.shoal.endpoints, 'sqs'));
    const queue = server.shoal.resources.buildQueueUrl;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue,
        MessageBody: JSON.stringify({ kind: 'tune', collection: 'items', version, jobId: job.id }),
      }),
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { Attributes: a } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queue,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      if (a?.ApproximateNumberOfMessages === '0' && a.ApproximateNumberOfMessagesNotVisible === '0') break;
      if (Date.now() > deadline) throw new Error('the redelivered tune message was not consumed');
      await new Promise((r) => setTimeout(r, 100));
    }
    sqs.destroy();
    expect((await call('GET', `/v1/collections/items/tune-jobs/${job.id}`)).json).toEqual(job);
    expect((await call('GET', '/v1/collections/items/versions')).json.versions[0].evaluation).toEqual(ev);
  }, 30_000);

  it("tunes on the caller's queries, in the request and as a job whose queries go when it ends", async () => {
    // Fresh draws around the same centres: not rows of the index.
    const rng = mulberry32(99);
    const fresh = rows(0, 30).map((r) => r.values.map((x) => x + (rng() - 0.5) * 0.5));
    const tune = (body: object) => call('POST', `/v1/collections/items/versions/${version}/tune`, body);
    // 3,000 rows × 30 queries is under the sync limit (1,000 rows × 100 queries here).
    const sync = await tune({ targetRecall: 0.9, queries: fresh });
    expect(sync.status).toBe(200);
    expect(sync.json).toMatchObject({ source: 'supplied', queries: 30, rows: ROWS });
    expect(sync.json.recall).toBeGreaterThanOrEqual(0.9);

    const started = await tune({ targetRecall: 0.9, queries: fresh, async: true });
    expect(started.status).toBe(202);
    expect(started.json.input).toEqual({ targetRecall: 0.9, k: 10, sample: 30, queries: true });
    const job = await shoal.collection('items').waitForTune(started.json.id, { intervalMs: 100, timeoutMs: 15_000 });
    expect(job).toMatchObject({ status: 'succeeded', evaluation: { source: 'supplied', queries: 30 } });
    // The same queries and version: the same sweep as the synchronous tune.
    expect(job.evaluation!.tuning!.table.map((r) => [r.nprobe, r.ef, r.recall])).toEqual(
      sync.json.tuning.table.map((r: { nprobe: number; ef: number; recall: number }) => [r.nprobe, r.ef, r.recall]),
    );
    const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(makeClientConfig(server.shoal.endpoints, 'dynamodb')));
    const kept = await ddb.send(
      new GetCommand({
        TableName: server.shoal.resources.catalogTable,
        Key: { pk: 'COL#items', sk: `TUNEQ#${job.id}` },
      }),
    );
    expect(kept.Item).toBeUndefined();
    ddb.destroy();

    for (const [body, field] of [
      [{ targetRecall: 0.9, queries: fresh, sample: 40 }, 'sample'],
      [{ targetRecall: 0.9, queries: fresh.map((q, i) => (i === 3 ? q.slice(1) : q)) }, 'queries[3]'],
      [{ targetRecall: 0.9, queries: fresh.slice(0, 10) }, 'queries'],
    ] as const) {
      const res = await tune(body);
      expect(res.status).toBe(400);
      expect(res.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field });
    }
    // A job's queries live in one DynamoDB item: at most 81,920 floats (1,300 × 64 is more), refused up front.
    expect((await call('POST', '/v1/collections', { name: 'wide', dimension: 64, metric: 'l2' })).status).toBe(201);
    const wide = Array.from({ length: 1300 }, (_, i) => Array.from({ length: 64 }, (_, d) => (i * d) % 7));
    const big = await call('POST', '/v1/collections/wide/versions/1/tune', {
      targetRecall: 0.9,
      queries: wide,
      async: true,
    });
    expect(big.status).toBe(400);
    expect(big.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'queries' });
    expect(big.json.error.message).toContain('at most 1280 queries');
  }, 30_000);

  it('ends a job whose version does not exist failed with NOT_FOUND', async () => {
    const started = await call('POST', '/v1/collections/items/versions/999/tune', { targetRecall: 0.9, async: true });
    expect(started).toMatchObject({ status: 202, json: { status: 'queued', version: 999 } });
    const job = await shoal.collection('items').waitForTune(started.json.id, { intervalMs: 100, timeoutMs: 10_000 });
    expect(job).toMatchObject({ status: 'failed', error: { code: 'NOT_FOUND' } });
    expect(job.error!.message).toContain('999');
    expect(job.evaluation).toBeUndefined();
    // An unknown collection is refused up front.
    const gone = await call('POST', '/v1/collections/nope/versions/1/tune', { targetRecall: 0.9, async: true });
    expect(gone).toMatchObject({ status: 404, json: { error: { code: 'NOT_FOUND' } } });
  }, 20_000);
});
