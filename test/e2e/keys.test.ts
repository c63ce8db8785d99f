/**
 * Scoped API keys end to end over HTTP against a whole local Shoal (`startLocalShoal`, as `npm start`):
 * the bootstrap key makes keys through `/v1/keys`, each works at its role and scope, a revoked key is
 * refused at once, and a key over its rate limit gets 429 with Retry-After.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

let server: HttpShoal;
const call: HttpShoal['call'] = (...args) => server.call(...args);

beforeAll(async () => {
  server = await startHttpShoal('keys');
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('API keys over HTTP', () => {
  it('the bootstrap key creates scoped keys that work at their role and scope only', async () => {
    for (const name of ['docs', 'other']) {
      expect((await call('POST', '/v1/collections', { name, dimension: 2, metric: 'l2' })).status).toBe(201);
    }
    const reader = await call('POST', '/v1/keys', { name: 'docs reader', role: 'read', collections: ['docs'] });
    const writer = await call('POST', '/v1/keys', { name: 'docs writer', role: 'write', collections: ['docs'] });
    expect(reader.status).toBe(201);
    expect(reader.json.key).toMatch(/^shoal_/);
    const r = reader.json.key as string;
    const w = writer.json.key as string;

    const vectors = { vectors: [{ id: 'a', values: [1, 0] }] };
    expect((await call('POST', '/v1/collections/docs/vectors', vectors, w)).status).toBe(200);
    expect((await call('POST', '/v1/collections/docs/vectors', vectors, r)).json.error.code).toBe('FORBIDDEN');
    expect((await call('POST', '/v1/collections/other/vectors', vectors, w)).status).toBe(403);
    const search = await call('POST', '/v1/collections/docs/search', { vector: [1, 0], k: 1 }, r);
    expect(search).toMatchObject({ status: 200, json: { results: [{ id: 'a' }] } });
    expect((await call('POST', '/v1/collections/other/search', { vector: [1, 0] }, r)).status).toBe(403);
    expect(
      (await call('GET', '/v1/collections', undefined, r)).json.collections.map((c: { name: string }) => c.name),
    ).toEqual(['docs']);
    expect((await call('DELETE', '/v1/collections/docs', undefined, w)).status).toBe(403);
    expect((await call('POST', '/v1/keys', { name: 'x', role: 'read' }, w)).status).toBe(403);
    expect((await call('GET', '/v1/health', undefined, 'shoal_not-a-key')).status).toBe(401);

    const listed = await call('GET', '/v1/keys');
    expect(listed.json.keys.map((k: { name: string }) => k.name)).toEqual(['docs reader', 'docs writer']);
    expect(JSON.stringify(listed.json)).not.toContain(r);

    expect((await call('DELETE', `/v1/keys/${reader.json.id}`)).status).toBe(200);
    expect((await call('POST', '/v1/collections/docs/search', { vector: [1, 0] }, r)).status).toBe(401);
    expect((await call('GET', '/v1/keys')).json.keys.map((k: { name: string }) => k.name)).toEqual(['docs writer']);
  });

  it('answers 429 with Retry-After to a key over its rate limit', async () => {
    const { key } = (
      await call('POST', '/v1/keys', { name: 'slow', role: 'read', rateLimit: { perSecond: 1, burst: 2 } })
    ).json as { key: string };
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${server.shoal.url}/v1/health`, { headers: { authorization: `Bearer ${key}` } });
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers.get('retry-after');
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
      } else await res.text();
    }
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(statuses).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // The bootstrap key is not limited by it.
    expect((await call('GET', '/v1/health')).status).toBe(200);
  });
});
