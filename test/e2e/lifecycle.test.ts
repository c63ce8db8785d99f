/**
 * Lifecycle end to end over HTTP against a whole local Shoal (`startLocalShoal`): two
 * embeddings of the same real items (SIFT rows, and a seeded random projection of them to
 * 64 dimensions) as collections A and B behind the alias `products`; search through the
 * alias, move it to B, roll back to A (visible to the very next request), the history of
 * the moves; a model registry round trip (base64 artifact, sha256-verified commit) and a
 * model-bound collection refusing vectors of another model version.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../shared/io/datasets.js';
import { mulberry32 } from '../helpers/random.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

const N = 1000;
const DIM_B = 64;

let server: HttpShoal;
let dimA: number;
let itemsA: number[][];
let itemsB: number[][];

const call: HttpShoal['call'] = (...args) => server.call(...args);

beforeAll(async () => {
  const ds = loadDataset('sift5k', { maxBase: N, maxQueries: 1 });
  dimA = ds.dim;
  itemsA = Array.from({ length: N }, (_, i) => Array.from(ds.base.subarray(i * dimA, (i + 1) * dimA)));
  // B: the same items through another "embedding" — a seeded Gaussian random projection.
  const rng = mulberry32(42);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const proj = Array.from({ length: DIM_B }, () => Array.from({ length: dimA }, () => gauss() / Math.sqrt(DIM_B)));
  itemsB = itemsA.map((v) => proj.map((row) => row.reduce((s, w, j) => s + w * v[j], 0)));
  server = await startHttpShoal('life');
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('aliases over HTTP', () => {
  it('serves A then B through one alias, rolls back for the very next request, and records every move', async () => {
    expect((await call('POST', '/v1/collections', { name: 'items-a', dimension: dimA, metric: 'l2' })).status).toBe(
      201,
    );
    expect((await call('POST', '/v1/collections', { name: 'items-b', dimension: DIM_B, metric: 'l2' })).status).toBe(
      201,
    );
    for (const [name, items] of [
      ['items-a', itemsA],
      ['items-b', itemsB],
    ] as const) {
      for (let s = 0; s < N; s += 500) {
        const vectors = items.slice(s, s + 500).map((values, i) => ({ id: `item-${s + i}`, values }));
        expect((await call('POST', `/v1/collections/${name}/vectors`, { vectors })).status).toBe(200);
      }
    }
    const created = await call('PUT', '/v1/aliases/products', { collection: 'items-a', reason: 'launch' });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      name: 'products',
      collection: 'items-a',
      version: null,
      revision: 1,
      experiment: null,
    });
    expect((await call('PUT', '/v1/aliases/items-a', { collection: 'items-b' })).json.error.code).toBe('CONFLICT');

    const viaA = await call('POST', '/v1/collections/products/search', { vector: itemsA[17], k: 3 });
    expect(viaA.status).toBe(200);
    expect(viaA.json.servedBy).toEqual({ collection: 'items-a', version: expect.any(Number), alias: 'products' });
    expect(viaA.json.results[0].id).toBe('item-17');
    expect((await call('GET', '/v1/collections/products')).json).toMatchObject({
      name: 'items-a',
      stats: { count: N },
      alias: { name: 'products' },
    });

    // Move to B (new embedding); a stale revision is refused.
    const moved = await call('PUT', '/v1/aliases/products', {
      collection: 'items-b',
      expectedRevision: 1,
      reason: 'new embedding',
    });
    expect(moved.status).toBe(200);
    expect(moved.json.revision).toBe(2);
    const stale = await call('PUT', '/v1/aliases/products', { collection: 'items-a', expectedRevision: 1 });
    expect(stale.status).toBe(409);
    expect(stale.json.error).toMatchObject({ code: 'CONFLICT', details: { expectedRevision: 1, currentRevision: 2 } });
    const viaB = await call('POST', '/v1/collections/products/search', { vector: itemsB[17], k: 3 });
    expect(viaB.json.servedBy).toEqual({ collection: 'items-b', version: expect.any(Number), alias: 'products' });
    expect(viaB.json.results[0].id).toBe('item-17');
    // B has 64 dims
    expect((await call('POST', '/v1/collections/products/search', { vector: itemsA[17] })).status).toBe(400);

    // One-call rollback: the very next request is served by A again.
    const back = await call('POST', '/v1/aliases/products/rollback', { reason: 'CTR dropped' });
    expect(back.status).toBe(200);
    expect(back.json).toMatchObject({ collection: 'items-a', revision: 3 });
    const again = await call('POST', '/v1/collections/products/search', { vector: itemsA[17], k: 3 });
    expect(again.json.servedBy).toEqual({ collection: 'items-a', version: expect.any(Number), alias: 'products' });
    expect(again.json.results[0].id).toBe('item-17');
    const vec = await call('POST', '/v1/collections/products/vectors/get', { ids: ['item-3'] });
    expect(vec.json.vectors[0].values).toHaveLength(dimA);

    const history = await call('GET', '/v1/aliases/products/history');
    const who = `key:${createHash('sha256').update('life-key').digest('hex').slice(0, 12)}`;
    expect(
      history.json.history.map(
        (h: {
          action: string;
          by: string;
          from: { collection: string } | null;
          to: { collection: string };
          reason: string;
        }) => [h.action, h.by, h.from?.collection ?? null, h.to.collection, h.reason],
      ),
    ).toEqual([
      ['rollback', who, 'items-b', 'items-a', 'CTR dropped'],
      ['move', who, 'items-a', 'items-b', 'new embedding'],
      ['create', who, null, 'items-a', 'launch'],
    ]);
    expect((await call('GET', '/v1/aliases')).json.aliases.map((a: { name: string }) => a.name)).toEqual(['products']);
    expect((await call('DELETE', '/v1/aliases/products?expectedRevision=2')).status).toBe(409);
    expect((await call('DELETE', '/v1/aliases/products')).status).toBe(200);
    expect((await call('POST', '/v1/collections/products/search', { vector: itemsA[17] })).status).toBe(404);
  }, 60_000);

  it(
    'registers a model version, verifies its sha256, ' + 'binds a collection and refuses other model versions',
    async () => {
      const artifact = Buffer.from('random-projection-64 seed=42');
      const sha = createHash('sha256').update(artifact).digest('hex');
      const reg = await call('POST', '/v1/models/proj/versions', {
        dimension: DIM_B,
        metric: 'l2',
        framework: 'numpy',
        params: { seed: 42 },
        artifact: artifact.toString('base64'),
      });
      expect(reg.status).toBe(201);
      expect(reg.json.model).toMatchObject({ name: 'proj', version: 1, state: 'pending' });
      const bad = await call('POST', '/v1/models/proj/versions/1/commit', { sha256: '0'.repeat(64) });
      expect(bad.status).toBe(400);
      expect(bad.json.error).toMatchObject({ field: 'sha256', details: { actual: sha } });
      expect((await call('POST', '/v1/models/proj/versions/1/commit', { sha256: sha })).json.state).toBe('ready');
      expect((await call('PUT', '/v1/models/proj/versions/1/artifact', { artifact: 'AAAA' })).status).toBe(409);
      await call('POST', '/v1/models/proj/versions', { dimension: DIM_B, metric: 'l2', params: { seed: 7 } });
      const diff = await call('GET', '/v1/models/proj/compare?a=1&b=2');
      expect(diff.json).toMatchObject({ a: 1, b: 2, params: { seed: { a: 42, b: 7 } }, dimension: null });
      expect((await call('PUT', '/v1/models/proj/aliases/prod', { version: 1 })).status).toBe(201);

      const bound = await call('POST', '/v1/collections', {
        name: 'bound',
        dimension: DIM_B,
        metric: 'l2',
        model: { name: 'proj', version: 1 },
        minRecall: 0.9,
      });
      expect(bound.status).toBe(201);
      expect(bound.json).toMatchObject({ model: { name: 'proj', version: 1 }, minRecall: 0.9 });
      const mismatch = await call('POST', '/v1/collections/bound/vectors', {
        vectors: [{ id: 1, values: itemsB[1] }],
        modelVersion: { name: 'proj', version: 2 },
      });
      expect(mismatch.status).toBe(400);
      expect(mismatch.json.error).toMatchObject({ code: 'MODEL_MISMATCH', field: 'modelVersion.version' });
      expect(
        (
          await call('POST', '/v1/collections/bound/vectors', {
            vectors: [{ id: 1, values: itemsB[1] }],
            modelVersion: { name: 'proj', version: 1 },
          })
        ).status,
      ).toBe(200);
      // Quality gate over HTTP: no evaluated version yet.
      const gated = await call('PUT', '/v1/aliases/bound-alias', { collection: 'bound' });
      expect(gated.status).toBe(409);
      expect(gated.json.error).toMatchObject({ code: 'QUALITY_GATE', details: { minRecall: 0.9, evaluated: false } });
      expect((await call('PUT', '/v1/aliases/bound-alias', { collection: 'bound', force: true })).status).toBe(201);
    },
    60_000,
  );
});
