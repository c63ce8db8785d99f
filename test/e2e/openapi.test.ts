/**
 * The OpenAPI document against a whole local Shoal over HTTP: a journey through every operation —
 * collections, vectors, search (single and batch), builds, versions, candidate lines, evaluation and
 * tuning, embedding drift, aliases, experiments and feedback, models and their uploads, embedding functions
 * and migrations, keys, imports —
 * plus the errors (400, 401, 404, 405, 409). Every response is validated against the document the server serves at
 * `GET /v1/openapi.json` (strictly: no undescribed field, no undeclared status), and every operation
 * must have answered at least one success.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearProjectionModel } from '../../shared/models/onnx.js';
import { mulberry32 } from '../helpers/random.js';
import { createOpenApiValidator, type OpenApiValidator } from '../helpers/openapi-validate.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';
import { ROOT } from '../helpers/repo.js';

const DIM = 4;
const N = 300;

let server: HttpShoal;
let validator: OpenApiValidator;
/** `METHOD /template` → statuses seen. */
const seen = new Map<string, Set<number>>();
const problems: string[] = [];

interface Reply {
  status: number;
  // Checked against the document's schemas; the assertions below read a few fields.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** A request with the server's key (or `key`; null = none); `raw` sends a body verbatim. */
async function send(
  method: string,
  route: string,
  opts: { body?: unknown; raw?: string; key?: string | null } = {},
): Promise<Reply> {
  const key = opts.key === undefined ? server.shoal.apiKey : opts.key;
  const res = await fetch(`${server.shoal.url}${route}`, {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  problems.push(...validator.check(method, route, res.status, json));
  const template = validator.templateOf(route);
  const op = `${method} ${template ?? route}`;
  seen.set(op, (seen.get(op) ?? new Set()).add(res.status));
  return { status: res.status, json };
}

const call = (method: string, route: string, body?: unknown) => send(method, route, { body });

/** Polls until `ok` holds (the builder and the importer run behind queues). */
async function until(route: string, ok: (json: Reply['json']) => boolean, timeoutMs = 45_000): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await call('GET', route);
    if (ok(reply.json)) return reply;
    if (Date.now() > deadline) throw new Error(`timed out waiting on ${route}: ${JSON.stringify(reply.json)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const rng = mulberry32(7);
const vec = () => Array.from({ length: DIM }, () => Math.round((rng() * 2 - 1) * 1e4) / 1e4);

beforeAll(async () => {
  server = await startHttpShoal('openapi');
  const served = await fetch(`${server.shoal.url}/v1/openapi.json`);
  validator = createOpenApiValidator((await served.json()) as Record<string, unknown>);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('the OpenAPI document over HTTP', () => {
  it('is served without a key, and is the committed docs/openapi.json but for the server version', async () => {
    const res = await send('GET', '/v1/openapi.json', { key: null });
    expect(res.status).toBe(200);
    const committed = JSON.parse(readFileSync(path.join(ROOT, 'docs/openapi.json'), 'utf8'));
    const live = await send('GET', '/healthz', { key: null });
    expect(live).toMatchObject({ status: 200, json: { status: 'ok' } });
    expect(res.json.info.version).toBe(live.json.version);
    expect({ ...res.json, info: { ...res.json.info, version: 'x' } }).toEqual({
      ...committed,
      info: { ...committed.info, version: 'x' },
    });
  });

  it('describes every answer of a journey through every operation', async () => {
    // --- errors before any data ---
    expect((await send('GET', '/v1/collections', { key: null })).status).toBe(401);
    expect((await send('GET', '/v1/collections', { key: 'wrong' })).status).toBe(401);
    expect((await call('GET', '/v1/nowhere')).status).toBe(404);
    expect((await call('PUT', '/v1/collections')).status).toBe(405);
    expect((await call('GET', '/v1/collections/nope')).status).toBe(404);
    expect((await send('POST', '/v1/collections', { raw: '{"name": ' })).json.error.code).toBe('INVALID_JSON');
    expect((await call('POST', '/v1/collections', { name: 'x', dimension: 0, metric: 'l2' })).status).toBe(400);
    expect((await call('GET', '/v1/health')).status).toBe(200);

    // --- collections and vectors ---
    for (const name of ['docs', 'docs2']) {
      const created = await call('POST', '/v1/collections', {
        name,
        dimension: DIM,
        metric: 'l2',
        index: { m: 8, efConstruction: 32 },
      });
      expect(created.status).toBe(201);
    }
    expect((await call('POST', '/v1/collections', { name: 'docs', dimension: DIM, metric: 'l2' })).status).toBe(409);
    expect((await call('GET', '/v1/collections')).json.collections).toHaveLength(2);
    expect((await call('PATCH', '/v1/collections/docs', { minRecall: null })).status).toBe(200);
    const items = Array.from({ length: N }, (_, i) => ({
      id: `v${i}`,
      values: vec(),
      metadata: { n: i, even: i % 2 === 0 },
    }));
    for (const name of ['docs', 'docs2']) {
      expect((await call('POST', `/v1/collections/${name}/vectors`, { vectors: items })).json).toEqual({ upserted: N });
    }
    expect((await call('GET', '/v1/collections/docs')).json.stats.count).toBe(N);
    const got = await call('POST', '/v1/collections/docs/vectors/get', { ids: ['v1', 'v2', 'missing'] });
    expect(got.json.vectors).toHaveLength(2);
    expect((await call('POST', '/v1/collections/docs/vectors/delete', { ids: ['v3'] })).json).toEqual({ deleted: 1 });
    expect((await call('POST', '/v1/collections/docs/vectors/delete', { filter: 'n == 5' })).json).toEqual({
      deleted: 1,
    });
    // The listing (a page with a cursor, then a filtered page) and a metadata patch.
    const page = await call('GET', '/v1/collections/docs/vectors?limit=3&include=values,metadata');
    expect(page.json.vectors).toHaveLength(3);
    const next = await call('GET', `/v1/collections/docs/vectors?cursor=${encodeURIComponent(page.json.nextCursor)}`);
    expect(next.status).toBe(200);
    expect(
      (await call('GET', `/v1/collections/docs/vectors?filter=${encodeURIComponent('even == true')}`)).status,
    ).toBe(200);
    expect((await call('PATCH', '/v1/collections/docs/vectors/v1', { metadata: { tag: 'x' } })).json).toEqual({
      upserted: 1,
    });
    expect((await call('PATCH', '/v1/collections/docs/vectors/nope', { metadata: { tag: 'x' } })).status).toBe(404);
    const single = await call('POST', '/v1/collections/docs/search', {
      vector: items[10].values,
      k: 3,
      filter: { even: true },
      include: ['metadata', 'values'],
    });
    expect(single.json.results[0]).toMatchObject({ id: 'v10', metadata: { n: 10 } });
    const batch = await call('POST', '/v1/collections/docs/search', {
      vectors: [items[10].values, items[20].values],
      k: 2,
      consistency: 'eventual',
    });
    expect(batch.json.results).toHaveLength(2);
    expect((await call('POST', '/v1/collections/docs/search', { vector: [1, 2] })).status).toBe(400);
    expect(
      (await call('POST', '/v1/collections/docs/search', { vector: items[0].values, filter: 'n ==' })).json.error.code,
    ).toBe('FILTER_SYNTAX_ERROR');

    // --- builds, versions, candidate lines, evaluation, tuning ---
    expect((await call('POST', '/v1/collections/docs/index')).status).toBe(202);
    expect((await call('POST', '/v1/collections/docs2/index')).status).toBe(202);
    await until('/v1/collections/docs/versions', (j) => j.versions.length > 0);
    await until('/v1/collections/docs2/versions', (j) => j.versions.length > 0);
    const queued = await call('POST', '/v1/collections/docs/index', { index: { m: 16 }, candidate: 'wide' });
    expect(queued).toMatchObject({ status: 202, json: { candidate: { line: 'wide', head: null } } });
    const wide = await until('/v1/collections/docs/candidates/wide', (j) => j.head !== null);
    expect((await call('GET', '/v1/collections/docs/candidates')).json.candidates).toHaveLength(1);
    const evaluated = await call('POST', `/v1/collections/docs/versions/${wide.json.head.version}/evaluate`, {
      sample: 20,
      k: 5,
    });
    expect(evaluated.status).toBe(200);
    const promoted = await call('POST', '/v1/collections/docs/candidates/wide/promote', { reason: 'wider' });
    expect(promoted).toMatchObject({ status: 200, json: { previous: 'main', serving: { line: 'wide' } } });
    expect((await call('DELETE', '/v1/collections/docs/candidates/main')).json).toEqual({ deleted: true });
    const versions = (await call('GET', '/v1/collections/docs/versions')).json.versions;
    const tuned = await call('POST', `/v1/collections/docs/versions/${versions[0].version}/tune`, {
      targetRecall: 0.5,
      k: 5,
    });
    expect(tuned.status).toBe(200);
    expect((await call('GET', '/v1/collections/docs/versions')).json.versions[0]).toHaveProperty('evaluation');
    const tuneJob = await call('POST', `/v1/collections/docs/versions/${versions[0].version}/tune`, {
      targetRecall: 0.5,
      k: 5,
      sample: 20,
      async: true,
    });
    expect(tuneJob).toMatchObject({ status: 202, json: { status: 'queued' } });
    const tuneDone = await until(`/v1/collections/docs/tune-jobs/${tuneJob.json.id}`, (j) => j.status === 'succeeded');
    expect(tuneDone.json.evaluation).toMatchObject({ queries: 20 });

    // --- embedding drift ---
    const reference = await call('POST', '/v1/collections/docs/drift/reference');
    expect(reference.json).toMatchObject({ collection: 'docs', reference: { rows: N - 2 } });
    expect((await call('POST', '/v1/collections/docs/search', { vectors: [vec(), vec()], k: 1 })).status).toBe(200);
    const drift = await call('GET', '/v1/collections/docs/drift?kind=query&hours=2');
    expect(drift.json).toMatchObject({ collection: 'docs', current: { query: { count: 2, status: 'insufficient' } } });
    expect((await call('GET', '/v1/collections/docs/drift?hours=0')).status).toBe(400);

    // --- aliases, experiments, feedback ---
    expect((await call('PUT', '/v1/aliases/prod', { collection: 'docs', reason: 'launch' })).status).toBe(201);
    expect((await call('PUT', '/v1/aliases/prod', { collection: 'docs2', expectedRevision: 1 })).status).toBe(200);
    expect((await call('PUT', '/v1/aliases/prod', { collection: 'docs', expectedRevision: 1 })).status).toBe(409);
    expect((await call('POST', '/v1/aliases/prod/rollback', { reason: 'back' })).json.collection).toBe('docs');
    expect((await call('GET', '/v1/aliases')).json.aliases).toHaveLength(1);
    expect((await call('GET', '/v1/aliases/prod/history')).json.history).toHaveLength(3);
    const started = await call('POST', '/v1/aliases/prod/experiment', {
      challenger: { collection: 'docs2' },
      mode: 'split',
      weight: 50,
      overlapSample: 1,
    });
    expect(started.status).toBe(201);
    expect((await call('GET', '/v1/aliases/prod')).json.experiment).toMatchObject({ state: 'running' });
    let queryId = '';
    for (let i = 0; i < 6; i++) {
      const res = await call('POST', '/v1/collections/prod/search', {
        vector: items[i].values,
        k: 2,
        stickyKey: `u${i}`,
      });
      queryId = res.json.queryId;
    }
    const fb = await call('POST', '/v1/feedback', { queryId, id: 'v0', event: 'click' });
    expect(fb.json.attributed).toBe(true);
    expect((await call('GET', '/v1/aliases/prod/experiment')).json.arms.champion).toHaveProperty('clickRate');
    expect((await call('POST', '/v1/aliases/prod/experiment/promote', { reason: 'won', force: true })).status).toBe(
      200,
    );
    const shadow = await call('POST', '/v1/aliases/prod/experiment', {
      challenger: { collection: 'docs' },
      mode: 'shadow',
    });
    expect(shadow.status).toBe(201);
    await call('POST', '/v1/collections/prod/search', { vector: items[0].values, k: 2 });
    expect((await call('POST', '/v1/aliases/prod/experiment/abort', { reason: 'enough' })).status).toBe(200);
    expect((await call('POST', '/v1/aliases/prod/experiment/abort')).status).toBe(409);
    expect((await call('DELETE', '/v1/aliases/prod?expectedRevision=99')).status).toBe(409);
    expect((await call('DELETE', '/v1/aliases/prod')).json).toEqual({ deleted: true });
    expect((await call('GET', '/v1/aliases/prod')).status).toBe(404);

    // --- models ---
    const artifact = Buffer.from('projection seed=1');
    const sha = createHash('sha256').update(artifact).digest('hex');
    const reg = await call('POST', '/v1/models/proj/versions', {
      dimension: DIM,
      metric: 'l2',
      framework: 'numpy',
      params: { seed: 1 },
      metrics: { recall: 0.9 },
      tags: { team: 'search' },
    });
    expect(reg.status).toBe(201);
    expect(
      (await call('PUT', '/v1/models/proj/versions/1/artifact', { artifact: artifact.toString('base64') })).status,
    ).toBe(200);
    expect((await call('POST', '/v1/models/proj/versions/1/upload')).json.method).toBe('PUT');
    const multipart = await call('POST', '/v1/models/proj/versions/1/upload', { parts: 2 });
    expect(multipart.json.parts).toHaveLength(2);
    const aborted = await call('POST', '/v1/models/proj/versions/1/upload/abort', {
      uploadId: multipart.json.uploadId,
    });
    expect(aborted.json).toEqual({ aborted: true, uploadId: multipart.json.uploadId });
    expect((await call('POST', '/v1/models/proj/versions/1/commit', { sha256: sha })).json.state).toBe('ready');
    expect((await call('POST', '/v1/models/proj/versions/1/commit', { sha256: '0'.repeat(64) })).status).toBe(409);
    const second = Buffer.from('projection seed=2');
    await call('POST', '/v1/models/proj/versions', {
      dimension: DIM,
      metric: 'l2',
      params: { seed: 2 },
      artifact: second.toString('base64'),
    });
    const sha2 = createHash('sha256').update(second).digest('hex');
    expect((await call('POST', '/v1/models/proj/versions/2/commit', { sha256: sha2 })).status).toBe(200);
    expect((await call('GET', '/v1/models')).json.models).toEqual([{ name: 'proj', versions: 2, latest: 2 }]);
    expect((await call('GET', '/v1/models/proj')).json.versions).toHaveLength(2);
    expect((await call('GET', '/v1/models/proj/versions')).json.versions).toHaveLength(2);
    expect((await call('GET', '/v1/models/proj/versions/1')).json.state).toBe('ready');
    expect((await call('GET', '/v1/models/proj/compare?a=1&b=2')).json.params.seed).toEqual({ a: 1, b: 2 });
    expect((await call('GET', '/v1/models/proj/compare?a=1')).status).toBe(400);
    expect((await call('PUT', '/v1/models/proj/aliases/prod', { version: 1 })).status).toBe(201);
    expect((await call('PUT', '/v1/models/proj/aliases/prod', { version: 2, reason: 'newer' })).status).toBe(200);
    expect((await call('GET', '/v1/models/proj/aliases/prod')).json.version).toBe(2);
    expect((await call('GET', '/v1/models/proj/aliases/prod/history')).json.history).toHaveLength(2);
    expect((await call('GET', '/v1/models/nope')).status).toBe(404);

    // --- embedding functions and migrations ---
    for (const [version, out] of [
      [1, 3],
      [2, 5],
    ] as const) {
      const onnx = linearProjectionModel({ inputDim: 6, outputDim: out, weights: new Float32Array(6 * out).fill(0.5) });
      const r = await call('POST', '/v1/models/enc/versions', {
        dimension: out,
        metric: 'l2',
        format: 'onnx',
        artifact: Buffer.from(onnx).toString('base64'),
      });
      expect(r.json.model.version).toBe(version);
      const sha256 = createHash('sha256').update(onnx).digest('hex');
      expect(
        (await call('POST', `/v1/models/enc/versions/${version}/commit`, { sha256 })).json.signature,
      ).toBeDefined();
    }
    const fn = await call('POST', '/v1/collections', { name: 'enc1', embedding: { model: 'enc', version: 1 } });
    expect(fn.json.embedding).toMatchObject({ model: 'enc', version: 1, inputLength: 6 });
    const rows = Array.from({ length: 20 }, (_, i) => ({ id: `e${i}`, inputs: [i, 1, 2, 3, 4, i % 3] }));
    expect((await call('POST', '/v1/collections/enc1/vectors', { vectors: rows })).json.upserted).toBe(20);
    expect((await call('POST', '/v1/collections/enc1/search', { input: [1, 1, 2, 3, 4, 1], k: 2 })).status).toBe(200);
    const mig = await call('POST', '/v1/collections/enc1/migrations', { to: { model: 'enc', version: 2 } });
    expect(mig.status).toBe(202);
    expect((await call('GET', '/v1/collections/enc1/migrations')).json.migrations).toHaveLength(1);
    expect((await call('GET', `/v1/collections/enc1/migrations/${mig.json.migration.id}`)).json.target).toBe(
      'enc1-enc-v2',
    );
    expect((await call('DELETE', `/v1/collections/enc1/migrations/${mig.json.migration.id}`)).status).toBe(200);

    // --- keys ---
    const key = await call('POST', '/v1/keys', {
      name: 'reader',
      role: 'read',
      collections: ['docs'],
      rateLimit: { perSecond: 100 },
    });
    expect(key.status).toBe(201);
    expect((await send('GET', '/v1/collections/docs2', { key: key.json.key })).status).toBe(403);
    expect((await send('GET', '/v1/collections/docs', { key: key.json.key })).status).toBe(200);
    expect((await call('GET', '/v1/keys')).json.keys).toHaveLength(1);
    expect((await call('DELETE', `/v1/keys/${key.json.id}`)).json).toEqual({ deleted: true });
    expect((await call('DELETE', `/v1/keys/${key.json.id}`)).status).toBe(404);

    // --- imports ---
    const local = (await call('GET', '/v1/health')).json.local;
    const s3 = new S3Client({
      endpoint: local.s3Endpoint,
      region: local.region,
      credentials: { accessKeyId: local.accessKeyId, secretAccessKey: local.secretAccessKey },
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      // Far more rows than the importer writes in the moment before the cancel lands.
      const lines = Array.from({ length: 50_000 }, (_, i) => JSON.stringify({ id: `i${i}`, values: [i, 1, 2, 3] }));
      const objectKey = 'imports/docs2/big.jsonl';
      await s3.send(new PutObjectCommand({ Bucket: local.bucket, Key: objectKey, Body: `${lines.join('\n')}\n` }));
      const job = await call('POST', '/v1/collections/docs2/imports', { uri: `s3://${local.bucket}/${objectKey}` });
      expect([200, 202]).toContain(job.status);
      expect((await call('GET', `/v1/collections/docs2/imports/${job.json.jobId}`)).json.jobId).toBe(job.json.jobId);
      expect((await call('GET', '/v1/collections/docs2/imports')).json.jobs.length).toBeGreaterThan(0);
      expect((await call('DELETE', `/v1/collections/docs2/imports/${job.json.jobId}`)).json.state).toBe('cancelled');
      expect((await call('DELETE', `/v1/collections/docs2/imports/${job.json.jobId}`)).status).toBe(409);
      const rejects = await call('GET', `/v1/collections/docs2/imports/${job.json.jobId}/rejects?limit=10`);
      expect(rejects.json).toMatchObject({ rejects: [], rowsRejected: 0 });
      const upload = await call('POST', '/v1/collections/docs2/imports/uploads', { filename: 'more.jsonl' });
      expect(upload.status).toBe(201);
      expect(upload.json.uri).toMatch(/^s3:\/\/.+\/imports\/docs2\/.+\/more\.jsonl$/);
      const other = await call('POST', '/v1/collections/docs2/imports', {
        uri: `s3://${local.bucket}/imports/docs2/none`,
      });
      expect(other.status).toBe(404);
    } finally {
      s3.destroy();
    }

    // --- the end of a collection ---
    expect((await call('DELETE', '/v1/collections/docs')).json).toEqual({ deleted: true });
    expect((await call('POST', '/v1/collections/docs/search', { vector: items[0].values })).status).toBe(404);

    expect(problems).toEqual([]);
    const paths = validator.doc.paths as Record<string, Record<string, unknown>>;
    const operations = Object.entries(paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    const unanswered = operations.filter((op) => ![...(seen.get(op) ?? [])].some((s) => s >= 200 && s < 300));
    expect(unanswered).toEqual([]);
  }, 180_000);
});
