/**
 * Regressions for the 5xx answers the route fuzzer found (test/integration/fuzz-routes.test.ts): each
 * input is now a 400 naming the field and the rule, refused before anything is written.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../shared/errors.js';
import {
  abortModelUploadSchema,
  commitModelSchema,
  createImportSchema,
  modelUploadSchema,
  parseBody,
  parseCreateCollection,
  patchCollectionSchema,
} from '../../shared/api/schemas.js';

function rejected(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('minRecall below DynamoDB’s number range (was 500: "Number underflow" from the catalog write)', () => {
  it.each([5e-324, 6.4e-323, 3e-263, 1e-131, 1e-10])('PATCH refuses %s', (minRecall) => {
    // Act
    const err = rejected(() => parseBody(patchCollectionSchema, { minRecall }));
    // Assess
    expect(err.field).toBe('minRecall');
    expect(err.message).toBe('minRecall must be 0 or at least 1e-9');
  });

  it('create refuses it too', () => {
    const err = rejected(() =>
      parseCreateCollection({ name: 'c', dimension: 4, metric: 'cosine', minRecall: 2.5e-323 }),
    );
    expect(err.field).toBe('minRecall');
  });

  it('keeps 0, 1e-9, ordinary fractions, 1 and null', () => {
    for (const minRecall of [0, 1e-9, 0.9, 1, null])
      expect(parseBody(patchCollectionSchema, { minRecall })).toEqual({ minRecall });
    expect(parseCreateCollection({ name: 'c', dimension: 4, metric: 'l2', minRecall: 0.95 })).toMatchObject({
      minRecall: 0.95,
    });
  });
});

describe('strings that reach signed S3 requests (were 500: URIError from SigV4, or S3 refusing the key)', () => {
  it.each([
    ['abort', abortModelUploadSchema, { uploadId: 'a\ud83d' }],
    ['upload', modelUploadSchema, { uploadId: '\udc00x', parts: 1 }],
    [
      'commit',
      commitModelSchema,
      { sha256: '0'.repeat(64), uploadId: '\ud800', parts: [{ partNumber: 1, etag: 'e' }] },
    ],
  ])('%s: an uploadId with a lone surrogate', (_route, schema, body) => {
    const err = rejected(() => parseBody(schema, body));
    expect(err.field).toBe('uploadId');
    expect(err.message).toBe('uploadId must be valid Unicode (it contains a lone surrogate)');
  });

  it('keeps upload ids S3 hands out, and other valid Unicode', () => {
    const id = 'VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA';
    expect(parseBody(abortModelUploadSchema, { uploadId: id })).toEqual({ uploadId: id });
    expect(parseBody(abortModelUploadSchema, { uploadId: 'é😀' })).toEqual({ uploadId: 'é😀' });
  });

  it.each([
    ['a lone surrogate', 's3://shoal-local/imports/docs/\ud800.jsonl', /lone surrogate/],
    ['a key over 1024 UTF-8 bytes', `s3://shoal-local/${'é'.repeat(513)}`, /at most 1024 UTF-8 bytes/],
    ['an invalid bucket name', 's3://Bad_Bucket/k.jsonl', /valid S3 bucket/],
    ['a one-letter bucket', 's3://b/k.jsonl', /valid S3 bucket/],
  ])('imports: a uri with %s', (_what, uri, rule) => {
    const err = rejected(() => parseBody(createImportSchema, { uri }));
    expect(err.field).toBe('uri');
    expect(err.message).toMatch(rule);
  });

  it('imports: keeps ordinary URIs, up to a 1024-byte key', () => {
    for (const uri of [
      's3://shoal-local/imports/docs/part-1.jsonl',
      's3://my.bucket-2/dir with spaces/ü.csv.gz',
      `s3://abc/${'k'.repeat(1024)}`,
    ])
      expect(parseBody(createImportSchema, { uri })).toEqual({ uri });
  });
});
