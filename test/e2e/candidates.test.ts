/**
 * Candidate index lines end to end over HTTP against a whole local Shoal: the API queues
 * builds, the index-builder function (woken through the emulated SQS queue) builds the
 * serving and the candidate line, the candidate follows new writes and deletes, and a
 * promotion switches what the collection serves for the very next request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../shared/io/datasets.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

const N = 1000;
let server: HttpShoal;
let items: number[][];

const call: HttpShoal['call'] = (...args) => server.call(...args);

/** Polls until `ok` holds for the response (the builder runs asynchronously behind the queue). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function until(route: string, ok: (json: any) => boolean, timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { json } = await call('GET', route);
    if (ok(json)) return json;
    if (Date.now() > deadline) throw new Error(`timed out waiting on ${route}: ${JSON.stringify(json)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  const ds = loadDataset('sift5k', { maxBase: N, maxQueries: 1 });
  items = Array.from({ length: N }, (_, i) => Array.from(ds.base.subarray(i * ds.dim, (i + 1) * ds.dim)));
  server = await startHttpShoal('cand');
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('candidate index lines over HTTP', () => {
  it('builds a candidate with new params beside the serving line, keeps it current, and promotes it', async () => {
    const created = await call('POST', '/v1/collections', {
      name: 'docs',
      dimension: 128,
      metric: 'l2',
      index: { m: 4, efConstruction: 8, efSearch: 4 },
    });
    expect(created.status).toBe(201);
    for (let s = 0; s < N; s += 500) {
      const vectors = items.slice(s, s + 500).map((values, i) => ({ id: `d${s + i}`, values }));
      expect((await call('POST', '/v1/collections/docs/vectors', { vectors })).status).toBe(200);
    }
    expect((await call('POST', '/v1/collections/docs/index')).status).toBe(202);
    await until('/v1/collections/docs/candidates', (j) => j.serving?.head?.liveRows === N);

    const bad = await call('POST', '/v1/collections/docs/index', { index: { engine: 'flat', efSearch: 10 } });
    expect(bad).toMatchObject({ status: 400, json: { error: { code: 'VALIDATION_ERROR', field: 'index.efSearch' } } });
    const queued = await call('POST', '/v1/collections/docs/index', {
      index: { m: 16, efConstruction: 100, efSearch: 64 },
      candidate: 'wide',
    });
    expect(queued).toMatchObject({
      status: 202,
      json: { queued: true, candidate: { line: 'wide', serving: false, head: null } },
    });
    expect((await call('POST', '/v1/collections/docs/index', { index: { m: 32 }, candidate: 'wide' })).status).toBe(
      409,
    );
    const built = await until('/v1/collections/docs/candidates/wide', (j) => j.head !== null);
    expect(built).toMatchObject({
      line: 'wide',
      head: { liveRows: N },
      index: { engine: 'hnsw', m: 16, efConstruction: 100, efSearch: 64 },
    });

    // Writes after the candidate exists reach both lines.
    const more = items.slice(0, 20).map((values, i) => ({ id: `n${i}`, values: values.map((x) => x + 0.5) }));
    await call('POST', '/v1/collections/docs/vectors', { vectors: more });
    await call('POST', '/v1/collections/docs/vectors/delete', { ids: ['d1', 'd2'] });
    await call('POST', '/v1/collections/docs/index');
    const lines = await until(
      '/v1/collections/docs/candidates',
      (j) => j.serving.lagSeq === 0 && j.candidates[0]?.lagSeq === 0,
    );
    expect(lines.serving.head.liveRows).toBe(N + 18);
    expect(lines.candidates[0].head.liveRows).toBe(N + 18);

    // Serving still answers from the main line; the candidate's own evaluation gates its promotion.
    const before = await call('POST', '/v1/collections/docs/search', { vector: items[500], k: 1 });
    expect(before.json.servedBy).toEqual({ collection: 'docs', version: lines.serving.head.version });
    expect((await call('PATCH', '/v1/collections/docs', { minRecall: 0.9 })).status).toBe(200);
    const gated = await call('POST', '/v1/collections/docs/candidates/wide/promote', {});
    expect(gated).toMatchObject({
      status: 409,
      json: { error: { code: 'QUALITY_GATE', details: { evaluated: false } } },
    });
    const ev = await call('POST', `/v1/collections/docs/versions/${lines.candidates[0].head.version}/evaluate`, {
      sample: 50,
      k: 10,
    });
    expect(ev.json.recall).toBeGreaterThanOrEqual(0.9);
    const promoted = await call('POST', '/v1/collections/docs/candidates/wide/promote', { reason: 'higher recall' });
    expect(promoted).toMatchObject({
      status: 200,
      json: { previous: 'main', forced: false, serving: { line: 'wide' } },
    });

    const after = await call('POST', '/v1/collections/docs/search', {
      vector: items[500],
      k: 1,
      consistency: 'strong',
    });
    expect(after.json.servedBy).toEqual({
      collection: 'docs',
      version: lines.candidates[0].head.version,
      line: 'wide',
    });
    expect(after.json.results[0].id).toBe('d500');
    const gone = await call('POST', '/v1/collections/docs/search', { vector: items[1], k: 1, consistency: 'strong' });
    expect(gone.json.results[0].id).not.toBe('d1');
    expect((await call('GET', '/v1/collections/docs')).json).toMatchObject({ indexLine: 'wide', candidates: ['main'] });
    expect((await call('DELETE', '/v1/collections/docs/candidates/main')).json).toEqual({ deleted: true });
    expect((await call('GET', '/v1/collections/docs/candidates')).json.candidates).toEqual([]);
  });
});
