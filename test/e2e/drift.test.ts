/**
 * Embedding drift over HTTP against a whole local Shoal (docs/drift.md): a collection of seeded clustered
 * vectors, its reference built on request, in-distribution queries that read as no drift, then queries
 * shifted by +3 on every dimension (after a reset, so they land in a window of their own) that read as an
 * alert. The stack flushes on every request (SHOAL_DRIFT_FLUSH_MS=0).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../shared/random.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

const DIM = 32;
const N = 1000;
const QUERIES = 300;

let server: HttpShoal;
const saved = process.env.SHOAL_DRIFT_FLUSH_MS;
const call: HttpShoal['call'] = (...args) => server.call(...args);

/** Seeded clustered vectors: 8 centres (components N(0, 3²)), each point a centre plus N(0, 1) noise. */
function clustered(n: number, seed: number, shift = 0): number[][] {
  const g = (rnd: () => number) => () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const cg = g(mulberry32(100));
  const centres = Array.from({ length: 8 }, () => Array.from({ length: DIM }, () => 3 * cg()));
  const rnd = mulberry32(seed);
  const pg = g(rnd);
  return Array.from({ length: n }, () => centres[Math.floor(rnd() * 8)].map((x) => x + pg() + shift));
}

/** A phase must not straddle an hour boundary (its queries would split over two windows). */
async function awayFromHourEnd(): Promise<void> {
  const left = 3_600_000 - (Date.now() % 3_600_000);
  if (left < 30_000) await new Promise((r) => setTimeout(r, left + 100));
}

async function searchAll(queries: number[][]): Promise<void> {
  for (let i = 0; i < queries.length; i += 10) {
    const res = await call('POST', '/v1/collections/drifty/search', { vectors: queries.slice(i, i + 10), k: 3 });
    expect(res.status).toBe(200);
  }
}

beforeAll(async () => {
  process.env.SHOAL_DRIFT_FLUSH_MS = '0';
  server = await startHttpShoal('drift');
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (saved === undefined) delete process.env.SHOAL_DRIFT_FLUSH_MS;
  else process.env.SHOAL_DRIFT_FLUSH_MS = saved;
});

describe('drift over HTTP', () => {
  it('reads no drift for in-distribution queries and an alert once the queries are shifted', async () => {
    expect((await call('POST', '/v1/collections', { name: 'drifty', dimension: DIM, metric: 'l2' })).status).toBe(201);
    const rows = clustered(N, 1);
    for (let s = 0; s < N; s += 500) {
      const vectors = rows.slice(s, s + 500).map((values, i) => ({ id: `v${s + i}`, values }));
      expect((await call('POST', '/v1/collections/drifty/vectors', { vectors })).status).toBe(200);
    }
    const reset = await call('POST', '/v1/collections/drifty/drift/reference');
    expect(reset.status).toBe(200);
    expect(reset.json).toMatchObject({ collection: 'drifty', reference: { rows: N, createdAt: expect.any(String) } });

    await awayFromHourEnd();
    await searchAll(clustered(QUERIES, 2));
    const calm = await call('GET', '/v1/collections/drifty/drift');
    expect(calm.status).toBe(200);
    expect(calm.json).toMatchObject({
      collection: 'drifty',
      model: null,
      reference: { rows: N },
      current: { query: { kind: 'query', count: QUERIES, status: 'ok' }, ingest: null },
      status: 'ok',
    });
    // The upserts before the first reference existed were not compared with anything.
    expect(calm.json.unreferenced).toBeGreaterThan(0);
    const calmPsi = calm.json.current.query.psi as number;
    expect(calmPsi).toBeLessThan(0.1);

    // Reset (same rows, so the same distribution): the shifted queries get a window of their own.
    expect((await call('POST', '/v1/collections/drifty/drift/reference')).status).toBe(200);
    await awayFromHourEnd();
    await searchAll(clustered(QUERIES, 3, 3));
    const shifted = await call('GET', '/v1/collections/drifty/drift?kind=query&hours=2');
    expect(shifted.status).toBe(200);
    expect(shifted.json.current.query).toMatchObject({ count: QUERIES, status: 'alert' });
    expect(shifted.json.current.query.psi).toBeGreaterThan(0.25);
    expect(shifted.json.current.query.psi).toBeGreaterThan(calmPsi);
    expect(shifted.json.current.query.meanShift).toBeGreaterThan(0.5);
    expect(shifted.json.status).toBe('alert');
  }, 120_000);

  it('reads through an alias, and refuses bad parameters naming them', async () => {
    expect((await call('PUT', '/v1/aliases/drifty-live', { collection: 'drifty' })).status).toBe(201);
    const counted = async () => {
      const res = await call('GET', '/v1/collections/drifty-live/drift?kind=query&hours=2');
      expect(res.status).toBe(200);
      expect(res.json.collection).toBe('drifty');
      return (res.json.windows as Array<{ count: number }>).reduce((a, w) => a + w.count, 0);
    };
    // Searches through the alias count on the collection they searched.
    const before = await counted();
    const viaAlias = await call('POST', '/v1/collections/drifty-live/search', { vectors: clustered(10, 4), k: 1 });
    expect(viaAlias.status).toBe(200);
    expect(await counted()).toBe(before + 10);
    const aliasReset = await call('POST', '/v1/collections/drifty-live/drift/reference');
    expect(aliasReset.status).toBe(400);
    expect(aliasReset.json.error.field).toBe('name');
    for (const [query, field] of [
      ['hours=0', 'hours'],
      ['hours=169', 'hours'],
      ['hours=x', 'hours'],
      ['kind=both', 'kind'],
    ]) {
      const res = await call('GET', `/v1/collections/drifty/drift?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field });
    }
    expect((await call('GET', '/v1/collections/nope/drift')).status).toBe(404);
  });
});
