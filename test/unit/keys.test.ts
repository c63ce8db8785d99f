/**
 * API keys (shared/auth/keys.ts) and their routes over the in-process router: create (shown once, stored
 * as a hash), list (never a key or hash), revoke, validation naming the field, expiry, `lastUsedAt`
 * throttling, the environment's admin keys, and per-key rate limits (429 RATE_LIMITED + Retry-After).
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { KeyItemFields } from '../../shared/auth/key-item.js';
import { ApiKeys, KEY_ID, type ApiKeyRecord, type ApiKeyStore } from '../../shared/auth/keys.js';
import { RateLimiter } from '../../shared/auth/rate-limit.js';
import { createApi, type Api } from '../../shared/api/router.js';
import { toErrorResponse } from '../../shared/api/http-errors.js';
import { NotFoundError, RateLimitedError } from '../../shared/errors.js';
import type { ShoalService } from '../../shared/service.js';

/** The two items of the DynamoDB store, in Maps. */
class MemoryKeyStore implements ApiKeyStore {
  readonly items = new Map<string, KeyItemFields & Record<string, unknown>>();
  readonly registry = new Map<string, ApiKeyRecord & { hash: string }>();
  touches: Array<[string, string]> = [];

  async create(hash: string, record: ApiKeyRecord): Promise<void> {
    this.registry.set(record.id, { ...record, hash });
    const { id, ...fields } = record;
    this.items.set(hash, { keyId: id, ...fields });
  }
  async list(): Promise<ApiKeyRecord[]> {
    return [...this.registry.values()].map(({ hash: _hash, ...r }) => r);
  }
  async revoke(id: string): Promise<string | undefined> {
    const r = this.registry.get(id);
    if (!r) return undefined;
    this.items.delete(r.hash);
    this.registry.delete(id);
    return r.hash;
  }
  async lookup(hash: string): Promise<KeyItemFields | undefined> {
    return this.items.get(hash);
  }
  async touch(id: string, at: string): Promise<void> {
    this.touches.push([id, at]);
    const r = this.registry.get(id);
    if (r) r.lastUsedAt = at;
  }
}

const ROOT = 'root-key';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let store: MemoryKeyStore;
let keys: ApiKeys;
let api: Api;

const service = {
  listCollections: async () => [],
  getCollection: async (name: string) => ({ name }),
} as unknown as ShoalService;

async function call(method: string, path: string, key: string | undefined, body?: unknown) {
  const res = await api.handle({
    method,
    path,
    headers: key ? { authorization: `Bearer ${key}` } : {},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // Responses are checked field by field; typing every body would restate the API.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: res.statusCode, headers: res.headers, json: JSON.parse(res.body) as any };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2026-03-01T12:00:00Z'));
  store = new MemoryKeyStore();
  keys = new ApiKeys({ store, envKeys: [ROOT], defaultRateLimit: { perSecond: 50, burst: 100 } });
  api = createApi({ service, authorize: (t) => keys.authenticate(t), keys, version: '1' });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('POST /v1/keys', () => {
  it('creates a key, shows it once, stores only its sha256, and the key works at its role', async () => {
    const created = await call('POST', '/v1/keys', ROOT, { name: 'search app', role: 'read', collections: ['docs'] });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({
      id: expect.stringMatching(KEY_ID),
      key: expect.stringMatching(/^shoal_[A-Za-z0-9_-]{43}$/),
      name: 'search app',
      role: 'read',
      collections: ['docs'],
      createdBy: `key:${sha(ROOT).slice(0, 12)}`,
      createdAt: '2026-03-01T12:00:00.000Z',
    });
    const { key, id } = created.json as { key: string; id: string };
    // Stored under its hash; nothing stored holds the key itself.
    expect([...store.items.keys()]).toEqual([sha(key)]);
    expect(JSON.stringify([...store.items.values(), ...store.registry.values()])).not.toContain(key);
    expect(store.items.get(sha(key))).toMatchObject({ keyId: id, role: 'read', collections: ['docs'] });

    expect((await call('GET', '/v1/collections/docs', key)).status).toBe(200);
    expect((await call('GET', '/v1/collections/other', key)).json.error.code).toBe('FORBIDDEN');
    expect((await call('DELETE', '/v1/collections/docs', key)).status).toBe(403);
    expect((await call('GET', '/v1/keys', key)).status).toBe(403);
  });

  it('names the field of a bad request', async () => {
    const bad = async (body: unknown) => (await call('POST', '/v1/keys', ROOT, body)).json.error;
    expect(await bad({ role: 'read' })).toMatchObject({ code: 'VALIDATION_ERROR', field: 'name' });
    expect(await bad({ name: 'x', role: 'root' })).toMatchObject({ code: 'VALIDATION_ERROR', field: 'role' });
    expect(await bad({ name: 'x', role: 'read', collections: ['ok', 'not ok'] })).toMatchObject({
      field: 'collections[1]',
    });
    expect(await bad({ name: 'x', role: 'read', collections: [] })).toMatchObject({ field: 'collections' });
    expect(await bad({ name: 'x', role: 'read', expiresAt: 'tomorrow' })).toMatchObject({ field: 'expiresAt' });
    expect(await bad({ name: 'x', role: 'read', expiresAt: '2026-03-01T11:00:00Z' })).toMatchObject({
      field: 'expiresAt',
    });
    expect(await bad({ name: 'x', role: 'read', rateLimit: { perSecond: 0 } })).toMatchObject({
      field: 'rateLimit.perSecond',
    });
    expect(await bad({ name: 'x\u0000', role: 'read' })).toMatchObject({ field: 'name' });
    expect(await bad({ name: 'x', role: 'read', admin: true })).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(store.items.size).toBe(0);
  });

  it('needs an unscoped admin key', async () => {
    const scopedAdmin = (await call('POST', '/v1/keys', ROOT, { name: 'a', role: 'admin', collections: ['docs'] })).json
      .key;
    const writer = (await call('POST', '/v1/keys', ROOT, { name: 'w', role: 'write' })).json.key;
    const admin = (await call('POST', '/v1/keys', ROOT, { name: 'adm', role: 'admin' })).json;
    expect((await call('POST', '/v1/keys', scopedAdmin, { name: 'x', role: 'admin' })).status).toBe(403);
    expect((await call('POST', '/v1/keys', writer, { name: 'x', role: 'read' })).status).toBe(403);
    const made = await call('POST', '/v1/keys', admin.key, { name: 'x', role: 'read' });
    expect(made).toMatchObject({ status: 201, json: { createdBy: admin.id } });
  });
});

describe('GET /v1/keys and DELETE /v1/keys/{id}', () => {
  it('lists keys without keys or hashes, with lastUsedAt; revoking stops the key at once', async () => {
    const a = (await call('POST', '/v1/keys', ROOT, { name: 'a', role: 'read' })).json;
    vi.setSystemTime(new Date('2026-03-01T12:00:05Z'));
    const b = (
      await call('POST', '/v1/keys', ROOT, {
        name: 'b',
        role: 'write',
        expiresAt: '2027-01-01T00:00:00+01:00',
        rateLimit: { perSecond: 5 },
      })
    ).json;
    expect(b).toMatchObject({ expiresAt: '2026-12-31T23:00:00.000Z', rateLimit: { perSecond: 5, burst: 10 } });
    await call('GET', '/v1/collections', a.key);

    const listed = await call('GET', '/v1/keys', ROOT);
    expect(listed.status).toBe(200);
    expect(listed.json.keys.map((k: { name: string }) => k.name)).toEqual(['a', 'b']);
    expect(listed.json.keys[0]).toEqual({
      id: a.id,
      name: 'a',
      role: 'read',
      createdBy: expect.any(String),
      createdAt: '2026-03-01T12:00:00.000Z',
      lastUsedAt: '2026-03-01T12:00:05.000Z',
    });
    const text = JSON.stringify(listed.json);
    for (const secret of [a.key, b.key, sha(a.key), sha(b.key)]) expect(text).not.toContain(secret);

    expect(await call('DELETE', `/v1/keys/${a.id}`, ROOT)).toMatchObject({ status: 200, json: { deleted: true } });
    expect((await call('GET', '/v1/collections', a.key)).status).toBe(401);
    expect((await call('DELETE', `/v1/keys/${a.id}`, ROOT)).json.error.code).toBe('NOT_FOUND');
    expect((await call('DELETE', '/v1/keys/not-an-id', ROOT)).status).toBe(404);
    expect((await call('GET', '/v1/keys', ROOT)).json.keys.map((k: { id: string }) => k.id)).toEqual([b.id]);
  });

  it('records lastUsedAt at most once a minute per key', async () => {
    const { key, id } = (await call('POST', '/v1/keys', ROOT, { name: 'a', role: 'read' })).json;
    for (let s = 0; s < 130; s += 10) {
      vi.setSystemTime(new Date(Date.parse('2026-03-01T12:00:00Z') + s * 1000));
      expect((await call('GET', '/v1/health', key)).status).toBe(200);
    }
    expect(store.touches).toEqual([
      [id, '2026-03-01T12:00:00.000Z'],
      [id, '2026-03-01T12:01:00.000Z'],
      [id, '2026-03-01T12:02:00.000Z'],
    ]);
  });

  it('a failing lastUsedAt write does not fail the request', async () => {
    const { key } = (await call('POST', '/v1/keys', ROOT, { name: 'a', role: 'read' })).json;
    vi.spyOn(store, 'touch').mockRejectedValue(new Error('throttled'));
    expect((await call('GET', '/v1/health', key)).status).toBe(200);
  });

  it('answers 404 when the deployment has no key management', async () => {
    const bare = createApi({ service, authorize: () => true, version: '1' });
    const res = await bare.handle({ method: 'GET', path: '/v1/keys', headers: { authorization: 'Bearer x' } });
    expect(res.statusCode).toBe(404);
  });
});

describe('imports with a scoped key', () => {
  it('only from the drop folders of its own collections', async () => {
    const imports = { createImport: vi.fn(async () => ({ job: { jobId: 'j' }, created: true })) };
    api = createApi({
      service,
      imports: imports as never,
      authorize: (t) => keys.authenticate(t),
      keys,
      version: '1',
    });
    const scoped = (await call('POST', '/v1/keys', ROOT, { name: 's', role: 'write', collections: ['docs'] })).json.key;
    const ok = await call('POST', '/v1/collections/docs/imports', scoped, { uri: 's3://bkt/imports/docs/a.jsonl' });
    expect(ok.status).toBe(202);
    for (const uri of [
      's3://bkt/imports/secret/a.jsonl',
      's3://bkt/reports/imports/x.jsonl',
      's3://bkt/imports/docs',
    ]) {
      const res = await call('POST', '/v1/collections/docs/imports', scoped, { uri });
      expect(res.json.error, uri).toMatchObject({ code: 'FORBIDDEN', field: 'uri' });
    }
    // Unscoped keys are bounded by what the import role may read, not by the folder.
    expect(
      (await call('POST', '/v1/collections/docs/imports', ROOT, { uri: 's3://bkt/imports/x/a.jsonl' })).status,
    ).toBe(202);
    expect(imports.createImport).toHaveBeenCalledTimes(2);
  });
});

describe('authentication', () => {
  it('treats environment keys as unscoped, unlimited admin keys', async () => {
    expect(await keys.authenticate(ROOT)).toEqual({
      role: 'admin',
      actor: `key:${sha(ROOT).slice(0, 12)}`,
      bucket: sha(ROOT),
    });
  });

  it('reads legacy items without a role as admin keys, refuses expired, disabled and malformed ones', async () => {
    store.items.set(sha('legacy'), { keyId: 'key-1700000000' });
    store.items.set(sha('expired'), { role: 'read', expiresAt: '2026-03-01T11:59:59Z' });
    store.items.set(sha('disabled'), { role: 'read', disabled: true });
    store.items.set(sha('bad-role'), { role: 'owner' });
    store.items.set(sha('bad-scope'), { role: 'read', collections: 'docs' });
    expect(await keys.authenticate('legacy')).toMatchObject({ role: 'admin', actor: 'key-1700000000' });
    for (const k of ['expired', 'disabled', 'bad-role', 'bad-scope', 'unknown', '', 'x'.repeat(513)])
      expect(await keys.authenticate(k), k).toBeUndefined();
    // Legacy ids have no registry entry to touch.
    expect(store.touches).toEqual([]);
  });

  it('an expiring key stops working at expiresAt', async () => {
    const k = keys.authenticate.bind(keys);
    const { key } = await keys.create({ name: 'e', role: 'read', expiresAt: '2026-03-01T12:00:30Z' }, { actor: 'a' });
    expect(await k(key)).toBeDefined();
    // Within the cache's minute, but past the expiry.
    vi.setSystemTime(new Date('2026-03-01T12:00:31Z'));
    expect(await k(key)).toBeUndefined();
  });

  it('caches answers per container: refusals 10 s, so a key made elsewhere works within that', async () => {
    const other = new ApiKeys({ store });
    expect(await keys.authenticate('later')).toBeUndefined();
    const lookups = vi.spyOn(store, 'lookup');
    const { key } = await other.create({ name: 'n', role: 'read' }, { actor: 'a' });
    expect(await keys.authenticate(key)).toBeDefined();
    expect(lookups).toHaveBeenCalledTimes(1);
    expect(await keys.authenticate(key)).toBeDefined();
    expect(lookups).toHaveBeenCalledTimes(1);
  });
});

describe('rate limits', () => {
  it('429 RATE_LIMITED with Retry-After once a key spends its burst, per key', async () => {
    const slow = (
      await call('POST', '/v1/keys', ROOT, { name: 's', role: 'read', rateLimit: { perSecond: 0.5, burst: 2 } })
    ).json.key;
    const other = (await call('POST', '/v1/keys', ROOT, { name: 'o', role: 'read' })).json.key;
    expect((await call('GET', '/v1/health', slow)).status).toBe(200);
    expect((await call('GET', '/v1/health', slow)).status).toBe(200);
    const limited = await call('GET', '/v1/health', slow);
    expect(limited.status).toBe(429);
    expect(limited.headers['Retry-After']).toBe('2');
    expect(limited.json.error).toMatchObject({
      code: 'RATE_LIMITED',
      details: { perSecond: 0.5, burst: 2, retryAfterSeconds: 2 },
    });
    // Other keys (and the environment's) keep their own buckets.
    expect((await call('GET', '/v1/health', other)).status).toBe(200);
    for (let i = 0; i < 200; i++) expect((await call('GET', '/v1/health', ROOT)).status).toBe(200);
    vi.setSystemTime(Date.now() + 2000);
    expect((await call('GET', '/v1/health', slow)).status).toBe(200);
  });

  it('applies the default limit to catalog keys without their own', async () => {
    const k = (await call('POST', '/v1/keys', ROOT, { name: 'd', role: 'read' })).json.key;
    const statuses = [];
    for (let i = 0; i < 101; i++) statuses.push((await call('GET', '/v1/health', k)).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(100);
    expect(statuses[100]).toBe(429);
  });

  it('refills at the rate, never above the burst', () => {
    let now = 0;
    const limiter = new RateLimiter(() => now);
    const limit = { perSecond: 10, burst: 3 };
    for (let i = 0; i < 3; i++) limiter.take('k', limit);
    expect(() => limiter.take('k', limit)).toThrow(RateLimitedError);
    now += 100;
    limiter.take('k', limit);
    now += 60_000;
    for (let i = 0; i < 3; i++) limiter.take('k', limit);
    let err: unknown;
    try {
      limiter.take('k', limit);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(toErrorResponse(err)).toMatchObject({ statusCode: 429, headers: { 'Retry-After': '1' } });
    expect(toErrorResponse(new NotFoundError('x')).headers['Retry-After']).toBeUndefined();
  });
});
