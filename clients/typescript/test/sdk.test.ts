/**
 * The SDK against a whole local Shoal (the README quickstart, typed errors) and against tiny `node:http`
 * servers for what the local Shoal cannot be made to do on demand (503 with Retry-After) or does not serve
 * on this branch yet (the paged vector listing, import uploads and reject pages: see the contract servers).
 *
 * To add once `GET .../vectors` and `POST .../imports/uploads` are on main: `list()` and `importFile()`
 * against the local Shoal (the quickstart collection listed after the deletes; a JSONL file with one bad row
 * imported, its reject read back through `rejects()`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpShoal, type HttpShoal } from '../../../test/helpers/local-http.js';
import {
  Shoal,
  ShoalApiError,
  ShoalAuthError,
  ShoalForbiddenError,
  ShoalNetworkError,
  ShoalNotFoundError,
  ShoalServerError,
  ShoalValidationError,
  backoffMs,
  parseRetryAfter,
  DEFAULT_RETRY_POLICY,
  type ImportJob,
  type ImportProgress,
} from '../src/index.js';

describe('the README quickstart through the SDK', () => {
  let local: HttpShoal;
  let shoal: Shoal;

  beforeAll(async () => {
    local = await startHttpShoal('sdk');
    shoal = new Shoal({ url: local.shoal.url, apiKey: local.shoal.apiKey });
  });
  afterAll(async () => {
    await local?.stop();
  });

  it('runs end to end', async () => {
    const created = await shoal.collections.create({ name: 'docs', dimension: 4, metric: 'cosine' });
    expect(created).toMatchObject({ name: 'docs', dimension: 4, metric: 'cosine' });

    const docs = shoal.collection('docs');
    expect(
      await docs.upsert([
        { id: 'a', values: [0.1, 0.2, 0.3, 0.4], metadata: { lang: 'en', year: 2021 } },
        { id: 'b', values: [0.4, 0.3, 0.2, 0.1], metadata: { lang: 'de', year: 2023 } },
        { id: 'c', values: new Float32Array([0.1, 0.2, 0.3, 0.5]), metadata: { lang: 'en', year: 2024 } },
      ]),
    ).toEqual({ upserted: 3 });

    const found = await docs.search({
      vector: [0.1, 0.2, 0.3, 0.4],
      k: 2,
      filter: 'lang == "en" and year >= 2021',
      include: ['metadata'],
    });
    expect(found.results.map((r) => r.id)).toEqual(['a', 'c']);
    expect(found.results[0].metadata).toEqual({ lang: 'en', year: 2021 });
    expect(found.servedBy.collection).toBe('docs');

    expect(await docs.delete({ ids: ['b'] })).toEqual({ deleted: 1 });
    expect(await docs.delete({ filter: { year: { $lt: 2022 } } })).toEqual({ deleted: 1 });

    const build = await docs.index();
    expect(build.queued).toBe(true);
    const seen: number[] = [];
    const stats = await docs.waitForIndex({
      timeoutMs: 60_000,
      pollMs: 200,
      onProgress: (p) => seen.push(p.stats.pending),
    });
    expect(stats).toMatchObject({ pending: 0, count: 1, indexed: 1 });
    expect(stats.version).toBeGreaterThanOrEqual(1);
    expect(seen.at(-1)).toBe(0);

    const versions = await docs.versions();
    expect(versions[0].version).toBe(stats.version);
    expect(versions[0].collection).toBe('docs');

    const info = await shoal.collections.get('docs');
    expect(info.stats).toMatchObject({ count: 1, pending: 0, version: stats.version });
    expect((await docs.get(['c', 'b'])).map((v) => v.id)).toEqual(['c']);

    const key = await shoal.keys.create({ name: 'search app', role: 'read', collections: ['docs'] });
    expect(key.key).toMatch(/^shoal_/);
    const reader = new Shoal({ url: local.shoal.url, apiKey: key.key });
    const readerHits = await reader.collection('docs').search({ vector: [0.1, 0.2, 0.3, 0.5], k: 1 });
    expect(readerHits.results.map((r) => r.id)).toEqual(['c']);
    const denied = await reader
      .collection('docs')
      .upsert([{ id: 'd', values: [1, 0, 0, 0] }])
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ShoalForbiddenError);
    expect(denied).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect((await shoal.keys.list()).map((k) => k.name)).toContain('search app');
  });

  it('throws typed errors carrying the code and the field', async () => {
    await shoal.collections.create({ name: 'errs', dimension: 3, metric: 'l2' });
    const bad = await shoal
      .collection('errs')
      .upsert([{ id: 'x', values: [1, 2] }])
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ShoalValidationError);
    expect(bad).toMatchObject({ status: 400, code: 'VALIDATION_ERROR', field: 'vectors[0].values' });

    const badFilter = await shoal
      .collection('errs')
      .search({ vector: [1, 2, 3], filter: 'year >>= 3' })
      .catch((e: unknown) => e);
    expect(badFilter).toMatchObject({ status: 400, code: 'FILTER_SYNTAX_ERROR' });

    const anon = await new Shoal({ url: local.shoal.url, apiKey: 'nope' }).collections.list().catch((e: unknown) => e);
    expect(anon).toBeInstanceOf(ShoalAuthError);
    expect(anon).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });

    const missing = await shoal.collections.get('nope').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ShoalNotFoundError);
    expect(missing).toBeInstanceOf(ShoalApiError);
    expect(missing).toMatchObject({ status: 404, code: 'NOT_FOUND' });

    const taken = await shoal.collections.create({ name: 'errs', dimension: 3, metric: 'l2' }).catch((e) => e);
    expect(taken).toMatchObject({ status: 409, code: 'CONFLICT' });
  });
});

/** A server answering from `handler`, on an ephemeral port. */
async function serve(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

describe('retries', () => {
  it('waits out a 503 Retry-After, then succeeds', async () => {
    const arrivals: number[] = [];
    const server = await serve((req, res) => {
      arrivals.push(Date.now());
      if (arrivals.length < 3) {
        json(res, 503, { error: { code: 'STORAGE_UNAVAILABLE', message: 'busy' } }, { 'retry-after': '1' });
      } else json(res, 200, { results: [], servedBy: { collection: 'c', version: 0 }, stats: {} });
    });
    try {
      const delays: number[] = [];
      const shoal = new Shoal({
        url: server.url,
        apiKey: 'k',
        retry: { random: () => 0.5 },
        onRetry: (r) => delays.push(r.delayMs),
      });
      const out = await shoal.collection('c').search({ vector: [1, 2] });
      expect(out.results).toEqual([]);
      expect(arrivals).toHaveLength(3);
      // Retry-After is a floor: the jittered backoff (≤ 250 ms, 500 ms here) is shorter, so 1 s each time.
      expect(delays).toEqual([1000, 1000]);
      expect(arrivals[1] - arrivals[0]).toBeGreaterThanOrEqual(990);
      expect(arrivals[2] - arrivals[1]).toBeGreaterThanOrEqual(990);
    } finally {
      await server.close();
    }
  });

  it('gives up after `retries` and throws the last answer', async () => {
    let attempts = 0;
    const server = await serve((_req, res) => {
      attempts++;
      json(res, 429, { error: { code: 'RATE_LIMITED', message: 'slow down' } }, { 'retry-after': '0' });
    });
    try {
      const shoal = new Shoal({ url: server.url, apiKey: 'k', retries: 2, retry: { random: () => 0 } });
      const err = await shoal.keys.create({ name: 'n', role: 'read' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 429, code: 'RATE_LIMITED', retryAfterMs: 0 });
      expect(attempts).toBe(3);
    } finally {
      await server.close();
    }
  });

  it('does not retry a 400, nor a 503 on a request that is not safe to repeat', async () => {
    const paths: string[] = [];
    const server = await serve((req, res) => {
      paths.push(`${req.method} ${req.url}`);
      if (req.url === '/v1/collections/c/vectors') {
        json(res, 400, { error: { code: 'VALIDATION_ERROR', message: 'bad', field: 'vectors[0].id' } });
      } else json(res, 503, { error: { code: 'STORAGE_UNAVAILABLE', message: 'busy' } }, { 'retry-after': '0' });
    });
    try {
      const shoal = new Shoal({ url: server.url, apiKey: 'k', retry: { random: () => 0 } });
      const bad = await shoal
        .collection('c')
        .upsert([{ id: 'a', values: [1] }])
        .catch((e: unknown) => e);
      expect(bad).toMatchObject({ status: 400, field: 'vectors[0].id' });
      const created = await shoal.keys.create({ name: 'n', role: 'read' }).catch((e: unknown) => e);
      expect(created).toBeInstanceOf(ShoalServerError);
      expect(paths).toEqual(['POST /v1/collections/c/vectors', 'POST /v1/keys']);
    } finally {
      await server.close();
    }
  });

  it('retries an idempotent request after a refused connection, then throws a network error', async () => {
    const server = await serve(() => undefined);
    const url = server.url;
    await server.close();
    let retries = 0;
    const shoal = new Shoal({ url, retries: 2, retry: { baseMs: 1, random: () => 0.5 }, onRetry: () => retries++ });
    const err = await shoal.collections.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShoalNetworkError);
    expect(retries).toBe(2);
  });

  it('reads Retry-After as seconds or an HTTP date and jitters the backoff', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    const policy = { ...DEFAULT_RETRY_POLICY, random: () => 0.999 };
    expect(backoffMs(0, policy)).toBe(249);
    expect(backoffMs(3, policy)).toBe(1998);
    expect(backoffMs(20, policy)).toBe(19_980);
    expect(backoffMs(0, { ...policy, random: () => 0 }, 700)).toBe(700);
  });
});

describe('routes landing on main (against a server that follows their contract)', () => {
  it('lists vectors page by page through the cursor, with filter and include in the query', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => `v${i}`);
    const queries: URLSearchParams[] = [];
    const server = await serve((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      queries.push(u.searchParams);
      const limit = Number(u.searchParams.get('limit') ?? 100);
      const from = Number(u.searchParams.get('cursor') ?? 0);
      const page = ids.slice(from, from + limit).map((id) => ({ id, metadata: { n: Number(id.slice(1)) } }));
      const next = from + limit < ids.length ? String(from + limit) : null;
      json(res, 200, { vectors: page, nextCursor: next });
    });
    try {
      const docs = new Shoal({ url: server.url, apiKey: 'k' }).collection('docs');
      const got: string[] = [];
      for await (const v of docs.list({ limit: 3, filter: { n: { $gte: 0 } }, include: ['metadata'] })) got.push(v.id);
      expect(got).toEqual(ids);
      expect(queries).toHaveLength(3);
      expect(queries.map((q) => q.get('cursor'))).toEqual([null, '3', '6']);
      expect(queries[0].get('filter')).toBe('{"n":{"$gte":0}}');
      expect(queries[0].get('include')).toBe('metadata');

      queries.length = 0;
      for await (const v of docs.list({ limit: 2 })) if (v.id === 'v2') break;
      expect(queries).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('importFile uploads to the presigned URL, starts the job, follows it and pages its rejects', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'shoal-sdk-import-'));
    const file = path.join(dir, 'rows.jsonl');
    const content = '{"id":"a","values":[1,2]}\n{"id":"b","values":[1]}\n';
    await writeFile(file, content);
    const seen: string[] = [];
    let uploaded: { body: string; headers: IncomingMessage['headers'] } | undefined;
    let polls = 0;
    const job = (state: string, extra: Partial<ImportJob> = {}) => ({
      jobId: 'job1',
      collection: 'docs',
      uri: 's3://bucket/imports/docs/rows.jsonl',
      state,
      rowsRead: 0,
      rowsWritten: 0,
      rowsRejected: 0,
      ...extra,
    });
    const server = await serve((req, res, body) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/v1/collections/docs/imports/uploads') {
        expect(JSON.parse(body)).toEqual({ filename: 'rows.jsonl', contentType: 'application/x-ndjson' });
        expect(req.headers.authorization).toBe('Bearer k');
        json(res, 201, {
          uploadUrl: `http://${req.headers.host}/s3/imports/docs/rows.jsonl?X-Amz-Signature=abc`,
          method: 'PUT',
          headers: { 'x-amz-meta-shoal': 'yes' },
          uri: 's3://bucket/imports/docs/rows.jsonl',
          expiresAt: new Date(Date.now() + 60_000).toISOString(),
        });
      } else if (req.url?.startsWith('/s3/')) {
        uploaded = { body, headers: req.headers };
        res.writeHead(200).end();
      } else if (req.url === '/v1/collections/docs/imports' && req.method === 'POST') {
        expect(JSON.parse(body)).toEqual({ uri: 's3://bucket/imports/docs/rows.jsonl', maxRejectRatio: 1 });
        json(res, 202, job('queued'));
      } else if (req.url === '/v1/collections/docs/imports/job1') {
        polls++;
        json(
          res,
          200,
          polls < 2
            ? job('running', { rowsRead: 1 })
            : job('partial', { rowsRead: 2, rowsWritten: 1, rowsRejected: 1 }),
        );
      } else if (req.url?.startsWith('/v1/collections/docs/imports/job1/rejects')) {
        const cursor = new URL(req.url, 'http://x').searchParams.get('cursor');
        json(res, 200, {
          rejects: cursor ? [] : [{ line: 2, id: 'b', code: 'WRONG_DIMENSION', reason: '1 values, want 2' }],
          nextCursor: cursor ? null : 'c2',
          rowsRejected: 1,
          reported: 1,
        });
      } else if (req.method === 'PATCH' && req.url === '/v1/collections/docs/vectors/a') {
        json(res, 200, { upserted: 1, patchBody: JSON.parse(body) });
      } else json(res, 404, { error: { code: 'NOT_FOUND', message: req.url } });
    });
    try {
      const docs = new Shoal({ url: server.url, apiKey: 'k' }).collection('docs');
      const progress: ImportProgress[] = [];
      const final = await docs.importFile(file, {
        maxRejectRatio: 1,
        pollMs: 10,
        onProgress: (p) => progress.push(p),
      });
      expect(final).toMatchObject({ state: 'partial', rowsWritten: 1, rowsRejected: 1 });
      expect(uploaded?.body).toBe(content);
      expect(uploaded?.headers['content-length']).toBe(String(Buffer.byteLength(content)));
      expect(uploaded?.headers['x-amz-meta-shoal']).toBe('yes');
      // The presigned URL carries its own signature: the API key must not travel to S3.
      expect(uploaded?.headers.authorization).toBeUndefined();
      expect(progress[0]).toEqual({ phase: 'upload', bytesSent: 0, bytesTotal: content.length });
      expect(
        progress.filter((p) => p.phase === 'import').map((p) => (p.phase === 'import' ? p.job.state : '')),
      ).toEqual(['queued', 'running', 'partial']);

      const rejects = [];
      for await (const r of docs.imports.rejects('job1')) rejects.push(r);
      expect(rejects).toEqual([{ line: 2, id: 'b', code: 'WRONG_DIMENSION', reason: '1 values, want 2' }]);
      expect(seen.filter((s) => s.includes('/rejects'))).toEqual([
        'GET /v1/collections/docs/imports/job1/rejects',
        'GET /v1/collections/docs/imports/job1/rejects?cursor=c2',
      ]);

      const patched = await docs.patch('a', { lang: null, year: 2020 });
      expect(patched).toEqual({ upserted: 1, patchBody: { metadata: { lang: null, year: 2020 } } });
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
