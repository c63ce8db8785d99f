/**
 * The Milvus API's rate limiter: its own by default, or the one it is given (`MilvusApiDeps.limiter`), so the
 * router can make a key's v1 and Milvus requests draw on one token bucket.
 */
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../shared/auth/keys.js';
import { RateLimiter } from '../../shared/auth/rate-limit.js';
import { createMilvusApi, type MilvusApi } from '../../shared/api/milvus/index.js';
import { createApi } from '../../shared/api/router.js';
import { MILVUS_CODES } from '../../shared/api/milvus/errors.js';
import type { ShoalService } from '../../shared/service.js';

const LIMIT = { perSecond: 0.001, burst: 1 };
const PRINCIPAL: Principal = { role: 'admin', actor: 'key:limited', bucket: 'bucket-limited', rateLimit: LIMIT };

/** No action below reaches the service: the limiter answers first, or the path is one Shoal does not serve. */
const UNREACHED = new Proxy({} as ShoalService, {
  get: (_t, prop) => {
    throw new Error(`the service was reached (${String(prop)})`);
  },
});

function api(limiter?: RateLimiter): MilvusApi {
  return createMilvusApi({ service: UNREACHED, authorize: () => PRINCIPAL, ...(limiter ? { limiter } : {}) });
}

async function code(milvus: MilvusApi): Promise<number> {
  const res = await milvus.handle({
    method: 'POST',
    path: '/v2/vectordb/users/list',
    headers: { authorization: 'Bearer k' },
    body: '{}',
  });
  expect(res.statusCode).toBe(200);
  return (JSON.parse(res.body) as { code: number }).code;
}

describe('createMilvusApi limiter', () => {
  it('draws on the limiter it is given, shared with whoever else takes from it', async () => {
    const shared = new RateLimiter();
    shared.take(PRINCIPAL.bucket, LIMIT);
    expect(await code(api(shared))).toBe(MILVUS_CODES.rateLimit);
  });

  it('keeps buckets of its own without one, still limiting the key', async () => {
    const elsewhere = new RateLimiter();
    elsewhere.take(PRINCIPAL.bucket, LIMIT);
    const own = api();
    // Past the limiter, users/list is a feature Shoal does not have (code 10), not a rate limit.
    expect(await code(own)).toBe(MILVUS_CODES.unimplemented);
    expect(await code(own)).toBe(MILVUS_CODES.rateLimit);
  });
});

describe('the router', () => {
  it('hands its limiter to the Milvus layer: a v1 request spends the bucket a Milvus request then lacks', async () => {
    const router = createApi({ service: UNREACHED, authorize: () => PRINCIPAL, version: 'test' });
    const health = await router.handle({ method: 'GET', path: '/v1/health', headers: { authorization: 'Bearer k' } });
    expect(health.statusCode).toBe(200);
    const res = await router.handle({
      method: 'POST',
      path: '/v2/vectordb/users/list',
      headers: { authorization: 'Bearer k' },
      body: '{}',
    });
    expect((JSON.parse(res.body) as { code: number }).code).toBe(MILVUS_CODES.rateLimit);
  });
});
