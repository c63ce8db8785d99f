/**
 * `GET /healthz` (the unauthenticated liveness probe) and the trailing newline of every JSON body the
 * router produces.
 */
import { describe, expect, it, vi } from 'vitest';
import { createApi, jsonBody } from '../../shared/api/router.js';
import type { ShoalService } from '../../shared/service.js';

const KEY = 'k-1';

/** A service that fails the test on any call: the probe must not reach storage. */
const untouchable = new Proxy({} as ShoalService, {
  get: (_target, prop) => () => {
    throw new Error(`service.${String(prop)} called`);
  },
});

function makeApi() {
  const authorize = vi.fn((token: string | undefined) => token === KEY);
  const api = createApi({
    service: untouchable,
    authorize,
    version: '1.2.3',
    healthExtra: () => ({ local: { s3Endpoint: 'http://127.0.0.1:9', secretAccessKey: 'S3RVER' } }),
  });
  return { api, authorize };
}

describe('GET /healthz', () => {
  it('answers 200 {status, version} without a key and without asking the authorizer', async () => {
    const { api, authorize } = makeApi();
    for (const path of ['/healthz', '/healthz/', '/healthz?probe=1']) {
      const res = await api.handle({ method: 'GET', path, headers: {} });
      expect(res.statusCode, path).toBe(200);
      expect(res.headers['Content-Type']).toBe('application/json');
      expect(res.body).toBe('{"status":"ok","version":"1.2.3"}\n');
    }
    expect(authorize).not.toHaveBeenCalled();
  });

  it('carries none of the health extras (endpoints, credentials), even with a valid key', async () => {
    const { api } = makeApi();
    const res = await api.handle({ method: 'GET', path: '/healthz', headers: { authorization: `Bearer ${KEY}` } });
    expect(res.body).not.toMatch(/S3RVER|127\.0\.0\.1|local/);
    const health = await api.handle({ method: 'GET', path: '/v1/health', headers: { authorization: `Bearer ${KEY}` } });
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', local: { secretAccessKey: 'S3RVER' } });
  });

  it('is GET only: other methods, /v1/health and look-alike paths still need the key', async () => {
    const { api } = makeApi();
    for (const [method, path] of [
      ['POST', '/healthz'],
      ['DELETE', '/healthz'],
      ['GET', '/v1/health'],
      ['GET', '/healthzz'],
      ['GET', '/v1/healthz'],
    ]) {
      const res = await api.handle({ method, path, headers: {} });
      expect(res.statusCode, `${method} ${path}`).toBe(401);
    }
  });
});

describe('JSON bodies end with one newline', () => {
  it('success and error responses alike, and still parse', async () => {
    const { api } = makeApi();
    const auth = { authorization: `Bearer ${KEY}` };
    const responses = [
      await api.handle({ method: 'GET', path: '/v1/health', headers: auth }), // 200
      await api.handle({ method: 'GET', path: '/v1/health', headers: {} }), // 401
      await api.handle({ method: 'GET', path: '/v1/nowhere', headers: auth }), // 404
      await api.handle({ method: 'PUT', path: '/v1/collections', headers: auth }), // 405
      await api.handle({ method: 'POST', path: '/v1/collections', headers: auth, body: '{nope' }), // 400
    ];
    expect(responses.map((r) => r.statusCode)).toEqual([200, 401, 404, 405, 400]);
    for (const r of responses) {
      expect(r.body.endsWith('}\n'), r.body).toBe(true);
      expect(r.body.endsWith('\n\n')).toBe(false);
      expect(() => JSON.parse(r.body)).not.toThrow();
    }
  });

  it('jsonBody is JSON.stringify plus a newline', () => {
    expect(jsonBody({ a: [1, 'x'] })).toBe('{"a":[1,"x"]}\n');
    expect(jsonBody(null)).toBe('null\n');
  });
});
