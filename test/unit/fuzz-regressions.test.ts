/**
 * Regressions for the 5xx answers the route fuzzer found (test/integration/fuzz-routes.test.ts): each
 * input is now a 400 naming the field and the rule, refused before anything is written.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../shared/errors.js';
import { parseBody, parseCreateCollection, patchCollectionSchema } from '../../shared/api/schemas.js';

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
