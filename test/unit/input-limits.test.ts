/**
 * Input limits that keep hostile bodies at 4xx: one depth guard on every route, bounded free-form
 * fields (model `params`, `tags`, `metrics`), no control characters in import URIs. Each of these
 * inputs used to reach the service and fail there with a 500 (stack overflow, DynamoDB item size).
 */
import { describe, expect, it } from 'vitest';
import { createImportSchema, parseBody, registerModelSchema } from '../../shared/api/schemas.js';
import { createApi } from '../../shared/api/router.js';
import { ShoalError, ValidationError } from '../../shared/errors.js';
import type { ShoalService } from '../../shared/service.js';
import { LIMITS, hasControlCharacter, jsonDepth } from '../../shared/validation.js';

/** `{"a":{"a":…}}` nested `levels` deep, built as text so building it needs no recursion either. */
function nested(levels: number): string {
  return '{"a":'.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1);
}

function rejection(schema: Parameters<typeof parseBody>[0], body: unknown): ShoalError {
  try {
    parseBody(schema, body);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ShoalError;
  }
  throw new Error('expected a validation error');
}

describe('jsonDepth', () => {
  it('counts containers, not scalars, and stops early past the limit', () => {
    expect(jsonDepth(3)).toBe(0);
    expect(jsonDepth({})).toBe(1);
    expect(jsonDepth({ a: [1, { b: null }] })).toBe(3);
    expect(jsonDepth(JSON.parse(nested(100_000)), 64)).toBe(65);
  });
});

describe('the router depth guard', () => {
  // A service that must never be reached: the guard answers first.
  const untouchable = new Proxy({} as ShoalService, {
    get: (_t, prop) => () => {
      throw new Error(`service.${String(prop)} reached`);
    },
  });
  const api = createApi({ service: untouchable, authorize: async () => true, version: '1' });

  it.each([
    ['POST', '/v1/collections'],
    ['POST', '/v1/collections/docs/search'],
    ['POST', '/v1/collections/docs/vectors'],
  ])('%s %s: a body nested 5,000 deep is a 400 naming the body', async (method, path) => {
    // Act
    const res = await api.handle({ method, path, headers: { authorization: 'Bearer k' }, body: nested(5000) });
    // Assess
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({
      error: { code: 'VALIDATION_ERROR', field: 'body', details: { limit: LIMITS.maxJsonDepth } },
    });
  });

  it('lets a body at the limit through to validation', async () => {
    const res = await api.handle({
      method: 'POST',
      path: '/v1/collections',
      headers: { authorization: 'Bearer k' },
      body: nested(LIMITS.maxJsonDepth),
    });
    // Not the depth guard: the schema rejects the unknown field `a`.
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error.field).not.toBe('body');
  });
});

describe('model version free-form fields', () => {
  const base = { dimension: 4, metric: 'l2' };

  it('refuses params above the size limit, naming the field', () => {
    const err = rejection(registerModelSchema, { ...base, params: { blob: 'x'.repeat(500 * 1024) } });
    expect(err.field).toBe('params');
    expect(err.message).toMatch(/limit is 16384/);
  });

  it('refuses 50,000 tags and over-long tag keys', () => {
    const tags = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`t${i}`, 'v']));
    expect(rejection(registerModelSchema, { ...base, tags }).field).toBe('tags');
    expect(rejection(registerModelSchema, { ...base, tags: { ['k'.repeat(129)]: 'v' } }).field).toMatch(/^tags/);
    expect(rejection(registerModelSchema, { ...base, metrics: { m: 'not a number' } }).field).toMatch(/^metrics/);
  });

  it('accepts params, tags and metrics within the limits', () => {
    const ok = { ...base, params: { lr: 0.001, layers: [64, 64] }, tags: { team: 'search' }, metrics: { mrr: 0.41 } };
    expect(parseBody(registerModelSchema, ok)).toMatchObject(ok);
  });
});

describe('import URIs', () => {
  it('refuses control characters (a NUL byte used to reach S3 and come back as a 500)', () => {
    expect(hasControlCharacter('s3://b/k\u0000.jsonl')).toBe(true);
    expect(hasControlCharacter('s3://b/dir with spaces/ü.jsonl')).toBe(false);
    const err = rejection(createImportSchema, { uri: 's3://bucket/imports/docs/a\u0000.jsonl' });
    expect(err.field).toBe('uri');
    expect(err.message).toMatch(/control characters/);
    expect(parseBody(createImportSchema, { uri: 's3://bucket/imports/docs/a.jsonl' })).toEqual({
      uri: 's3://bucket/imports/docs/a.jsonl',
    });
  });
});
