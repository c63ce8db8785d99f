/**
 * The SDK against a whole local Shoal (the README quickstart, paged listing, metadata patches, `importFile`
 * through the presigned upload into the embedded S3, typed errors) and against tiny `node:http` servers for what
 * the local Shoal cannot be made to do on demand (503 with Retry-After, a refused connection).
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
  type ImportProgress,
} from '../src/node.js';

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
    const listed = [];
    for await (const v of docs.list({ include: ['metadata'] })) listed.push(v);
    expect(listed).toEqual([{ id: 'c', metadata: { lang: 'en', year: 2024 } }]);

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

  it('lists a collection page by page, with include and a filter string or object', async () => {
    await shoal.collections.create({ name: 'paged', dimension: 3, metric: 'l2' });
    const rows = Array.from({ length: 25 }, (_, i) => ({
      id: `p${i}`,
      values: [i, i + 0.5, -i],
      metadata: { n: i, lang: i % 2 === 0 ? 'en' : 'de' },
    }));
    await shoal.collection('paged').upsert(rows);

    // The global fetch, counted: every page is one GET of the real listing.
    const gets: URL[] = [];
    const counted = new Shoal({
      url: local.shoal.url,
      apiKey: local.shoal.apiKey,
      fetch: (input, init) => {
        if (init.method === 'GET') gets.push(new URL(input));
        return fetch(input, init);
      },
    }).collection('paged');

    const all = [];
    for await (const v of counted.list({ limit: 4, include: ['metadata'] })) all.push(v);
    expect(all.map((v) => v.id).sort()).toEqual(rows.map((r) => r.id).sort());
    expect(all.find((v) => v.id === 'p7')).toEqual({ id: 'p7', metadata: { n: 7, lang: 'de' } });
    expect(gets.length).toBeGreaterThanOrEqual(7);
    const asked = new Set(gets.map((u) => `${u.searchParams.get('limit')} ${u.searchParams.get('include')}`));
    expect([...asked]).toEqual(['4 metadata']);
    expect(gets[0].searchParams.has('cursor')).toBe(false);
    expect(gets.slice(1).every((u) => u.searchParams.get('cursor'))).toBe(true);

    const english = [];
    for await (const v of counted.list({ limit: 3, filter: 'lang == "en" and n >= 16', include: ['values'] })) {
      english.push(v);
    }
    expect(english.map((v) => v.id).sort()).toEqual(['p16', 'p18', 'p20', 'p22', 'p24']);
    expect(english.find((v) => v.id === 'p18')).toEqual({ id: 'p18', values: [18, 18.5, -18] });

    const small = [];
    for await (const v of counted.list({ filter: { n: { $lt: 3 } } })) small.push(v);
    expect(small.map((v) => v.id).sort()).toEqual(['p0', 'p1', 'p2']);
    expect(small[0]).toEqual({ id: small[0].id });

    // A break stops the requests: three items of pages of two need two pages.
    gets.length = 0;
    let seen = 0;
    for await (const v of counted.list({ limit: 2 })) {
      expect(v.id).toMatch(/^p/);
      if (++seen === 3) break;
    }
    expect(gets).toHaveLength(2);

    const first = await counted.listPage({ limit: 10 });
    expect(first.vectors).toHaveLength(10);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await counted.listPage({ limit: 10, cursor: first.nextCursor ?? undefined });
    expect(second.vectors.map((v) => v.id)).not.toContain(first.vectors[0].id);
    const garbled = await counted.listPage({ cursor: 'garbage' }).catch((e: unknown) => e);
    expect(garbled).toBeInstanceOf(ShoalValidationError);
    expect(garbled).toMatchObject({ status: 400, field: 'cursor' });
  });

  it('patches metadata keys and leaves the values as they were', async () => {
    await shoal.collections.create({ name: 'patched', dimension: 2, metric: 'ip' });
    const col = shoal.collection('patched');
    await col.upsert([{ id: 7, values: [0.25, -1], metadata: { lang: 'en', year: 2021, nested: { a: 1, b: 2 } } }]);
    expect(await col.patch(7, { lang: null, year: 2022, nested: { a: 3 }, tag: 'new' })).toEqual({ upserted: 1 });
    expect(await col.get(['7'])).toEqual([
      { id: '7', values: [0.25, -1], metadata: { year: 2022, nested: { a: 3 }, tag: 'new' } },
    ]);
    // An id that needs percent-encoding in the path.
    await col.upsert([{ id: 'a/b c?', values: [1, 0] }]);
    await col.patch('a/b c?', { ok: true });
    expect((await col.get(['a/b c?']))[0].metadata).toEqual({ ok: true });

    const missing = await col.patch('nope', { a: 1 }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ShoalNotFoundError);
    expect(missing).toMatchObject({ status: 404, code: 'NOT_FOUND', field: 'id' });
  });

  it('imports a JSONL file through the presigned upload into the embedded S3 and reads its reject back', async () => {
    await shoal.collections.create({ name: 'imported', dimension: 3, metric: 'cosine' });
    const dir = await mkdtemp(path.join(tmpdir(), 'shoal-sdk-import-'));
    try {
      // Over 64 KiB, so the file is streamed to S3 in several chunks behind its content-length.
      const lines = Array.from({ length: 1500 }, (_, i) =>
        i === 700
          ? JSON.stringify({ id: `r${i}`, values: [1, 2] })
          : JSON.stringify({ id: `r${i}`, values: [i + 1, 1, -1], metadata: { i, note: 'x'.repeat(20) } }),
      );
      const content = `${lines.join('\n')}\n`;
      expect(Buffer.byteLength(content)).toBeGreaterThan(64 * 1024);
      const file = path.join(dir, 'rows.jsonl');
      await writeFile(file, content);

      const sent: Array<{ url: string; headers: Record<string, string> }> = [];
      const docs = new Shoal({
        url: local.shoal.url,
        apiKey: local.shoal.apiKey,
        fetch: (input, init) => {
          sent.push({ url: input, headers: { ...(init.headers as Record<string, string>) } });
          return fetch(input, init);
        },
      }).collection('imported');
      const progress: ImportProgress[] = [];
      const job = await docs.importFile(file, { maxRejectRatio: 1, pollMs: 100, onProgress: (p) => progress.push(p) });
      expect(job).toMatchObject({ state: 'partial', rowsRead: 1500, rowsWritten: 1499, rowsRejected: 1 });

      const put = sent.find((s) => !s.url.startsWith(local.shoal.url));
      expect(put?.url).toContain('X-Amz-Signature=');
      expect(put?.headers['content-length']).toBe(String(Buffer.byteLength(content)));
      // The presigned URL carries its own signature: the API key must not travel to S3.
      expect(put?.headers.authorization).toBeUndefined();
      const uploads = progress.flatMap((p) => (p.phase === 'upload' ? [p.bytesSent] : []));
      expect(uploads[0]).toBe(0);
      expect(uploads.at(-1)).toBe(Buffer.byteLength(content));
      expect(uploads.length).toBeGreaterThan(2);
      expect(progress.at(-1)).toMatchObject({ phase: 'import', job: { state: 'partial' } });

      const rejects = [];
      for await (const r of docs.imports.rejects(job.jobId)) rejects.push(r);
      expect(rejects).toEqual([{ line: 701, id: 'r700', code: 'WRONG_DIMENSION', reason: expect.any(String) }]);
      const page = await docs.imports.rejectsPage(job.jobId, { limit: 1 });
      expect(page).toMatchObject({ rowsRejected: 1, reported: 1, nextCursor: null });

      expect((await docs.get(['r0', 'r700', 'r1499'])).map((v) => v.id)).toEqual(['r0', 'r1499']);
      expect((await docs.stats()).count).toBe(1499);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
