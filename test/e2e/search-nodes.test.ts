/**
 * `npm start` with a resident search node (SHOAL_LOCAL_SEARCH_NODES=1, docs/architecture.md §7.7): the node
 * runs in its own thread with its own shard cache, and an indexed search over HTTP is scattered to it over
 * HTTP rather than to the slot functions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';
import { vectorInputs } from '../helpers/random.js';

let server: HttpShoal;
let nodeUrl: string;
const vectors = vectorInputs(300, 8, 17, 'e');

beforeAll(async () => {
  process.env.SHOAL_SCATTER_MIN_MB = '0';
  process.env.SHOAL_SEARCH_SLOTS = '3';
  process.env.SHOAL_BUILD_DELTA_MIN_ROWS = '100000';
  process.env.SHOAL_BUILD_DELTA_MAX_AGE_S = '86400';
  server = await startHttpShoal('nodes', { searchNodes: true });
  // Set for the api by the start (and restored by the stop).
  nodeUrl = process.env.SHOAL_SEARCH_NODES ?? '';
}, 120_000);

afterAll(async () => {
  await server?.stop();
  for (const v of [
    'SHOAL_SCATTER_MIN_MB',
    'SHOAL_SEARCH_SLOTS',
    'SHOAL_BUILD_DELTA_MIN_ROWS',
    'SHOAL_BUILD_DELTA_MAX_AGE_S',
  ]) {
    delete process.env[v];
  }
});

describe('npm start with a search node', () => {
  it('serves indexed searches from the node thread', async () => {
    expect(nodeUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const idle = (await (await fetch(`${nodeUrl}/health`)).json()) as { cache: { misses: number } };
    expect(idle).toMatchObject({ status: 'ok', slots: 'all', cache: { misses: 0 } });

    const { call } = server;
    expect((await call('POST', '/v1/collections', { name: 'near', dimension: 8, metric: 'l2' })).status).toBe(201);
    const body = { vectors: vectors.map((v) => ({ id: v.id, values: Array.from(v.values) })) };
    expect((await call('POST', '/v1/collections/near/vectors', body)).status).toBe(200);
    expect((await call('POST', '/v1/collections/near/index')).status).toBe(202);
    const deadline = Date.now() + 60_000;
    while ((await call('GET', '/v1/collections/near/versions')).json.versions.length === 0) {
      if (Date.now() > deadline) throw new Error('no index version within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const i of [0, 123, 299]) {
      const res = await call('POST', '/v1/collections/near/search', {
        vector: Array.from(vectors[i].values),
        k: 5,
        consistency: 'eventual',
      });
      expect(res.status).toBe(200);
      expect(res.json.servedBy.version).toBe(1);
      expect(res.json.results[0].id).toBe(`e${i}`);
    }
    // The node loaded the shards itself: its cache is not the api's.
    const busy = (await (await fetch(`${nodeUrl}/health`)).json()) as { cache: { misses: number } };
    expect(busy.cache.misses).toBeGreaterThan(0);
  }, 120_000);
});
