/**
 * Property-based fuzzing of every route of the HTTP API (issue 12): hostile bodies, path parameters,
 * query strings and transports against the real router and services on the embedded emulators. No
 * answer may be a 5xx; every 4xx carries a documented `error.code` and a message; the server keeps
 * answering. A few hundred cases here; `npm run fuzz` runs the same generators 10 000 times.
 *
 *   SHOAL_FUZZ_SEED=<n> SHOAL_FUZZ_RUNS=<n> npx vitest run test/integration/fuzz-routes.test.ts
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkResponse, formatSummary, runFuzz, startFuzzStack, type FuzzStack } from '../helpers/fuzz-harness.js';
import {
  BODY_SPECS,
  QUERY_SPECS,
  encode,
  mutate,
  routeKey,
  routeMethods,
  routerRoutes,
} from '../helpers/fuzz-routes.js';

const SEED = Number(process.env.SHOAL_FUZZ_SEED || 20261129);
const RUNS = Number(process.env.SHOAL_FUZZ_RUNS || 400);

let stack: FuzzStack;

beforeAll(async () => {
  stack = await startFuzzStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('route fuzzing: the generators', () => {
  it('reads every route of the router, and every per-route generator names one of them', () => {
    // Prepare
    const keys = new Set(routeMethods().map(({ route, method }) => routeKey(method, route.path)));
    // Assess
    expect(keys.size).toBeGreaterThanOrEqual(40);
    for (const key of ['GET /v1/health', 'POST /v1/collections/:name/search', 'PUT /v1/aliases/:alias'])
      expect(keys).toContain(key);
    for (const key of [...Object.keys(BODY_SPECS), ...Object.keys(QUERY_SPECS)]) expect(keys).toContain(key);
    expect(routerRoutes().every((r) => r.path.startsWith('/v1/') && r.methods.length > 0)).toBe(true);
  });

  it('writes hostile tokens verbatim and keeps own __proto__ keys', () => {
    // Act
    const text = encode(mutate({ a: [1, 2] }, 2, { op: 'addKey', key: '__proto__', value: { polluted: true } }));
    // Assess
    expect(text).toBe('{"a":[1,2],"__proto__":{"polluted":true}}');
    expect(Object.getPrototypeOf(JSON.parse(text))).toBe(Object.prototype);
  });

  it('flags a 5xx, an undocumented code and a 4xx without a message', () => {
    const res = (statusCode: number, body: unknown) => ({ statusCode, headers: {}, body: JSON.stringify(body) });
    expect(checkResponse(res(500, { error: { code: 'INTERNAL', message: 'internal error' } }))).toMatch(/500/);
    expect(checkResponse(res(400, { error: { code: 'WHATEVER', message: 'x' } }))).toMatch(/undocumented/);
    expect(checkResponse(res(404, { error: { code: 'NOT_FOUND', message: '' } }))).toMatch(/message/);
    expect(checkResponse(res(404, { error: { code: 'NOT_FOUND', message: 'no such thing' } }))).toBeUndefined();
  });
});

describe('route fuzzing: the property', () => {
  it(
    `${RUNS} hostile requests over every route: no 5xx, documented 4xx codes, the server stays up`,
    async () => {
      // Act
      const summary = await runFuzz(stack, { seed: SEED, runs: RUNS });
      // Assess
      const report = formatSummary(summary);
      expect(summary.violations, report).toEqual([]);
      for (const [route, stats] of summary.perRoute) expect(stats.cases, route).toBeGreaterThan(0);
      expect(summary.statuses[200], report).toBeGreaterThan(0);
      expect(summary.statuses[400], report).toBeGreaterThan(0);
      expect(summary.healthChecks).toBeGreaterThan(0);
    },
    60_000 + RUNS * 100,
  );
});

describe('route fuzzing: findings replayed through the router and the emulated storage', () => {
  const send = (method: string, path: string, body: string) =>
    stack.api.handle({ method, path, headers: { authorization: 'Bearer fuzz-key' }, body });

  it('a denormal minRecall is a 400 on minRecall, and the collection keeps its setting', async () => {
    // Prepare
    expect((await send('PATCH', '/v1/collections/fz', '{"minRecall":0.5}')).statusCode).toBe(200);
    // Act
    const res = await send('PATCH', '/v1/collections/fz', '{"minRecall":5e-324}');
    const created = await send(
      'POST',
      '/v1/collections',
      '{"name":"tiny","dimension":4,"metric":"l2","minRecall":6.4e-323}',
    );
    // Assess
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'VALIDATION_ERROR', field: 'minRecall' } });
    expect(created.statusCode).toBe(400);
    const info = JSON.parse(
      (
        await stack.api.handle({
          method: 'GET',
          path: '/v1/collections/fz',
          headers: { authorization: 'Bearer fuzz-key' },
        })
      ).body,
    );
    expect(info.minRecall).toBe(0.5);
    expect((await send('PATCH', '/v1/collections/fz', '{"minRecall":null}')).statusCode).toBe(200);
  });

  it('strings S3 cannot take are 400s on their field, not 500s from the signer or S3', async () => {
    // Act
    const imports = await Promise.all(
      ['s3://shoal-fuzz/imports/fz/\\ud800.jsonl', `s3://shoal-fuzz/${'a'.repeat(2000)}`].map((uri) =>
        send('POST', '/v1/collections/fz/imports', `{"uri":"${uri}"}`),
      ),
    );
    const abort = await send('POST', '/v1/models/fm/versions/1/upload/abort', '{"uploadId":"\\u001f\\ud83d"}');
    // Assess
    for (const res of [...imports, abort]) {
      expect(res.statusCode).toBe(400);
      expect(JSON.parse(res.body).error.code).toBe('VALIDATION_ERROR');
    }
    expect(JSON.parse(abort.body).error.field).toBe('uploadId');
  });
});
