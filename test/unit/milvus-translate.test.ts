/** The Milvus REST layer's pure translators: schema mapping, ids, distances, error codes (docs/milvus.md). */
import { describe, expect, it } from 'vitest';
import { MILVUS_CODES, MilvusUnsupportedError, toMilvusError } from '../../shared/api/milvus/errors.js';
import {
  defaultSchema,
  fromShoalId,
  planCreate,
  rowToVector,
  selectFields,
  toMilvusDistance,
  toShoalId,
  toShoalMetric,
  vectorToRow,
} from '../../shared/api/milvus/schema.js';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  RateLimitedError,
  UnauthorizedError,
  ValidationError,
} from '../../shared/errors.js';
import { exactTopKBatch } from '../../shared/engine/distance.js';

describe('planCreate', () => {
  it('maps the quick form to Milvus defaults (id Int64, vector, COSINE, dynamic field)', () => {
    const plan = planCreate({ dimension: 4 }, 'c');
    expect(plan.input).toEqual({ name: 'c', dimension: 4, metric: 'cosine' });
    expect(plan.schema).toEqual({
      pk: { name: 'id', type: 'Int64', autoId: false },
      vector: { name: 'vector' },
      scalars: [],
      dynamic: true,
    });
  });

  it('maps the schema form: primary key, one FloatVector with dim, metric from indexParams, scalars', () => {
    const plan = planCreate(
      {
        schema: {
          fields: [
            { fieldName: 'key', dataType: 'VarChar', isPrimary: true, elementTypeParams: { max_length: 64 } },
            { fieldName: 'emb', dataType: 'FloatVector', elementTypeParams: { dim: '8' } },
            { fieldName: 'year', dataType: 'Int32', nullable: true },
          ],
        },
        indexParams: [{ fieldName: 'emb', metricType: 'IP' }],
      },
      'c',
    );
    expect(plan.input).toEqual({ name: 'c', dimension: 8, metric: 'ip' });
    expect(plan.schema.pk).toEqual({ name: 'key', type: 'VarChar', autoId: false, maxLength: 64 });
    expect(plan.schema.scalars).toEqual([{ name: 'year', type: 'Int32', nullable: true }]);
    expect(plan.schema.dynamic).toBe(false);
  });

  it('refuses what Shoal cannot hold, naming the field', () => {
    const vec = { fieldName: 'v', dataType: 'FloatVector', elementTypeParams: { dim: 4 } };
    const pk = { fieldName: 'id', dataType: 'Int64', isPrimary: true };
    const bad = (fields: unknown[]): unknown => planCreate({ schema: { fields } }, 'c');
    expect(() => bad([vec])).toThrow(/primary key/);
    expect(() => bad([pk, vec, { ...vec, fieldName: 'w' }])).toThrow(/one vector field/);
    expect(() => bad([{ ...pk, dataType: 'Float' }, vec])).toThrow(/Int64 or VarChar/);
    expect(() => bad([pk, vec, { fieldName: 's', dataType: 'SparseFloatVector' }])).toThrow(ValidationError);
    expect(() => planCreate({ dimension: 4, metricType: 'HAMMING' }, 'c')).toThrow(/L2, IP, COSINE/);
  });
});

describe('ids and rows', () => {
  const schema = planCreate(
    {
      schema: {
        fields: [
          { fieldName: 'pk', dataType: 'Int64', isPrimary: true },
          { fieldName: 'v', dataType: 'FloatVector', elementTypeParams: { dim: 2 } },
          { fieldName: 'n', dataType: 'Int64' },
        ],
      },
    },
    'c',
  ).schema;

  it('keeps Int64 keys as decimal strings, and answers numbers or strings as the client asked', () => {
    expect(toShoalId(schema, 42, 'id')).toBe('42');
    expect(toShoalId(schema, '42', 'id')).toBe('42');
    expect(() => toShoalId(schema, 2 ** 60, 'id')).toThrow(/±2\^53/);
    expect(() => toShoalId(schema, 1.5, 'id')).toThrow(ValidationError);
    expect(fromShoalId(schema, '42', true)).toBe(42);
    expect(fromShoalId(schema, '42', false)).toBe('42');
    expect(fromShoalId(defaultSchema(), '42', true)).toBe('42');
  });

  it('puts the primary key and scalars in the metadata, and reads them back', () => {
    const v = rowToVector(schema, { pk: 7, v: [1, 2], n: 3 }, 'data[0]');
    expect(v).toEqual({ id: '7', values: [1, 2], metadata: { pk: 7, n: 3 } });
    expect(() => rowToVector(schema, { pk: 7, v: [1, 2], n: 3, extra: 1 }, 'data[0]')).toThrow(/dynamic field/);
    expect(() => rowToVector(schema, { pk: 7, v: [1, 2] }, 'data[0]')).toThrow(/data\[0\]\.n is missing/);
    const row = vectorToRow(
      schema,
      { id: '7', values: [1, 2], metadata: { pk: 7, n: 3 } },
      selectFields(schema, ['*']),
      false,
    );
    expect(row).toEqual({ pk: '7', n: '3', v: [1, 2] });
    expect(vectorToRow(schema, { id: '7', metadata: { pk: 7, n: 3 } }, selectFields(schema, []), true)).toEqual({
      pk: 7,
    });
  });
});

describe('metrics and distances', () => {
  it('maps L2 / IP / COSINE, and reports Shoal scores as Milvus distances', () => {
    expect(['L2', 'ip', 'Cosine'].map((m) => toShoalMetric(m))).toEqual(['l2', 'ip', 'cosine']);
    const base = new Float32Array([0, 0, 3, 4]);
    const q = new Float32Array([0, 0]);
    const q2 = new Float32Array([1, 0]);
    // Milvus: L2 = squared Euclidean distance; IP = inner product (larger is closer).
    const view = { data: base, offset: 0, stride: 2, dim: 2, count: 2, normalized: false };
    const [l2] = exactTopKBatch(view, 'l2', q, 1, 2);
    expect(l2.map((h) => toMilvusDistance('l2', h.score))).toEqual([0, 25]);
    const [ip] = exactTopKBatch(view, 'ip', q2, 1, 2);
    expect(ip.map((h) => toMilvusDistance('ip', h.score))).toEqual([3, 0]);
  });
});

describe('toMilvusError', () => {
  it('maps typed errors to merr codes and keeps the message', () => {
    expect(toMilvusError(new NotFoundError('collection "x" not found'))).toEqual({
      code: MILVUS_CODES.collectionNotFound,
      message: 'collection "x" not found',
    });
    expect(toMilvusError(new NotFoundError('gone'), { notFound: 'alias' }).code).toBe(1600);
    expect(toMilvusError(new ValidationError('bad')).code).toBe(1100);
    expect(toMilvusError(new UnauthorizedError('key')).code).toBe(1800);
    expect(toMilvusError(new ForbiddenError('role')).code).toBe(1401);
    expect(toMilvusError(new RateLimitedError('slow', 1)).code).toBe(8);
    expect(toMilvusError(new ConflictError('alias "a" already exists (revision 1)'), { aliasOp: true }).code).toBe(
      1602,
    );
    expect(toMilvusError(new ConflictError('"a" is a collection; …'), { aliasOp: true }).code).toBe(1601);
    expect(toMilvusError(new MilvusUnsupportedError('no users')).code).toBe(10);
    expect(toMilvusError(new Error('boom'))).toEqual({ code: 65535, message: 'internal error' });
  });
});
