/**
 * The "gaps a user hits" routes end to end over HTTP on a whole local Shoal: `GET …/vectors` pages
 * (cursor, include, filter, tampered cursor), `PATCH …/vectors/{id}` (merge, null removal, strong search
 * sees it, 404), an upload through the presigned URL of `POST …/imports/uploads` with plain `fetch`, its
 * import to the end, and `GET …/imports/{jobId}/rejects` paging the rejects; roles and field names.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

let server: HttpShoal;

const call: HttpShoal['call'] = (...args) => server.call(...args);

const vec = (i: number): number[] => [Math.sin(i), Math.cos(i), (i % 7) / 7, 1];

beforeAll(async () => {
  server = await startHttpShoal('gaps');
  expect((await call('POST', '/v1/collections', { name: 'docs', dimension: 4, metric: 'l2' })).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function listAll(query: string): Promise<Array<{ status: number; json: any }>> {
  const pages = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor === null ? query : `${query}&cursor=${encodeURIComponent(cursor)}`;
    const res = await call('GET', `/v1/collections/docs/vectors?${q}`);
    expect(res.status).toBe(200);
    pages.push(res);
    cursor = res.json.nextCursor;
  } while (cursor !== null);
  return pages;
}

describe('GET /v1/collections/{name}/vectors', () => {
  it('lists 250 vectors in pages of 100, complete and stable, with include and a filter', async () => {
    const vectors = Array.from({ length: 250 }, (_, i) => ({
      id: `v${i}`,
      values: vec(i),
      metadata: { lang: i % 2 ? 'en' : 'de', year: 2000 + (i % 30) },
    }));
    for (let i = 0; i < 250; i += 125) {
      const up = await call('POST', '/v1/collections/docs/vectors', { vectors: vectors.slice(i, i + 125) });
      expect(up.status).toBe(200);
    }
    const pages = await listAll('limit=100');
    expect(pages.map((p) => p.json.vectors.length)).toEqual([100, 100, 50]);
    const ids = pages.flatMap((p) => p.json.vectors.map((v: { id: string }) => v.id));
    expect(new Set(ids).size).toBe(250);
    expect(ids.slice().sort()).toEqual(vectors.map((v) => v.id).sort());
    expect(pages[0].json.vectors[0]).toEqual({ id: ids[0] });
    expect((await listAll('limit=100')).flatMap((p) => p.json.vectors.map((v: { id: string }) => v.id))).toEqual(ids);

    const full = await call('GET', '/v1/collections/docs/vectors?limit=5&include=values,metadata');
    expect(full.json.vectors).toHaveLength(5);
    for (const v of full.json.vectors) {
      const src = vectors.find((x) => x.id === v.id)!;
      expect(v.metadata).toEqual(src.metadata);
      expect(v.values.map((x: number) => x.toFixed(5))).toEqual(src.values.map((x) => x.toFixed(5)));
    }

    const filter = encodeURIComponent('lang == "en" and year >= 2021');
    const filtered = (await listAll(`limit=100&include=metadata&filter=${filter}`)).flatMap((p) => p.json.vectors);
    const expected = vectors.filter((v) => v.metadata.lang === 'en' && v.metadata.year >= 2021).map((v) => v.id);
    expect(filtered.map((v: { id: string }) => v.id).sort()).toEqual(expected.sort());
    expect(filtered.every((v: { metadata: { lang: string } }) => v.metadata.lang === 'en')).toBe(true);
    // The same filter as a JSON object: the form search bodies (and the Python client) use.
    const asObject = encodeURIComponent(JSON.stringify({ lang: 'en', year: { $gte: 2021 } }));
    const byObject = (await listAll(`limit=100&filter=${asObject}`)).flatMap((p) => p.json.vectors);
    expect(byObject.map((v: { id: string }) => v.id).sort()).toEqual(expected.sort());

    await call('POST', '/v1/collections/docs/vectors/delete', { ids: ['v3'] });
    const after = (await listAll('limit=1000')).flatMap((p) => p.json.vectors.map((v: { id: string }) => v.id));
    expect(after).toHaveLength(249);
    expect(after).not.toContain('v3');
  });

  it('answers 400 naming the field for a tampered cursor, a bad limit, include or filter', async () => {
    const first = await call('GET', '/v1/collections/docs/vectors?limit=2');
    const cursor: string = first.json.nextCursor;
    const tampered = `${cursor[0] === 'e' ? 'f' : 'e'}${cursor.slice(1)}`;
    for (const [query, field] of [
      [`cursor=${encodeURIComponent(tampered)}`, 'cursor'],
      ['cursor=garbage', 'cursor'],
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['include=vectors', 'include'],
      [`filter=${encodeURIComponent('lang ==')}`, 'filter'],
      [`filter=${encodeURIComponent('{"lang":')}`, 'filter'],
    ]) {
      const res = await call('GET', `/v1/collections/docs/vectors?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.json.error.field, query).toBe(field);
    }
    expect((await call('GET', '/v1/collections/nope/vectors')).status).toBe(404);
  });
});

describe('PATCH /v1/collections/{name}/vectors/{id}', () => {
  it('merges metadata, removes null keys, keeps the values; strong search sees it at once', async () => {
    const res = await call('PATCH', '/v1/collections/docs/vectors/v10', { metadata: { tag: 'new', year: null } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ upserted: 1 });
    const got = await call('POST', '/v1/collections/docs/vectors/get', { ids: ['v10'] });
    expect(got.json.vectors[0].metadata).toEqual({ lang: 'de', tag: 'new' });
    expect(got.json.vectors[0].values.map((x: number) => x.toFixed(5))).toEqual(vec(10).map((x) => x.toFixed(5)));
    const search = await call('POST', '/v1/collections/docs/search', {
      vector: vec(10),
      k: 3,
      filter: 'tag == "new"',
      include: ['metadata'],
    });
    expect(search.status).toBe(200);
    expect(search.json.results).toEqual([expect.objectContaining({ id: 'v10', metadata: { lang: 'de', tag: 'new' } })]);
    // The literal routes next to it still win.
    expect((await call('PATCH', '/v1/collections/docs/vectors/get', { metadata: {} })).status).toBe(405);
  });

  it('answers 404 for an unknown or deleted id and 400 naming the field for a bad body', async () => {
    for (const id of ['nope', 'v3']) {
      const res = await call('PATCH', `/v1/collections/docs/vectors/${id}`, { metadata: { a: 1 } });
      expect(res.status).toBe(404);
      expect(res.json.error).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
    }
    const bad = await call('PATCH', '/v1/collections/docs/vectors/v1', { metadata: [1] });
    expect(bad.status).toBe(400);
    expect(bad.json.error.field).toBe('metadata');
    const extra = await call('PATCH', '/v1/collections/docs/vectors/v1', { metadata: {}, values: [1, 2, 3, 4] });
    expect(extra.json.error.field).toBe('values');
  });
});

describe('import uploads and reject reports', () => {
  it('uploads through the presigned URL, imports it to the end, and pages the rejects', async () => {
    const up = await call('POST', '/v1/collections/docs/imports/uploads', {
      filename: 'rows.jsonl',
      contentType: 'application/x-ndjson',
    });
    expect(up.status).toBe(201);
    expect(up.json).toMatchObject({ method: 'PUT', headers: { 'content-type': 'application/x-ndjson' } });
    expect(up.json.uploadUrl).toMatch(/^http/);
    expect(up.json.uri).toMatch(/^s3:\/\/[^/]+\/imports\/docs\/[^/]+\/rows\.jsonl$/);
    expect(Date.parse(up.json.expiresAt)).toBeGreaterThan(Date.now());

    const lines: string[] = [];
    for (let i = 0; i < 120; i++) {
      if (i % 5 === 0) lines.push(i % 10 === 0 ? '{broken' : JSON.stringify({ id: `u${i}`, values: [1, 2] }));
      else lines.push(JSON.stringify({ id: `u${i}`, values: vec(i), metadata: { src: 'upload' } }));
    }
    const put = await fetch(up.json.uploadUrl, { method: 'PUT', body: lines.join('\n'), headers: up.json.headers });
    expect(put.status).toBe(200);

    const started = await call('POST', '/v1/collections/docs/imports', { uri: up.json.uri });
    expect([200, 202]).toContain(started.status);
    const jobId: string = started.json.jobId;
    let job = started.json;
    for (const until = Date.now() + 45_000; !['succeeded', 'partial', 'failed'].includes(job.state); ) {
      if (Date.now() > until) throw new Error(`import did not finish: ${JSON.stringify(job)}`);
      await new Promise((r) => setTimeout(r, 200));
      job = (await call('GET', `/v1/collections/docs/imports/${jobId}`)).json;
    }
    expect(job).toMatchObject({ state: 'partial', rowsWritten: 96, rowsRejected: 24 });

    const rejects: Array<{ line: number; code: string }> = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor === null ? 'limit=10' : `limit=10&cursor=${encodeURIComponent(cursor)}`;
      const page = await call('GET', `/v1/collections/docs/imports/${jobId}/rejects?${q}`);
      expect(page.status).toBe(200);
      expect(page.json).toMatchObject({ rowsRejected: 24, reported: 24 });
      rejects.push(...page.json.rejects);
      cursor = page.json.nextCursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(rejects).toHaveLength(24);
    expect(rejects.map((r) => r.line)).toEqual(Array.from({ length: 24 }, (_, i) => i * 5 + 1));
    expect(rejects[0]).toMatchObject({ line: 1, code: 'BAD_JSON' });
    expect(rejects[1]).toMatchObject({ line: 6, id: 'u5', code: 'WRONG_DIMENSION' });

    const bad = await call('GET', `/v1/collections/docs/imports/${jobId}/rejects?cursor=garbage`);
    expect(bad.json.error.field).toBe('cursor');
    expect((await call('GET', `/v1/collections/docs/imports/${'0'.repeat(24)}/rejects`)).status).toBe(404);
    const listed = await call('POST', '/v1/collections/docs/vectors/get', { ids: ['u1', 'u5'] });
    expect(listed.json.vectors.map((v: { id: string }) => v.id)).toEqual(['u1']);
  });

  it('refuses bad filenames naming the field', async () => {
    for (const filename of ['a/b.jsonl', 'rows.txt', 'a\u0001.csv', 'v.ids.txt']) {
      const res = await call('POST', '/v1/collections/docs/imports/uploads', { filename });
      expect(res.status, filename).toBe(400);
      expect(res.json.error.field, filename).toBe('filename');
    }
    const ct = await call('POST', '/v1/collections/docs/imports/uploads', { filename: 'a.csv', contentType: 'csv' });
    expect(ct.json.error.field).toBe('contentType');
    expect((await call('POST', '/v1/collections/nope/imports/uploads', { filename: 'a.csv' })).status).toBe(404);
  });
});

describe('roles', () => {
  it('lets a read-only key list and read rejects, and refuses it PATCH and uploads', async () => {
    const reader = await call('POST', '/v1/keys', { name: 'docs reader', role: 'read', collections: ['docs'] });
    const key: string = reader.json.key;
    expect((await call('GET', '/v1/collections/docs/vectors?limit=1', undefined, key)).status).toBe(200);
    const patch = await call('PATCH', '/v1/collections/docs/vectors/v1', { metadata: { a: 1 } }, key);
    expect(patch.status).toBe(403);
    const upload = await call('POST', '/v1/collections/docs/imports/uploads', { filename: 'a.csv' }, key);
    expect(upload.status).toBe(403);

    // A scoped writer's upload lands in its own collection's folder, so the import passes the scope check.
    const writer = await call('POST', '/v1/keys', { name: 'docs writer', role: 'write', collections: ['docs'] });
    const w: string = writer.json.key;
    const up = await call('POST', '/v1/collections/docs/imports/uploads', { filename: 'more.csv' }, w);
    expect(up.status).toBe(201);
    const put = await fetch(up.json.uploadUrl, { method: 'PUT', body: 'id,values\nw1,"[1,2,3,4]"\n' });
    expect(put.status).toBe(200);
    const started = await call('POST', '/v1/collections/docs/imports', { uri: up.json.uri }, w);
    expect([200, 202]).toContain(started.status);
  });
});
