/**
 * The access policy (shared/auth/policy.ts) against the router that applies it: every route the router
 * serves is classified (and nothing else is), and every route × role × scope is allowed or refused (403
 * FORBIDDEN) over the in-process router exactly as the table says.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { V1_ROUTES } from '../../infra/cdk/constructs/api.js';
import type { Principal } from '../../shared/auth/keys.js';
import { ROUTE_POLICIES, decide, policyFor, roleIncludes, type Role } from '../../shared/auth/policy.js';
import { createApi, type Api } from '../../shared/api/router.js';
import { NotFoundError } from '../../shared/errors.js';
import { logger } from '../../shared/log.js';
import type { ImportApi } from '../../shared/import/service.js';
import type { LifecycleService, ShoalService } from '../../shared/service.js';
import type { KeyAdmin } from '../../shared/auth/keys.js';

/** A dependency whose every method answers 404: a request that gets past the policy shows as non-403. */
function notFoundEverywhere<T extends object>(overrides: Partial<Record<string, unknown>> = {}): T {
  return new Proxy({} as T, {
    get: (_t, prop) =>
      prop in overrides
        ? overrides[prop as string]
        : prop === 'then'
          ? undefined
          : async () => {
              throw new NotFoundError(`stub: ${String(prop)}`);
            },
  });
}

const PRINCIPALS: Record<string, Principal> = {
  read: { role: 'read', actor: 'r', bucket: 'r' },
  write: { role: 'write', actor: 'w', bucket: 'w' },
  admin: { role: 'admin', actor: 'a', bucket: 'a' },
  'read@docs': { role: 'read', collections: ['docs'], actor: 'rd', bucket: 'rd' },
  'write@docs': { role: 'write', collections: ['docs'], actor: 'wd', bucket: 'wd' },
  'admin@docs': { role: 'admin', collections: ['docs'], actor: 'ad', bucket: 'ad' },
};

function makeApi(): Api {
  const named =
    (...names: string[]) =>
    async () =>
      names.map((name) => ({ name }));
  return createApi({
    service: notFoundEverywhere<ShoalService>({ listCollections: named('docs', 'other') }),
    lifecycle: notFoundEverywhere<LifecycleService>({ listAliases: named('docs', 'other') }),
    imports: notFoundEverywhere<ImportApi>(),
    keys: notFoundEverywhere<KeyAdmin>(),
    authorize: (token) => (token ? PRINCIPALS[token] : undefined),
    version: '1',
  });
}

/** A concrete path for a route template; the collection parameter is `collection`. */
function concrete(template: string, collection: string): string {
  const values: Record<string, string> = { v: '3', candidate: 'cand1', jobId: 'job1', model: 'm1', id: 'key_0' };
  return template.replace(/\{([^}]+)\}/g, (_m, p: string) =>
    p === 'name' || (p === 'alias' && !template.startsWith('/v1/models')) ? collection : (values[p] ?? 'x1'),
  );
}

afterEach(() => vi.restoreAllMocks());

describe('the route policy', () => {
  it('classifies every route the router serves, and no other', () => {
    const served = [...makeApi().routes].sort();
    expect(served.length).toBeGreaterThan(40);
    expect(Object.keys(ROUTE_POLICIES).sort()).toEqual(served);
    // The API Gateway routes (what the authorizer sees) are the same set.
    expect(V1_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(served);
  });

  it('names as the collection only a path parameter the route has', () => {
    for (const [key, policy] of Object.entries(ROUTE_POLICIES)) {
      if (policy.collection !== undefined) expect(key, key).toContain(`{${policy.collection}}`);
    }
    // Model aliases are not collection aliases.
    expect(ROUTE_POLICIES['PUT /v1/models/{model}/aliases/{alias}'].collection).toBeUndefined();
    expect(ROUTE_POLICIES['PUT /v1/aliases/{alias}'].collection).toBe('alias');
  });

  it('orders roles read < write < admin', () => {
    expect(roleIncludes('admin', 'read')).toBe(true);
    expect(roleIncludes('write', 'read')).toBe(true);
    expect(roleIncludes('read', 'write')).toBe(false);
    expect(roleIncludes('write', 'admin')).toBe(false);
  });

  it('matches raw paths like the router: percent-decoded parameters, trailing slash, query ignored', () => {
    expect(policyFor('post', '/v1/collections/a%20b/search/?x=1')).toMatchObject({
      key: 'POST /v1/collections/{name}/search',
      params: { name: 'a b' },
    });
    expect(policyFor('GET', '/v1/collections//versions')).toBeUndefined();
    expect(policyFor('GET', '/v1/collections/%E0%A4%A/versions')).toBeUndefined();
    expect(policyFor('GET', '/v1/nowhere')).toBeUndefined();
    expect(policyFor('PUT', '/v1/collections')).toBeUndefined();
  });

  it('refuses a scoped key outside its scope and on admin routes without a collection', () => {
    const scoped = { role: 'admin' as Role, collections: ['docs'] };
    expect(decide(scoped, { role: 'admin', collection: 'name' }, { name: 'docs' }).allowed).toBe(true);
    expect(decide(scoped, { role: 'admin', collection: 'name' }, { name: 'other' }).allowed).toBe(false);
    expect(decide(scoped, { role: 'admin' }, {}).allowed).toBe(false);
    expect(decide(scoped, { role: 'read' }, {}).allowed).toBe(true);
    expect(decide({ role: 'read' }, { role: 'write' }, {})).toEqual({
      allowed: false,
      reason: expect.stringContaining('write'),
    });
  });
});

describe('the router applies it to every route × role × scope', () => {
  it.each(Object.keys(PRINCIPALS))('%s', async (who) => {
    vi.spyOn(logger, 'error').mockImplementation(() => {});
    const api = makeApi();
    const p = PRINCIPALS[who];
    for (const key of api.routes) {
      const policy = ROUTE_POLICIES[key];
      const [method, template] = key.split(' ');
      for (const collection of ['docs', 'other']) {
        const res = await api.handle({
          method,
          path: concrete(template, collection),
          headers: { authorization: `Bearer ${who}` },
          body: method === 'GET' || method === 'DELETE' ? undefined : '{}',
        });
        let allowed = roleIncludes(p.role, policy.role);
        if (allowed && p.collections) {
          allowed = policy.collection !== undefined ? collection === 'docs' : policy.role !== 'admin';
        }
        const label = `${who} ${method} ${concrete(template, collection)} → ${res.statusCode} ${res.body}`;
        if (allowed) expect([401, 403], label).not.toContain(res.statusCode);
        else {
          expect(res.statusCode, label).toBe(403);
          expect(JSON.parse(res.body), label).toEqual({ error: { code: 'FORBIDDEN', message: expect.any(String) } });
        }
      }
    }
  });

  it('lists only the collections and aliases of a scoped key', async () => {
    const api = makeApi();
    const list = async (who: string, path: string) =>
      JSON.parse((await api.handle({ method: 'GET', path, headers: { authorization: `Bearer ${who}` } })).body);
    expect(await list('read', '/v1/collections')).toEqual({ collections: [{ name: 'docs' }, { name: 'other' }] });
    expect(await list('read@docs', '/v1/collections')).toEqual({ collections: [{ name: 'docs' }] });
    expect(await list('write@docs', '/v1/aliases')).toEqual({ aliases: [{ name: 'docs' }] });
  });

  it('still answers 401 before any policy, and 404/405 for what is not a route', async () => {
    const api = makeApi();
    const status = async (method: string, path: string, who?: string) =>
      (await api.handle({ method, path, headers: who ? { authorization: `Bearer ${who}` } : {} })).statusCode;
    expect(await status('POST', '/v1/keys')).toBe(401);
    expect(await status('POST', '/v1/keys', 'nobody')).toBe(401);
    expect(await status('GET', '/v1/nowhere', 'read')).toBe(404);
    expect(await status('PATCH', '/v1/keys', 'read')).toBe(405);
  });
});
