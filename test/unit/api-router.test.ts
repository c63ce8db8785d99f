import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  ConflictError,
  CorruptDataError,
  EngineError,
  FilterSyntaxError,
  LimitExceededError,
  NotFoundError,
  UnauthorizedError,
  UnsupportedFormatError,
  ValidationError,
  type ShoalError,
} from '../../shared/errors.js';
import { logger } from '../../shared/log.js';
import { matchesMetadata } from '../../shared/filter/index.js';
import type { FilterNode } from '../../shared/filter/ast.js';
import { MAX_BODY_BYTES, createApi, type ApiRequest, type ApiResponse } from '../../shared/api/router.js';
import {
  InvalidJsonError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  toErrorResponse,
} from '../../shared/api/http-errors.js';
import type {
  BuildOutput,
  CollectionInfo,
  CreateCollectionInput,
  SearchInput,
  SearchOutput,
  PromoteOutput,
  ShoalService,
  VectorInput,
  VectorOutput,
} from '../../shared/service.js';
import type { Manifest } from '../../shared/storage/types.js';
import type { Metadata } from '../../shared/types.js';
import type { LineView } from '../../shared/service-types.js';

/** A real (if naive) ShoalService over Maps: exact search, no shards. */
class MemoryService implements ShoalService {
  private readonly collections = new Map<
    string,
    {
      info: CollectionInfo;
      rows: Map<string, { values: Float32Array; metadata?: Metadata }>;
      versions: Manifest[];
      pending: number;
    }
  >();
  /** Every call, for assertions on what the API layer passed down. */
  readonly calls: Array<{ method: string; args: unknown[] }> = [];
  /** Thrown by the next call (to exercise error mapping). */
  failNext?: unknown;

  private enter(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.failNext !== undefined) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
  }

  private get(name: string) {
    const c = this.collections.get(name);
    if (!c) throw new NotFoundError(`collection ${name} does not exist`, { field: 'name' });
    return c;
  }

  async createCollection(input: CreateCollectionInput): Promise<CollectionInfo> {
    this.enter('createCollection', input);
    if (this.collections.has(input.name)) throw new ConflictError(`collection ${input.name} exists`, { field: 'name' });
    const { engine = 'hnsw', ...params } = (input.index ?? {}) as { engine?: 'hnsw' | 'flat' } & Record<string, number>;
    const info: CollectionInfo = {
      name: input.name,
      dimension: input.dimension!,
      metric: input.metric!,
      index: { engine, ...params } as CollectionInfo['index'],
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    this.collections.set(input.name, { info, rows: new Map(), versions: [], pending: 0 });
    return info;
  }

  async upsertInputs(): Promise<{ upserted: number }> {
    throw new ValidationError('this test service has no embedding functions', { field: 'vectors[0].inputs' });
  }

  async listCollections(): Promise<CollectionInfo[]> {
    this.enter('listCollections');
    return [...this.collections.values()].map((c) => c.info);
  }

  async getCollection(name: string): Promise<CollectionInfo> {
    this.enter('getCollection', name);
    const c = this.get(name);
    const version = c.versions.length;
    return {
      ...c.info,
      stats: {
        count: c.rows.size,
        indexed: c.rows.size - c.pending,
        pending: c.pending,
        shards: version ? 1 : 0,
        version,
        watermark: 0,
      },
    };
  }

  async deleteCollection(name: string): Promise<void> {
    this.enter('deleteCollection', name);
    this.get(name);
    this.collections.delete(name);
  }

  async upsert(collection: string, vectors: VectorInput[]): Promise<{ upserted: number }> {
    this.enter('upsert', collection, vectors);
    const c = this.get(collection);
    for (const [i, v] of vectors.entries()) {
      if (v.values.length !== c.info.dimension) {
        throw new ValidationError(
          `vectors[${i}].values has ${v.values.length} components, the collection has ${c.info.dimension}`,
          {
            field: `vectors[${i}].values`,
          },
        );
      }
    }
    for (const v of vectors) c.rows.set(v.id, { values: v.values, metadata: v.metadata });
    c.pending += vectors.length;
    return { upserted: vectors.length };
  }

  async getVectors(collection: string, ids: string[]): Promise<VectorOutput[]> {
    this.enter('getVectors', collection, ids);
    const c = this.get(collection);
    return ids.flatMap((id) => {
      const row = c.rows.get(id);
      return row ? [{ id, values: Array.from(row.values), metadata: row.metadata ?? {} }] : [];
    });
  }

  async deleteVectors(
    collection: string,
    selector: { ids: string[] } | { filter: FilterNode },
  ): Promise<{ deleted: number }> {
    this.enter('deleteVectors', collection, selector);
    const c = this.get(collection);
    const doomed =
      'ids' in selector
        ? selector.ids.filter((id) => c.rows.has(id))
        : [...c.rows].filter(([, row]) => matchesMetadata(selector.filter, row.metadata)).map(([id]) => id);
    for (const id of doomed) c.rows.delete(id);
    return { deleted: doomed.length };
  }

  // The listing and PATCH logic is tested on the real core (test/integration/gaps.test.ts); these keep the type.
  async listVectors(collection: string): Promise<{ vectors: Array<{ id: string }>; nextCursor: null }> {
    this.enter('listVectors', collection);
    return { vectors: [...this.get(collection).rows.keys()].map((id) => ({ id })), nextCursor: null };
  }

  async patchVector(collection: string, id: string): Promise<{ upserted: number }> {
    this.enter('patchVector', collection, id);
    if (!this.get(collection).rows.has(id)) throw new NotFoundError(`vector ${id} not found`, { field: 'id' });
    return { upserted: 1 };
  }

  async search(collection: string, input: SearchInput): Promise<SearchOutput> {
    this.enter('search', collection, input);
    const c = this.get(collection);
    const score = (a: Float32Array, b: Float32Array) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += c.info.metric === 'l2' ? (a[i] - b[i]) ** 2 : a[i] * b[i];
      return s;
    };
    const results = input.queries.map((q) => {
      if (q.length !== c.info.dimension)
        throw new ValidationError('query has the wrong dimension', { field: 'vector' });
      return [...c.rows]
        .filter(([, row]) => !input.filter || matchesMetadata(input.filter, row.metadata))
        .map(([id, row]) => ({ id, score: score(q, row.values), row }))
        .sort((a, b) => (c.info.metric === 'l2' ? a.score - b.score : b.score - a.score))
        .slice(0, input.k)
        .map(({ id, score: s, row }) => ({
          id,
          score: s,
          ...(input.includeMetadata ? { metadata: row.metadata ?? {} } : {}),
          ...(input.includeValues ? { values: Array.from(row.values) } : {}),
        }));
    });
    return {
      results,
      servedBy: { collection, version: c.versions.length },
      stats: { shardsSearched: 0, shardsTotal: 0 },
    };
  }

  async buildIndex(collection: string): Promise<BuildOutput> {
    this.enter('buildIndex', collection);
    const c = this.get(collection);
    if (c.pending === 0)
      return { version: c.versions.length, built: false, shards: c.versions.length ? 1 : 0, watermark: 0 };
    const version = c.versions.length + 1;
    c.versions.unshift({
      collection,
      generation: 1,
      version,
      parent: version - 1,
      watermark: c.rows.size,
      engine: c.info.index.engine,
      params: {},
      shards: [],
      createdAt: '2026-01-01T00:00:00.000Z',
      codeVersion: 'test',
      stats: {
        rows: c.rows.size,
        liveRows: c.rows.size,
        bytes: 0,
        buildMs: 0,
        kind: version === 1 ? 'initial' : 'delta',
      },
    });
    c.pending = 0;
    return { version, built: true, kind: version === 1 ? 'initial' : 'delta', shards: 1, watermark: c.rows.size };
  }

  async listVersions(collection: string): Promise<Manifest[]> {
    this.enter('listVersions', collection);
    return this.get(collection).versions;
  }

  private line(name: string, serving: boolean): LineView {
    return { line: name, serving, index: { engine: 'hnsw' }, head: null, lagSeq: 0 };
  }

  async listLines(collection: string): Promise<{ serving: LineView; candidates: LineView[]; promotions: [] }> {
    this.enter('listLines', collection);
    this.get(collection);
    return { serving: this.line('main', true), candidates: [], promotions: [] };
  }

  async getCandidate(collection: string, line: string): Promise<LineView> {
    this.enter('getCandidate', collection, line);
    this.get(collection);
    return this.line(line, false);
  }

  async deleteCandidate(collection: string, line: string): Promise<void> {
    this.enter('deleteCandidate', collection, line);
    this.get(collection);
  }

  async promoteCandidate(
    collection: string,
    line: string,
    input: { force?: boolean; reason?: string },
  ): Promise<PromoteOutput> {
    this.enter('promoteCandidate', collection, line, input);
    this.get(collection);
    return { collection, serving: this.line(line, true), previous: 'main', forced: input.force ?? false };
  }
}

const KEY = 'test-key';

let service: MemoryService;
let handle: (req: ApiRequest) => Promise<ApiResponse>;

beforeEach(() => {
  service = new MemoryService();
  handle = createApi({
    service,
    authorize: async (token) => token === KEY,
    healthExtra: () => ({ local: { bucket: 'b' } }),
    version: '9.9.9',
  }).handle;
});

afterEach(() => {
  vi.restoreAllMocks();
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${KEY}` },
) {
  const res = await handle({
    method,
    path,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  expect(res.headers['Content-Type']).toBe('application/json');
  return {
    status: res.statusCode,
    headers: res.headers,
    json: JSON.parse(res.body) as Record<string, unknown> & { error?: Record<string, unknown> },
  };
}

async function setup(dimension = 2) {
  expect((await call('POST', '/v1/collections', { name: 'docs', dimension, metric: 'ip' })).status).toBe(201);
  const up = await call('POST', '/v1/collections/docs/vectors', {
    vectors: [
      { id: 'a', values: [1, 0], metadata: { genre: 'jazz', year: 1959 } },
      { id: 2, values: [0, 1], metadata: { genre: 'soul', year: 1971 } },
      { id: 'c', values: [0.7, 0.7] },
    ],
  });
  expect(up).toMatchObject({ status: 200, json: { upserted: 3 } });
}

describe('auth', () => {
  it('401 without a key, with a wrong key, or a non-Bearer header — on every route', async () => {
    const variants: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer nope' },
      { authorization: `Basic ${KEY}` },
      { authorization: KEY },
    ];
    for (const headers of variants) {
      for (const [method, path] of [
        ['GET', '/v1/health'],
        ['GET', '/v1/collections'],
        ['POST', '/v1/collections/docs/search'],
        ['GET', '/v1/nowhere'],
      ]) {
        const res = await call(method, path, { vector: [1, 0] }, headers);
        expect(res.status).toBe(401);
        expect(res.json).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } });
        expect(res.headers['WWW-Authenticate']).toBe('Bearer');
      }
    }
    expect(service.calls).toEqual([]);
  });

  it('accepts the header in any case and the scheme in any case', async () => {
    expect((await call('GET', '/v1/health', undefined, { Authorization: `bearer ${KEY}` })).status).toBe(200);
    expect((await call('GET', '/v1/health', undefined, { AUTHORIZATION: `Bearer  ${KEY} ` })).status).toBe(200);
  });

  it('passes undefined to the authorizer when there is no bearer token', async () => {
    const seen: Array<string | undefined> = [];
    const api = createApi({ service, authorize: (t) => (seen.push(t), false), version: '1' });
    await api.handle({ method: 'GET', path: '/v1/health', headers: {} });
    await api.handle({ method: 'GET', path: '/v1/health', headers: { authorization: 'Bearer abc' } });
    expect(seen).toEqual([undefined, 'abc']);
  });

  it('an authorizer failure is a 500 that does not leak', async () => {
    const spy = vi.spyOn(logger, 'error').mockImplementation(() => {});
    const api = createApi({
      service,
      authorize: () => {
        throw new Error('dynamo timeout secret-table');
      },
      version: '1',
    });
    const res = await api.handle({ method: 'GET', path: '/v1/health', headers: { authorization: 'Bearer x' } });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('secret');
    expect(spy).toHaveBeenCalled();
  });
});

describe('routes', () => {
  it('health: status, version and the runtime extra', async () => {
    const res = await call('GET', '/v1/health');
    expect(res).toMatchObject({ status: 200, json: { status: 'ok', version: '9.9.9', local: { bucket: 'b' } } });
  });

  it('collections: create, list, get with stats, delete', async () => {
    const created = await call('POST', '/v1/collections', {
      name: 'docs',
      dimension: 3,
      metric: 'cosine',
      index: { engine: 'hnsw', m: 8 },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      name: 'docs',
      dimension: 3,
      metric: 'cosine',
      index: { engine: 'hnsw', m: 8 },
    });
    expect(service.calls.at(-1)?.args[0]).toEqual({
      name: 'docs',
      dimension: 3,
      metric: 'cosine',
      index: { engine: 'hnsw', m: 8 },
    });

    expect((await call('GET', '/v1/collections')).json).toEqual({ collections: [created.json] });
    const got = await call('GET', '/v1/collections/docs');
    expect(got).toMatchObject({ status: 200, json: { name: 'docs', stats: { count: 0, version: 0 } } });

    const again = await call('POST', '/v1/collections', { name: 'docs', dimension: 3, metric: 'cosine' });
    expect(again).toMatchObject({ status: 409, json: { error: { code: 'CONFLICT', field: 'name' } } });

    expect(await call('DELETE', '/v1/collections/docs')).toMatchObject({ status: 200, json: { deleted: true } });
    expect(await call('GET', '/v1/collections/docs')).toMatchObject({
      status: 404,
      json: { error: { code: 'NOT_FOUND' } },
    });
  });

  it('vectors: upsert (ids normalised), get, delete by ids and by filter', async () => {
    await setup();
    const upserted = service.calls.find((c) => c.method === 'upsert')?.args[1] as VectorInput[];
    expect(upserted.map((v) => v.id)).toEqual(['a', '2', 'c']);
    expect(upserted[0].values).toBeInstanceOf(Float32Array);

    const got = await call('POST', '/v1/collections/docs/vectors/get', { ids: ['a', 2, 'missing'] });
    expect(got.json).toEqual({
      vectors: [
        { id: 'a', values: [1, 0], metadata: { genre: 'jazz', year: 1959 } },
        { id: '2', values: [0, 1], metadata: { genre: 'soul', year: 1971 } },
      ],
    });

    expect((await call('POST', '/v1/collections/docs/vectors/delete', { filter: 'genre == "soul"' })).json).toEqual({
      deleted: 1,
    });
    expect((await call('POST', '/v1/collections/docs/vectors/delete', { ids: ['a', 'zzz'] })).json).toEqual({
      deleted: 1,
    });
    expect((await call('GET', '/v1/collections/docs')).json).toMatchObject({ stats: { count: 1 } });
  });

  it('search: one vector → one list; vectors → a list per query', async () => {
    await setup();
    const one = await call('POST', '/v1/collections/docs/search', { vector: [1, 0], k: 2, include: ['metadata'] });
    expect(one.status).toBe(200);
    expect(one.json).toEqual({
      results: [
        { id: 'a', score: 1, metadata: { genre: 'jazz', year: 1959 } },
        { id: 'c', score: expect.closeTo(0.7, 5), metadata: {} },
      ],
      servedBy: { collection: 'docs', version: 0 },
      stats: { shardsSearched: 0, shardsTotal: 0 },
    });
    const many = await call('POST', '/v1/collections/docs/search', {
      vectors: [
        [1, 0],
        [0, 1],
      ],
      k: 1,
      filter: { year: { $gt: 1960 } },
    });
    expect(many.json).toEqual({
      results: [[{ id: '2', score: 0 }], [{ id: '2', score: 1 }]],
      servedBy: { collection: 'docs', version: 0 },
      stats: { shardsSearched: 0, shardsTotal: 0 },
    });
    const input = service.calls.at(-1)?.args[1] as SearchInput;
    expect(input).toMatchObject({ k: 1, consistency: 'strong', includeMetadata: false, includeValues: false });
    expect(input.filter).toBeDefined();
  });

  it('index build and versions', async () => {
    await setup();
    const built = await call('POST', '/v1/collections/docs/index');
    expect(built).toMatchObject({ status: 202, json: { version: 1, built: true, kind: 'initial', shards: 1 } });
    const versions = await call('GET', '/v1/collections/docs/versions');
    expect(versions.json.versions).toHaveLength(1);
    expect(versions.json).toMatchObject({ versions: [{ version: 1, collection: 'docs' }] });
    expect((await call('POST', '/v1/collections/docs/index', '')).json).toMatchObject({ built: false });
    expect((await call('POST', '/v1/collections/docs/index', 'not json')).json.error).toMatchObject({
      code: 'INVALID_JSON',
    });
    const flatWithM = await call('POST', '/v1/collections/docs/index', { index: { engine: 'flat', m: 8 } });
    expect(flatWithM).toMatchObject({ status: 400, json: { error: { code: 'VALIDATION_ERROR', field: 'index.m' } } });
    expect((await call('POST', '/v1/collections/docs/index', { index: { m: 1 } })).json.error).toMatchObject({
      field: 'index.m',
    });
    expect((await call('POST', '/v1/collections/docs/index', { idx: {} })).json.error).toMatchObject({
      code: 'VALIDATION_ERROR',
    });
    const candidate = await call('POST', '/v1/collections/docs/index', {
      index: { m: 32, efConstruction: 300 },
      candidate: 'wide',
    });
    expect(candidate.status).toBe(202);
    expect(service.calls.at(-1)).toMatchObject({ method: 'buildIndex', args: ['docs'] });
  });

  it('candidate lines: list, get, delete, promote (names validated in the path)', async () => {
    await setup();
    expect(await call('GET', '/v1/collections/docs/candidates')).toMatchObject({
      status: 200,
      json: { serving: { line: 'main' }, candidates: [] },
    });
    expect(await call('GET', '/v1/collections/docs/candidates/wide')).toMatchObject({
      status: 200,
      json: { line: 'wide', serving: false },
    });
    expect(await call('DELETE', '/v1/collections/docs/candidates/wide')).toMatchObject({
      status: 200,
      json: { deleted: true },
    });
    const promoted = await call('POST', '/v1/collections/docs/candidates/wide/promote', {
      force: true,
      reason: 'drill',
    });
    expect(promoted).toMatchObject({ status: 200, json: { previous: 'main', forced: true } });
    expect(service.calls.at(-1)).toMatchObject({
      method: 'promoteCandidate',
      args: ['docs', 'wide', { force: true, reason: 'drill' }],
    });
    expect((await call('POST', '/v1/collections/docs/candidates/wide/promote')).status).toBe(200);
    expect(await call('POST', '/v1/collections/docs/candidates/Wide!/promote')).toMatchObject({
      status: 400,
      json: { error: { field: 'candidate' } },
    });
    expect(await call('POST', '/v1/collections/docs/candidates/wide/promote', { force: 'yes' })).toMatchObject({
      status: 400,
      json: { error: { field: 'force' } },
    });
    expect((await call('PUT', '/v1/collections/docs/candidates/wide')).status).toBe(405);
  });

  it('decodes path parameters and validates the collection name', async () => {
    await call('POST', '/v1/collections', { name: 'my-coll_1', dimension: 2, metric: 'l2' });
    expect((await call('GET', '/v1/collections/my%2Dcoll%5F1')).json).toMatchObject({ name: 'my-coll_1' });
    expect(await call('GET', '/v1/collections/a%2Fb')).toMatchObject({
      status: 400,
      json: { error: { code: 'VALIDATION_ERROR', field: 'name' } },
    });
    expect(await call('GET', '/v1/collections/%E0%A4%A')).toMatchObject({
      status: 400,
      json: { error: { field: 'name' } },
    });
    expect((await call('GET', '/v1/collections/my-coll_1?x=1')).status).toBe(200);
    expect((await call('GET', '/v1/collections/')).status).toBe(200); // trailing slash → the list
  });

  it('404 for unknown routes, 405 with Allow for wrong methods', async () => {
    for (const path of [
      '/',
      '/v2/health',
      '/v1/collections/docs/nope',
      '/v1/collections//search',
      '/v1/collections/docs/vectors/get/x',
      'v1/health',
    ]) {
      expect(await call('GET', path)).toMatchObject({ status: 404, json: { error: { code: 'NOT_FOUND' } } });
    }
    const r1 = await call('PUT', '/v1/collections');
    expect(r1).toMatchObject({
      status: 405,
      json: { error: { code: 'METHOD_NOT_ALLOWED', details: { allow: ['GET', 'POST'] } } },
    });
    expect(r1.headers.Allow).toBe('GET, POST');
    const r2 = await call('GET', '/v1/collections/docs/search');
    expect(r2.status).toBe(405);
    expect(r2.headers.Allow).toBe('POST');
    expect((await call('POST', '/v1/collections/docs')).headers.Allow).toBe('GET, DELETE');
    expect((await call('post', '/v1/collections', { name: 'x', dimension: 1, metric: 'l2' })).status).toBe(201);
    expect(service.calls.map((c) => c.method)).toEqual(['createCollection']);
  });
});

describe('request bodies', () => {
  it('400 INVALID_JSON for a body that is not JSON, or none', async () => {
    for (const body of ['{"name": ', 'not json', '', undefined]) {
      expect(await call('POST', '/v1/collections', body ?? undefined)).toMatchObject({
        status: 400,
        json: { error: { code: 'INVALID_JSON' } },
      });
    }
  });

  it('400 VALIDATION_ERROR with the JSON path of the field and the rule', async () => {
    await setup(2);
    const res = await call('POST', '/v1/collections/docs/vectors', {
      vectors: [
        { id: 'x', values: [1, 2] },
        { id: 'y', values: [1, 2] },
        { id: 'z', values: [1, 2] },
        { id: 'w', values: [1, 2, 3, 4, 5, 6, 7, 'NaN'] },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'vectors[3].values[7]',
      message: expect.stringMatching(/finite number/),
    });

    const dup = await call('POST', '/v1/collections/docs/vectors', {
      vectors: [
        { id: 1, values: [1, 2] },
        { id: '1', values: [1, 2] },
      ],
    });
    expect(dup.json.error).toMatchObject({
      field: 'vectors[1].id',
      details: { first: 'vectors[0].id', duplicate: 'vectors[1].id' },
    });

    const dim = await call('POST', '/v1/collections/docs/vectors', { vectors: [{ id: 'q', values: [1, 2, 3] }] });
    expect(dim).toMatchObject({
      status: 400,
      json: { error: { code: 'VALIDATION_ERROR', field: 'vectors[0].values' } },
    });
  });

  it('400 FILTER_SYNTAX_ERROR with the position', async () => {
    await setup();
    const res = await call('POST', '/v1/collections/docs/search', { vector: [1, 0], filter: 'year >' });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({
      code: 'FILTER_SYNTAX_ERROR',
      field: 'filter',
      details: { position: expect.any(Number), expected: expect.any(String) },
    });
  });

  it('base64 bodies are decoded', async () => {
    const body = Buffer.from(JSON.stringify({ name: 'b64', dimension: 2, metric: 'l2' })).toString('base64');
    const res = await handle({
      method: 'POST',
      path: '/v1/collections',
      headers: { authorization: `Bearer ${KEY}` },
      body,
      isBase64Encoded: true,
    });
    expect(res.statusCode).toBe(201);
  });

  it('413 over 6 MB', async () => {
    const body = JSON.stringify({ vectors: [{ id: 'a', values: [1], metadata: { s: 'x'.repeat(MAX_BODY_BYTES) } }] });
    const res = await call('POST', '/v1/collections/docs/vectors', body);
    expect(res).toMatchObject({
      status: 413,
      json: { error: { code: 'PAYLOAD_TOO_LARGE', details: { limit: MAX_BODY_BYTES } } },
    });
    const b64 = Buffer.alloc(MAX_BODY_BYTES + 1, 32).toString('base64');
    const res2 = await handle({
      method: 'POST',
      path: '/v1/collections/docs/index',
      headers: { authorization: `Bearer ${KEY}` },
      body: b64,
      isBase64Encoded: true,
    });
    expect(res2.statusCode).toBe(413);
  });
});

describe('error mapping', () => {
  const cases: Array<[ShoalError, number, string]> = [
    [new ValidationError('bad thing', { field: 'x', details: { a: 1 } }), 400, 'VALIDATION_ERROR'],
    [new FilterSyntaxError('bad filter', 3, 'a value'), 400, 'FILTER_SYNTAX_ERROR'],
    [new NotFoundError('no such'), 404, 'NOT_FOUND'],
    [new ConflictError('exists', { field: 'name' }), 409, 'CONFLICT'],
    [new UnauthorizedError('nope'), 401, 'UNAUTHORIZED'],
    [new LimitExceededError('too big', { details: { limit: 5 } }), 413, 'LIMIT_EXCEEDED'],
    [new InvalidJsonError('not json'), 400, 'INVALID_JSON'],
    [new PayloadTooLargeError('huge'), 413, 'PAYLOAD_TOO_LARGE'],
    [new MethodNotAllowedError('PUT', ['GET']), 405, 'METHOD_NOT_ALLOWED'],
  ];

  it.each(cases)('%s → its status, code, message, field and details', async (err, status, code) => {
    service.failNext = err;
    const res = await call('GET', '/v1/collections');
    expect(res.status).toBe(status);
    const expected: Record<string, unknown> = { code, message: err.message };
    if (err.field !== undefined) expected.field = err.field;
    if (err.details !== undefined) expected.details = err.details;
    expect(res.json).toEqual({ error: expected });
  });

  const internal: ShoalError[] = [
    new CorruptDataError('shard s3://secret-bucket/x has a bad checksum', {
      field: 'shard',
      details: { key: 'secret' },
    }),
    new UnsupportedFormatError('format v9 at secret-key'),
    new EngineError('wasm abort at secret 0xdead'),
    new ConfigError('SHOAL_SECRET missing', { field: 'SHOAL_SECRET' }),
  ];

  it.each(internal)('%s → 5xx keeps the code, hides message, field and details', async (err) => {
    const spy = vi.spyOn(logger, 'error').mockImplementation(() => {});
    service.failNext = err;
    const res = await call('GET', '/v1/collections');
    expect(res.status).toBe(500);
    expect(res.json).toEqual({ error: { code: err.code, message: 'internal error' } });
    expect(JSON.stringify(res.json)).not.toMatch(/secret/i);
    expect(spy).toHaveBeenCalled();
  });

  it('unknown errors → 500 INTERNAL with a generic message, logged', async () => {
    const spy = vi.spyOn(logger, 'error').mockImplementation(() => {});
    for (const err of [
      new Error('password=hunter2'),
      new TypeError('x is undefined'),
      'a string',
      { weird: true },
      null,
    ]) {
      service.failNext = err;
      const res = await call('GET', '/v1/collections');
      expect(res.status).toBe(500);
      expect(res.json).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    }
    expect(spy).toHaveBeenCalledTimes(5);
    expect(String(spy.mock.calls[0][1])).toContain('hunter2');
  });

  it('toErrorResponse sets Allow and WWW-Authenticate headers', () => {
    expect(toErrorResponse(new MethodNotAllowedError('PUT', ['GET', 'POST'])).headers).toEqual({ Allow: 'GET, POST' });
    expect(toErrorResponse(new UnauthorizedError('no')).headers).toEqual({ 'WWW-Authenticate': 'Bearer' });
    expect(toErrorResponse(new NotFoundError('no')).headers).toEqual({});
  });
});
