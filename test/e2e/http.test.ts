/**
 * End to end over HTTP against a whole local Shoal (`startLocalShoal`: the same stack as
 * `npm start`): 20 000 real MNIST vectors ingested through the API, recall against exact
 * search from the tail (before any build) and from the shards (after it), filters,
 * deletes, versions, and a restart on the same data dir.
 */
import { createHash } from 'node:crypto';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClientConfig } from '../../infra/local/aws-clients.js';
import { exactTopKBatch } from '../../shared/engine/distance.js';
import { loadDataset } from '../../shared/io/datasets.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

const N = 20_000;
const NQ = 50;
const K = 10;
const COLLECTION = 'mnist';

let server: HttpShoal;
let base: Float32Array;
let labels: Uint8Array;
let queries: Float32Array;
let truth: number[][];
const dim = 784;

const call: HttpShoal['call'] = (...args) => server.call(...args);

/**
 * A strong read as a client makes it: a 503 TAIL_BUDGET_EXCEEDED (a large tail on a loaded machine) is
 * retried; the tail cache keeps what the first try read, so the retry finishes the rest.
 */
const strongRead: HttpShoal['call'] = async (...args) => {
  for (let attempt = 1; ; attempt++) {
    const res = await call(...args);
    if (res.status !== 503 || res.json?.error?.code !== 'TAIL_BUDGET_EXCEEDED' || attempt === 5) return res;
  }
};

function recall(results: Array<Array<{ id: string }>>): number {
  let hits = 0;
  results.forEach((list, q) => {
    const want = new Set(truth[q].map(String));
    hits += list.filter((h) => want.has(h.id)).length;
  });
  return hits / (results.length * K);
}

const queryBody = (extra: Record<string, unknown> = {}) => ({
  vectors: Array.from({ length: NQ }, (_, q) => Array.from(queries.subarray(q * dim, (q + 1) * dim))),
  k: K,
  ...extra,
});

beforeAll(async () => {
  const ds = await loadDataset('mnist', { maxBase: N, maxQueries: NQ });
  base = ds.base;
  labels = ds.labels!;
  queries = ds.queries.subarray(0, NQ * dim);
  const view = { data: base, offset: 0, stride: dim, dim, count: N, normalized: false };
  truth = exactTopKBatch(view, 'l2', queries, NQ, K).map((hits) => hits.map((h) => h.row));
  // Keep the builder's batching policy from indexing during ingest, so the first searches
  // really are answered by the unindexed tail; the explicit build request still runs.
  process.env.SHOAL_BUILD_DELTA_MIN_ROWS = String(10 * N);
  process.env.SHOAL_BUILD_DELTA_MAX_AGE_S = '86400';
  // Scatter every indexed search over 3 searcher slots through the Lambda Invoke API, as on AWS.
  process.env.SHOAL_SCATTER_MIN_MB = '0';
  process.env.SHOAL_SEARCH_SLOTS = '3';
  server = await startHttpShoal('http', { apiKey: 'e2e-key' });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  delete process.env.SHOAL_BUILD_DELTA_MIN_ROWS;
  delete process.env.SHOAL_BUILD_DELTA_MAX_AGE_S;
  delete process.env.SHOAL_SCATTER_MIN_MB;
  delete process.env.SHOAL_SEARCH_SLOTS;
});

describe('Shoal over HTTP', () => {
  it('requires the API key and reports local endpoints in health', async () => {
    expect((await call('GET', '/v1/health', undefined, null)).status).toBe(401);
    expect((await call('GET', '/v1/health', undefined, 'wrong')).status).toBe(401);
    const health = await call('GET', '/v1/health');
    expect(health.status).toBe(200);
    // Keys stored hashed in the catalog (what the AWS authorizer reads) are accepted too.
    const ddb = new DynamoDBClient(makeClientConfig(server.shoal.endpoints, 'dynamodb'));
    const hash = (t: string) => createHash('sha256').update(t).digest('hex');
    await ddb.send(
      new PutItemCommand({
        TableName: 'shoal-catalog',
        Item: { pk: { S: `APIKEY#${hash('team-key')}` }, sk: { S: 'META' }, keyId: { S: 'team' } },
      }),
    );
    await ddb.send(
      new PutItemCommand({
        TableName: 'shoal-catalog',
        Item: { pk: { S: `APIKEY#${hash('old-key')}` }, sk: { S: 'META' }, disabled: { BOOL: true } },
      }),
    );
    ddb.destroy();
    expect((await call('GET', '/v1/health', undefined, 'team-key')).status).toBe(200);
    expect((await call('GET', '/v1/health', undefined, 'old-key')).status).toBe(401);
    expect(health.json).toMatchObject({
      status: 'ok',
      local: { bucket: 'shoal-local', s3Endpoint: server.shoal.endpoints.s3 },
    });
  });

  it('rejects bad input with a stable code and the field, writing nothing', async () => {
    const created = await call('POST', '/v1/collections', {
      name: COLLECTION,
      dimension: dim,
      metric: 'l2',
      index: { efConstruction: 100 },
    });
    expect(created.status).toBe(201);
    const bad = await call('POST', `/v1/collections/${COLLECTION}/vectors`, {
      vectors: [{ id: 'x', values: [1, 2, 3] }],
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'vectors[0].values' });
    const badFilter = await call('POST', `/v1/collections/${COLLECTION}/search`, {
      vector: new Array(dim).fill(0),
      filter: 'label ==',
    });
    expect(badFilter.status).toBe(400);
    expect(badFilter.json.error.code).toBe('FILTER_SYNTAX_ERROR');
    expect((await call('GET', '/v1/collections/nope')).status).toBe(404);
    expect((await call('POST', '/v1/collections', { name: COLLECTION, dimension: 4, metric: 'l2' })).status).toBe(409);
  });

  it(`ingests ${N} real vectors and finds them from the tail with recall@10 ≥ 0.95`, async () => {
    for (let start = 0; start < N; start += 1000) {
      const vectors = [];
      for (let i = start; i < Math.min(N, start + 1000); i++) {
        vectors.push({
          id: i,
          values: Array.from(base.subarray(i * dim, (i + 1) * dim)),
          metadata: { label: labels[i] },
        });
      }
      const res = await call('POST', `/v1/collections/${COLLECTION}/vectors`, { vectors });
      expect(res.status).toBe(200);
      expect(res.json.upserted).toBe(vectors.length);
    }
    const info = await strongRead('GET', `/v1/collections/${COLLECTION}`);
    expect(info.json.stats).toMatchObject({ count: N, pending: N, indexed: 0, version: 0 });
    const res = await strongRead('POST', `/v1/collections/${COLLECTION}/search`, queryBody());
    expect(res.status).toBe(200);
    expect(res.json.servedBy).toEqual({ collection: COLLECTION, version: 0 });
    expect(recall(res.json.results)).toBeGreaterThanOrEqual(0.95);
  }, 300_000);

  it(
    'builds an index version on request (queued to the builder) ' + 'and serves from shards with recall@10 ≥ 0.95',
    async () => {
      const built = await call('POST', `/v1/collections/${COLLECTION}/index`);
      expect(built.status).toBe(202);
      expect(built.json).toMatchObject({ queued: true, built: false });
      const deadline = Date.now() + 240_000;
      let versions = await call('GET', `/v1/collections/${COLLECTION}/versions`);
      while (versions.json.versions.length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        versions = await call('GET', `/v1/collections/${COLLECTION}/versions`);
      }
      expect(versions.json.versions).toHaveLength(1);
      expect(versions.json.versions[0]).toMatchObject({ version: 1, watermark: N, stats: { liveRows: N } });
      for (const consistency of ['strong', 'eventual']) {
        const res = await call('POST', `/v1/collections/${COLLECTION}/search`, queryBody({ consistency }));
        expect(res.json.servedBy.version).toBe(1);
        expect(recall(res.json.results)).toBeGreaterThanOrEqual(0.95);
      }
    },
    300_000,
  );

  it('filters, deletes and gets through the API', async () => {
    const q = Array.from(queries.subarray(0, dim));
    const filtered = await call('POST', `/v1/collections/${COLLECTION}/search`, {
      vector: q,
      k: 10,
      filter: 'label == 3',
      include: ['metadata'],
    });
    expect(filtered.json.results).toHaveLength(10);
    expect(filtered.json.results.every((h: { metadata: { label: number } }) => h.metadata.label === 3)).toBe(true);
    // Every response says what it cost in storage (docs/architecture.md §7.6): a search reads at least the
    // collection and its manifest; the trace is per request, so the header is never a running total.
    const trips = Number(filtered.headers.get('x-shoal-round-trips'));
    expect(trips).toBeGreaterThanOrEqual(1);
    expect(trips).toBeLessThan(20);
    expect(filtered.headers.get('server-timing')).toMatch(/^storage;dur=[\d.]+;desc="\d+ round trips, \d+ calls"$/);
    const health = await call('GET', '/v1/health', undefined, null);
    expect(health.headers.get('x-shoal-round-trips')).toBe('0');
    const top = filtered.json.results[0].id as string;
    expect((await call('POST', `/v1/collections/${COLLECTION}/vectors/delete`, { ids: [top] })).json).toEqual({
      deleted: 1,
    });
    const after = await call('POST', `/v1/collections/${COLLECTION}/search`, {
      vector: q,
      k: 10,
      filter: { label: 3 },
    });
    expect(after.json.results.map((h: { id: string }) => h.id)).not.toContain(top);
    expect(after.json.results).toHaveLength(10);
    const got = await call('POST', `/v1/collections/${COLLECTION}/vectors/get`, { ids: [top, '1'] });
    expect(got.json.vectors.map((v: { id: string }) => v.id)).toEqual(['1']);
    expect(got.json.vectors[0].values).toHaveLength(dim);
  });

  it('keeps every collection and vector across a restart on the same data dir', async () => {
    await server.restart();
    const info = await call('GET', `/v1/collections/${COLLECTION}`);
    expect(info.status).toBe(200);
    expect(info.json.stats).toMatchObject({ count: N - 1, version: 1, pending: 1 });
    const res = await call('POST', `/v1/collections/${COLLECTION}/search`, queryBody());
    expect(recall(res.json.results)).toBeGreaterThanOrEqual(0.95);
  }, 120_000);
});
