/**
 * A re-embedding migration end to end over HTTP (docs/models.md): a collection embedded with model v1
 * (PCA-like projection to 16 dims) migrates to v2 (24 dims) while writes land on the source; the target
 * ends with exactly the source's live rows, each embedded by v2, and the report compares the two. The
 * stack runs with a minute of GSI lag (`SHOAL_FAULTS=gsi-lag=60000`, as AWS's eventually consistent
 * index can behave at worst): the listing then shows the job nothing, and only the strongly consistent
 * write-log catch-up can make the target complete.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearProjectionModel } from '../../shared/models/onnx.js';
import { mulberry32 } from '../../shared/random.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

let server: HttpShoal;
const call: HttpShoal['call'] = (...args) => server.call(...args);
let savedFaults: string | undefined;

const D = 48;
const rand = mulberry32(48);
const model = (k: number): Uint8Array =>
  linearProjectionModel({
    inputDim: D,
    outputDim: k,
    weights: Float32Array.from({ length: D * k }, () => rand() - 0.5),
    normalize: true,
  });
/** 6 clusters of raw inputs; the label is the cluster. */
const row = (i: number): number[] => Array.from({ length: D }, (_, d) => (d % 6 === i % 6 ? 2 : 0) + rand());

async function registerOnnx(name: string, bytes: Uint8Array, dimension: number): Promise<number> {
  const reg = await call('POST', `/v1/models/${name}/versions`, {
    dimension,
    metric: 'cosine',
    format: 'onnx',
    artifact: Buffer.from(bytes).toString('base64'),
  });
  expect(reg.status).toBe(201);
  const v = reg.json.model.version as number;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  expect((await call('POST', `/v1/models/${name}/versions/${v}/commit`, { sha256 })).status).toBe(200);
  return v;
}

beforeAll(async () => {
  savedFaults = process.env.SHOAL_FAULTS;
  process.env.SHOAL_FAULTS = 'gsi-lag=60000';
  server = await startHttpShoal('migration');
  await registerOnnx('enc', model(16), 16);
  await registerOnnx('enc', model(24), 24);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (savedFaults === undefined) delete process.env.SHOAL_FAULTS;
  else process.env.SHOAL_FAULTS = savedFaults;
});

describe('POST /v1/collections/{name}/migrations', () => {
  it('re-embeds every live row into a v2 collection, carries writes made meanwhile, and reports', async () => {
    expect(
      (await call('POST', '/v1/collections', { name: 'items', embedding: { model: 'enc', version: 1 } })).status,
    ).toBe(201);
    const N = 1200;
    for (let i = 0; i < N; i += 400) {
      const vectors = Array.from({ length: 400 }, (_, j) => ({
        id: `i${i + j}`,
        inputs: row(i + j),
        metadata: { label: (i + j) % 6 },
      }));
      expect((await call('POST', '/v1/collections/items/vectors', { vectors })).status).toBe(200);
    }
    // A row upserted as values has no raw input: reported, not migrated.
    const [one] = (await call('POST', '/v1/collections/items/search', { input: row(0), k: 1, include: ['values'] }))
      .json.results;
    expect(
      (await call('POST', '/v1/collections/items/vectors', { vectors: [{ id: 'plain', values: one.values }] })).status,
    ).toBe(200);

    const started = await call('POST', '/v1/collections/items/migrations', {
      to: { model: 'enc', version: 2 },
      labelField: 'label',
      k: 5,
      sample: 60,
    });
    expect(started.status).toBe(202);
    const id = started.json.migration.id as string;
    expect(started.json.migration).toMatchObject({
      source: 'items',
      target: 'items-enc-v2',
      from: { model: 'enc', version: 1 },
      to: { model: 'enc', version: 2 },
    });
    // Writes while it runs: 50 new rows, 10 deletes, 10 rewrites with new metadata.
    const during = Array.from({ length: 50 }, (_, j) => ({ id: `n${j}`, inputs: row(j), metadata: { label: j % 6 } }));
    expect((await call('POST', '/v1/collections/items/vectors', { vectors: during })).status).toBe(200);
    const deleted = Array.from({ length: 10 }, (_, j) => `i${j * 7}`);
    expect((await call('POST', '/v1/collections/items/vectors/delete', { ids: deleted })).status).toBe(200);
    const rewritten = Array.from({ length: 10 }, (_, j) => ({
      id: `i${500 + j}`,
      inputs: row(500 + j),
      metadata: { label: (500 + j) % 6, rewritten: true },
    }));
    expect((await call('POST', '/v1/collections/items/vectors', { vectors: rewritten })).status).toBe(200);
    const midway = await call('GET', `/v1/collections/items/migrations/${id}`);
    expect(['queued', 'running'], 'the writes must land while the job runs').toContain(midway.json.state);
    expect(['copy', 'catch-up'], 'the writes must land before the job syncs').toContain(midway.json.phase);

    let job = midway.json;
    for (let i = 0; i < 600 && !['done', 'failed', 'cancelled'].includes(job.state); i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = (await call('GET', `/v1/collections/items/migrations/${id}`)).json;
    }
    expect(job.state, JSON.stringify(job)).toBe('done');
    expect(job.progress.rejected).toBe(1);
    expect(job.rejects).toEqual([{ id: 'plain', reason: expect.stringMatching(/no raw input/) }]);

    // The target: the source's live rows minus the one without input, embedded by v2 (24 dims).
    const target = await call('GET', '/v1/collections/items-enc-v2');
    expect(target.json).toMatchObject({ dimension: 24, embedding: { model: 'enc', version: 2 } });
    expect(target.json.stats.count).toBe(N + 50 - 10);
    const got = await call('POST', '/v1/collections/items-enc-v2/vectors/get', {
      ids: [...deleted, 'n3', 'i505', 'plain'],
    });
    expect(got.json.vectors.map((v: { id: string }) => v.id).sort()).toEqual(['i505', 'n3']);
    const i505 = got.json.vectors.find((v: { id: string }) => v.id === 'i505');
    expect(i505.metadata).toEqual({ label: 505 % 6, rewritten: true });

    // The comparison: cluster structure survives the projection, so labels agree and neighbours overlap.
    expect(job.report).toMatchObject({ k: 5, queries: 60 });
    expect(job.report.overlapAtK).toBeGreaterThan(0);
    expect(job.report.overlapAtK).toBeLessThanOrEqual(1);
    expect(job.report.labelAgreement.field).toBe('label');
    expect(job.report.labelAgreement.source).toBeGreaterThan(0.9);
    expect(job.report.labelAgreement.target).toBeGreaterThan(0.9);
    const list = await call('GET', '/v1/collections/items/migrations');
    expect(list.json.migrations.map((m: { id: string }) => m.id)).toEqual([id]);
  }, 120_000);

  it('refuses what cannot migrate, naming the field', async () => {
    expect((await call('POST', '/v1/collections', { name: 'raw', dimension: 16, metric: 'cosine' })).status).toBe(201);
    const noFn = await call('POST', '/v1/collections/raw/migrations', { to: { model: 'enc', version: 2 } });
    expect(noFn.status).toBe(400);
    expect(noFn.json.error.field).toBe('name');
    const same = await call('POST', '/v1/collections/items/migrations', {
      to: { model: 'enc', version: 1 },
      target: 'other',
    });
    expect(same.status).toBe(400);
    expect(same.json.error.field).toBe('to');
    const taken = await call('POST', '/v1/collections/items/migrations', {
      to: { model: 'enc', version: 2 },
      target: 'raw',
    });
    expect(taken.status).toBe(409);
    expect(taken.json.error.field).toBe('target');
    const both = await call('POST', '/v1/collections/items/migrations', {
      to: { model: 'enc', version: 2, alias: 'x' },
    });
    expect(both.status).toBe(400);
    expect(both.json.error.field).toBe('to');
    expect((await call('GET', '/v1/collections/items/migrations/mig_nope')).status).toBe(404);
  });
});
