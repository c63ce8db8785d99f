/**
 * The OpenAPI document (shared/api/openapi.ts) as an OpenAPI 3.1 validator reads it, and as the answers
 * of the real router see it: the route fuzzer's hostile requests (test/helpers/fuzz-routes.ts) against
 * the router and services on the embedded emulators, every answer — success or error — checked against
 * the document's schema for its operation and status.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../shared/api/openapi.js';
import type { Api } from '../../shared/api/router.js';
import { formatSummary, runFuzz, startFuzzStack, type FuzzStack } from '../helpers/fuzz-harness.js';
import { openApiValidator } from '../helpers/openapi-validate.js';

type Json = Record<string, unknown>;
const doc = buildOpenApi('test');

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document (@apidevtools/swagger-parser), every $ref resolving', async () => {
    const api = (await SwaggerParser.validate(structuredClone(doc) as never)) as unknown as Json;
    expect(api.openapi).toBe('3.1.0');
  });

  it('declares every path parameter of every operation, and no other', () => {
    for (const [template, ops] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
      const inPath = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(ops)) {
        const declared = ((op.parameters ?? []) as Json[]).filter((p) => p.in === 'path');
        expect(
          declared.map((p) => p.name),
          `${method} ${template}`,
        ).toEqual(inPath);
        expect(declared.every((p) => p.required === true)).toBe(true);
      }
    }
  });

  it('needs the bearer key everywhere but on the public routes', () => {
    expect(doc.security).toEqual([{ apiKey: [] }]);
    const open = Object.entries(doc.paths as Record<string, Record<string, Json>>).flatMap(([p, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => Array.isArray(op.security) && op.security.length === 0)
        .map(([m]) => `${m.toUpperCase()} ${p}`),
    );
    expect(open.sort()).toEqual(['GET /healthz', 'GET /v1/openapi.json']);
  });
});

describe('fuzzed answers of the real router', () => {
  let stack: FuzzStack;

  beforeAll(async () => {
    stack = await startFuzzStack();
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('every answer to 400 hostile requests matches the document (status and body)', async () => {
    const validator = openApiValidator();
    const problems = new Set<string>();
    let checked = 0;
    const api: Api = {
      routes: stack.api.routes,
      handle: async (req) => {
        const res = await stack.api.handle(req);
        checked++;
        const body = res.body ? JSON.parse(res.body) : undefined;
        for (const p of validator.check(req.method, req.path, res.statusCode, body)) problems.add(p);
        return res;
      },
    };
    const summary = await runFuzz({ ...stack, api }, { seed: 20261130, runs: 400 });
    expect(summary.violations, formatSummary(summary)).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(400);
    expect([...problems]).toEqual([]);
  }, 120_000);
});
