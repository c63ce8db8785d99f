import { describe, expect, it } from 'vitest';
import { FilterSyntaxError, ShoalError, ValidationError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/validation.js';
import {
  createCollectionSchema,
  deleteVectorsSchema,
  formatPath,
  getVectorsSchema,
  parseBody,
  parseCollectionName,
  searchSchema,
  startExperimentSchema,
  putAliasSchema,
  tuneSchema,
  buildRequestSchema,
  upsertSchema,
} from '../../shared/api/schemas.js';
import type { z } from 'zod';

/** Runs parseBody expecting a ShoalError; returns it. */
function reject(schema: z.ZodType, body: unknown): ShoalError {
  try {
    parseBody(schema, body);
  } catch (e) {
    expect(e).toBeInstanceOf(ShoalError);
    return e as ShoalError;
  }
  throw new Error(`expected ${JSON.stringify(body)?.slice(0, 200)} to be rejected`);
}

function invalid(schema: z.ZodType, body: unknown, field: string | undefined, rule?: RegExp): ValidationError {
  const err = reject(schema, body);
  expect(err).toBeInstanceOf(ValidationError);
  expect(err.code).toBe('VALIDATION_ERROR');
  expect(err.statusCode).toBe(400);
  expect(err.field).toBe(field);
  if (rule) expect(err.message).toMatch(rule);
  if (field) expect(err.message.startsWith(field)).toBe(true);
  return err as ValidationError;
}

const vec = (id: unknown, values: unknown = [1, 2], metadata?: unknown) =>
  metadata === undefined ? { id, values } : { id, values, metadata };

describe('formatPath', () => {
  it('renders JSON paths', () => {
    expect(formatPath(['vectors', 3, 'values', 7])).toBe('vectors[3].values[7]');
    expect(formatPath(['vectors', 0, 'metadata', 'a b', 'c'])).toBe('vectors[0].metadata["a b"].c');
    expect(formatPath([])).toBe('');
  });
});

describe('createCollection', () => {
  const base = { name: 'docs_v1-a', dimension: 3, metric: 'cosine' };

  it('accepts a minimal body and passes index params through', () => {
    expect(parseBody(createCollectionSchema, base)).toEqual(base);
    expect(
      parseBody(createCollectionSchema, {
        ...base,
        index: { engine: 'hnsw', m: 32, efConstruction: 100, efSearch: 50 },
      }),
    ).toEqual({
      ...base,
      index: { engine: 'hnsw', m: 32, efConstruction: 100, efSearch: 50 },
    });
    expect(parseBody(createCollectionSchema, { ...base, index: { engine: 'flat' } })).toEqual({
      ...base,
      index: { engine: 'flat' },
    });
    expect(parseBody(createCollectionSchema, { ...base, index: { m: 8 } })).toEqual({ ...base, index: { m: 8 } });
  });

  it('checks the name', () => {
    parseBody(createCollectionSchema, { ...base, name: 'a'.repeat(63) });
    for (const name of ['', '_x', '-x', 'a'.repeat(64), 'a b', 'a/b', 'é']) {
      invalid(createCollectionSchema, { ...base, name }, 'name', /must match/);
    }
    invalid(createCollectionSchema, { ...base, name: 5 }, 'name', /must be a string/);
    invalid(createCollectionSchema, { dimension: 3, metric: 'l2' }, 'name', /is required/);
  });

  it('checks the dimension', () => {
    parseBody(createCollectionSchema, { ...base, dimension: 1 });
    parseBody(createCollectionSchema, { ...base, dimension: 4096 });
    invalid(createCollectionSchema, { ...base, dimension: 0 }, 'dimension', /≥ 1/);
    invalid(createCollectionSchema, { ...base, dimension: 4097 }, 'dimension', /≤ 4096/);
    invalid(createCollectionSchema, { ...base, dimension: 1.5 }, 'dimension', /integer/);
    invalid(createCollectionSchema, { ...base, dimension: '3' }, 'dimension', /must be/);
  });

  it('checks metric, engine and hnsw parameters', () => {
    invalid(createCollectionSchema, { ...base, metric: 'dot' }, 'metric', /one of "cosine", "l2", "ip"/);
    invalid(createCollectionSchema, { ...base, index: { engine: 'ivf' } }, 'index.engine', /one of "hnsw", "flat"/);
    invalid(createCollectionSchema, { ...base, index: { m: 1 } }, 'index.m', /≥ 2/);
    invalid(createCollectionSchema, { ...base, index: { m: 129 } }, 'index.m', /≤ 128/);
    invalid(createCollectionSchema, { ...base, index: { efConstruction: 4 } }, 'index.efConstruction', /≥ 8/);
    invalid(createCollectionSchema, { ...base, index: { efSearch: 0 } }, 'index.efSearch');
    invalid(
      createCollectionSchema,
      { ...base, index: { engine: 'flat', m: 16 } },
      'index.m',
      /only to the hnsw engine/,
    );
    invalid(
      createCollectionSchema,
      { ...base, index: { ef_construction: 16 } },
      'index.ef_construction',
      /not a known field/,
    );
  });

  it('rejects unknown fields and non-objects', () => {
    invalid(createCollectionSchema, { ...base, dims: 3 }, 'dims', /not a known field/);
    const err = invalid(createCollectionSchema, [], undefined, /^request body must be a JSON object/);
    expect(err.details?.issues).toBeDefined();
    invalid(createCollectionSchema, undefined, undefined, /request body is required/);
  });
});

describe('upsert', () => {
  it('converts ids to strings and values to Float32Array', () => {
    const out = parseBody(upsertSchema, {
      vectors: [vec('a', [1, -2.5]), vec(0, [3, 4], { tag: 'x', n: [1, { deep: true }] }), vec(2 ** 53 - 1)],
    });
    expect(out.map((v) => v.id)).toEqual(['a', '0', String(2 ** 53 - 1)]);
    expect(out[0].values).toBeInstanceOf(Float32Array);
    expect(Array.from(out[0].values)).toEqual([1, -2.5]);
    expect(out[0].metadata).toBeUndefined();
    expect('metadata' in out[0]).toBe(false);
    expect(out[1].metadata).toEqual({ tag: 'x', n: [1, { deep: true }] });
  });

  it('checks ids', () => {
    invalid(upsertSchema, { vectors: [vec('')] }, 'vectors[0].id', /must not be empty/);
    parseBody(upsertSchema, { vectors: [vec('é'.repeat(256))] }); // 512 bytes
    invalid(
      upsertSchema,
      { vectors: [vec('é'.repeat(256) + 'x')] },
      'vectors[0].id',
      /at most 512 UTF-8 bytes, got 513/,
    );
    invalid(upsertSchema, { vectors: [vec('ok'), vec(-1)] }, 'vectors[1].id', /non-negative safe integer/);
    invalid(upsertSchema, { vectors: [vec(1.5)] }, 'vectors[0].id', /non-negative safe integer/);
    invalid(upsertSchema, { vectors: [vec(2 ** 53)] }, 'vectors[0].id', /non-negative safe integer/);
    invalid(upsertSchema, { vectors: [vec(null)] }, 'vectors[0].id', /got null/);
    invalid(upsertSchema, { vectors: [vec(true)] }, 'vectors[0].id');
    invalid(upsertSchema, { vectors: [vec({ a: 1 })] }, 'vectors[0].id');
    invalid(upsertSchema, { vectors: [vec('a\ud800b')] }, 'vectors[0].id', /lone surrogate/);
    invalid(upsertSchema, { vectors: [{ values: [1] }] }, 'vectors[0].id', /string or a non-negative/);
  });

  it('rejects duplicate ids naming both positions, after number → string', () => {
    const err = invalid(
      upsertSchema,
      { vectors: [vec('a'), vec('7'), vec('b'), vec(7)] },
      'vectors[3].id',
      /vectors\[1\]\.id/,
    );
    expect(err.details).toMatchObject({ id: '7', first: 'vectors[1].id', duplicate: 'vectors[3].id' });
    invalid(getVectorsSchema, { ids: ['x', 'y', 'x'] }, 'ids[2]', /ids\[0\]/);
    invalid(deleteVectorsSchema, { ids: [1, '1'] }, 'ids[1]', /ids\[0\]/);
  });

  it('checks values: shape and finiteness', () => {
    invalid(
      upsertSchema,
      { vectors: [vec('a', [1, 2, 'NaN'])] },
      'vectors[0].values[2]',
      /finite number, got the string "NaN"/,
    );
    invalid(upsertSchema, { vectors: [vec('a', [1, 'Infinity'])] }, 'vectors[0].values[1]', /finite number/);
    invalid(upsertSchema, { vectors: [vec('a', [NaN])] }, 'vectors[0].values[0]', /finite number, got NaN/);
    invalid(upsertSchema, { vectors: [vec('a', [1, Infinity])] }, 'vectors[0].values[1]', /finite/);
    // JSON.parse turns 1e999 into Infinity; JSON.stringify(NaN) is null.
    invalid(
      upsertSchema,
      JSON.parse('{"vectors":[{"id":"a","values":[1e999]}]}'),
      'vectors[0].values[0]',
      /not finite/,
    );
    invalid(upsertSchema, { vectors: [vec('a', [1, null])] }, 'vectors[0].values[1]', /got null/);
    invalid(upsertSchema, { vectors: [vec('a', [1, 1e39])] }, 'vectors[0].values[1]', /float32/);
    invalid(upsertSchema, { vectors: [vec('a', [[1]])] }, 'vectors[0].values[0]');
    invalid(upsertSchema, { vectors: [vec('a', [])] }, 'vectors[0].values', /at least 1/);
    invalid(upsertSchema, { vectors: [vec('a', 'abc')] }, 'vectors[0].values', /array of numbers/);
    invalid(upsertSchema, { vectors: [vec('a', { 0: 1 })] }, 'vectors[0].values', /array of numbers/);
    invalid(upsertSchema, { vectors: [vec('a', new Array(4097).fill(0))] }, 'vectors[0].values', /at most 4096/);
    invalid(
      upsertSchema,
      { vectors: [vec('a'), vec('b'), vec('c'), { id: 'd', values: [0, 0, 0, 0, 0, 0, 0, 1, 'x'] }] },
      'vectors[3].values[8]',
    );
    invalid(upsertSchema, { vectors: [{ id: 'a' }] }, 'vectors[0].values', /got nothing/);
  });

  it('checks the batch', () => {
    invalid(upsertSchema, { vectors: [] }, 'vectors', /at least 1 items/);
    const many = Array.from({ length: 1001 }, (_, i) => vec(i));
    invalid(upsertSchema, { vectors: many }, 'vectors', /at most 1000 items/);
    expect(parseBody(upsertSchema, { vectors: many.slice(0, 1000) })).toHaveLength(1000);
    invalid(upsertSchema, {}, 'vectors', /is required/);
    invalid(upsertSchema, { vectors: {} }, 'vectors', /must be an array/);
    invalid(upsertSchema, { vectors: [vec('a')], extra: 1 }, 'extra', /not a known field/);
    invalid(upsertSchema, { vectors: [{ id: 'a', values: [1], meta: {} }] }, 'vectors[0].meta', /not a known field/);
  });

  it('checks metadata limits', () => {
    const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    parseBody(upsertSchema, { vectors: [vec('a', [1], keys(64))] });
    invalid(upsertSchema, { vectors: [vec('a', [1], keys(65))] }, 'vectors[0].metadata', /at most 64 top-level keys/);

    const nest = (levels: number): unknown => (levels === 1 ? { leaf: 1 } : { n: nest(levels - 1) });
    parseBody(upsertSchema, { vectors: [vec('a', [1], nest(8))] });
    invalid(
      upsertSchema,
      { vectors: [vec('a', [1], nest(9))] },
      'vectors[0].metadata.n.n.n.n.n.n.n.n',
      /deeper than 8/,
    );
    // Arrays count as levels too.
    parseBody(upsertSchema, { vectors: [vec('a', [1], { a: [[[[[[[1]]]]]]] })] });
    invalid(
      upsertSchema,
      { vectors: [vec('a', [1], { a: [[[[[[[[1]]]]]]]] })] },
      'vectors[0].metadata.a[0][0][0][0][0][0][0]',
      /deeper/,
    );

    const big = { s: 'x'.repeat(LIMITS.maxMetadataBytes - 8) }; // {"s":"…"} = 8 bytes of syntax
    parseBody(upsertSchema, { vectors: [vec('a', [1], big)] });
    invalid(
      upsertSchema,
      { vectors: [vec('a', [1], { s: big.s + 'x' })] },
      'vectors[0].metadata',
      /at most 40960 bytes serialized, got 40961/,
    );

    invalid(upsertSchema, { vectors: [vec('a', [1], [1, 2])] }, 'vectors[0].metadata', /JSON object, got an array/);
    invalid(upsertSchema, { vectors: [vec('a', [1], 'tag')] }, 'vectors[0].metadata', /JSON object/);
    invalid(upsertSchema, { vectors: [vec('a', [1], null)] }, 'vectors[0].metadata', /JSON object, got null/);
    invalid(
      upsertSchema,
      { vectors: [vec('a', [1], { 'a b': { x: Infinity } })] },
      'vectors[0].metadata["a b"].x',
      /finite/,
    );
    invalid(upsertSchema, { vectors: [vec('a', [1], { f: () => 1 })] }, 'vectors[0].metadata.f', /JSON value/);
  });
});

describe('get and delete', () => {
  it('get: ids list', () => {
    expect(parseBody(getVectorsSchema, { ids: ['a', 3] })).toEqual(['a', '3']);
    invalid(getVectorsSchema, { ids: [] }, 'ids', /at least 1/);
    invalid(getVectorsSchema, { ids: Array.from({ length: 1001 }, (_, i) => i) }, 'ids', /at most 1000/);
    invalid(getVectorsSchema, { ids: ['a', -3] }, 'ids[1]');
    invalid(getVectorsSchema, { ids: 'a' }, 'ids', /must be an array/);
  });

  it('delete: exactly one of ids and filter', () => {
    expect(parseBody(deleteVectorsSchema, { ids: [1, 'b'] })).toEqual({ ids: ['1', 'b'] });
    const byFilter = parseBody(deleteVectorsSchema, { filter: 'year > 2000' });
    expect(byFilter).toHaveProperty('filter.op', 'cmp');
    expect(parseBody(deleteVectorsSchema, { filter: { genre: 'jazz' } })).toHaveProperty('filter');
    invalid(deleteVectorsSchema, {}, undefined, /exactly one of "ids" and "filter"/);
    invalid(deleteVectorsSchema, { filter: null }, undefined, /exactly one/);
    invalid(deleteVectorsSchema, { ids: ['a'], filter: 'x == 1' }, 'ids', /must not be combined/);
  });

  it('delete: filter syntax errors keep their code and position', () => {
    const err = reject(deleteVectorsSchema, { filter: 'year > ' });
    expect(err).toBeInstanceOf(FilterSyntaxError);
    expect(err.code).toBe('FILTER_SYNTAX_ERROR');
    expect(err.field).toBe('filter');
    expect(err.details?.position).toBeTypeOf('number');
  });
});

describe('search', () => {
  it('single vector with defaults', () => {
    const out = parseBody(searchSchema, { vector: [1, 2, 3] });
    expect(out.single).toBe(true);
    expect(out.input.queries).toHaveLength(1);
    expect(out.input.queries[0]).toBeInstanceOf(Float32Array);
    expect(out.input).toMatchObject({ k: 10, consistency: 'strong', includeMetadata: false, includeValues: false });
    expect(out.input.filter).toBeUndefined();
    expect(out.input.ef).toBeUndefined();
  });

  it('multiple vectors with every option', () => {
    const out = parseBody(searchSchema, {
      vectors: [
        [1, 2],
        [3, 4],
      ],
      k: 5,
      ef: 128,
      consistency: 'eventual',
      include: ['values', 'metadata'],
      filter: 'genre == "jazz" and year >= 1960',
    });
    expect(out.single).toBe(false);
    expect(out.input.queries.map((q) => Array.from(q))).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(out.input).toMatchObject({
      k: 5,
      ef: 128,
      consistency: 'eventual',
      includeMetadata: true,
      includeValues: true,
    });
    expect(out.input.filter?.op).toBe('and');
    expect(parseBody(searchSchema, { vector: [1], include: ['metadata'] }).input).toMatchObject({
      includeMetadata: true,
      includeValues: false,
    });
    expect(parseBody(searchSchema, { vector: [1], filter: { year: { $gt: 2000 } } }).input.filter).toBeDefined();
    expect(parseBody(searchSchema, { vector: [1], filter: null }).input.filter).toBeUndefined();
  });

  it('vector and vectors are exclusive', () => {
    invalid(searchSchema, { k: 3 }, undefined, /exactly one of "vector", "vectors", "input" and "inputs"/);
    invalid(searchSchema, { input: [1], inputs: [[1]] }, 'inputs', /must not be combined with "input"/);
    invalid(searchSchema, { vector: [1], vectors: [[1]] }, 'vectors', /must not be combined/);
    invalid(searchSchema, { vectors: [] }, 'vectors', /at least 1/);
    invalid(searchSchema, { vectors: Array.from({ length: 101 }, () => [1]) }, 'vectors', /at most 100/);
    invalid(searchSchema, { vectors: [[1], [2, 'x']] }, 'vectors[1][1]', /finite number/);
    invalid(searchSchema, { vector: [1, NaN] }, 'vector[1]', /finite/);
    invalid(searchSchema, { vector: [] }, 'vector', /at least 1/);
  });

  it('k and ef bounds', () => {
    expect(parseBody(searchSchema, { vector: [1], k: 1 }).input.k).toBe(1);
    expect(parseBody(searchSchema, { vector: [1], k: 1000 }).input.k).toBe(1000);
    invalid(searchSchema, { vector: [1], k: 0 }, 'k', /≥ 1, got 0/);
    invalid(searchSchema, { vector: [1], k: 1001 }, 'k', /≤ 1000/);
    invalid(searchSchema, { vector: [1], k: 2.5 }, 'k', /integer/);
    invalid(searchSchema, { vector: [1], k: '10' }, 'k', /got the string "10"/);
    invalid(searchSchema, { vector: [1], k: null }, 'k');
    expect(parseBody(searchSchema, { vector: [1], ef: 4096 }).input.ef).toBe(4096);
    invalid(searchSchema, { vector: [1], ef: 0 }, 'ef', /≥ 1/);
    invalid(searchSchema, { vector: [1], ef: 4097 }, 'ef', /≤ 4096/);
  });

  it('consistency and include values', () => {
    invalid(searchSchema, { vector: [1], consistency: 'weak' }, 'consistency', /one of "strong", "eventual"/);
    invalid(searchSchema, { vector: [1], include: ['ids'] }, 'include[0]', /one of "metadata", "values"/);
    invalid(searchSchema, { vector: [1], include: 'metadata' }, 'include', /must be an array/);
    invalid(searchSchema, { vector: [1], topK: 3 }, 'topK', /not a known field/);
  });

  it('filter syntax errors → FILTER_SYNTAX_ERROR with position', () => {
    const err = reject(searchSchema, { vector: [1], filter: 'year >> 3' });
    expect(err).toBeInstanceOf(FilterSyntaxError);
    expect(err.statusCode).toBe(400);
    expect(err.field).toBe('filter');
    expect((err as FilterSyntaxError).position).toBeGreaterThanOrEqual(0);
    expect(err.details).toMatchObject({ position: (err as FilterSyntaxError).position });
    const json = reject(searchSchema, { vector: [1], filter: { $bogus: 1 } });
    expect(json.code).toBe('FILTER_SYNTAX_ERROR');
    expect(reject(searchSchema, { vector: [1], filter: 42 }).code).toBe('FILTER_SYNTAX_ERROR');
  });

  it('structural errors are reported before filter parsing', () => {
    invalid(searchSchema, { vector: [1], k: 0, filter: '(((' }, 'k');
  });
});

describe('collection names from paths', () => {
  it('validates like the body', () => {
    expect(parseCollectionName('abc')).toBe('abc');
    expect(() => parseCollectionName('a/b')).toThrow(ValidationError);
  });
});

describe('lifecycle bodies', () => {
  it('experiments: tau2 is a split-mode setting within bounds', () => {
    const split = parseBody(startExperimentSchema, { challenger: { collection: 'b' }, mode: 'split', tau2: 0.004 });
    expect(split).toMatchObject({ mode: 'split', tau2: 0.004 });
    expect(parseBody(startExperimentSchema, { challenger: { collection: 'b' }, mode: 'split' })).not.toHaveProperty(
      'tau2',
    );
    invalid(
      startExperimentSchema,
      { challenger: { collection: 'b' }, mode: 'shadow', tau2: 0.004 },
      'tau2',
      /split mode only/,
    );
    invalid(startExperimentSchema, { challenger: { collection: 'b' }, mode: 'split', tau2: 0 }, 'tau2');
    invalid(startExperimentSchema, { challenger: { collection: 'b' }, mode: 'split', tau2: 1 }, 'tau2');
  });

  it('alias targets: a pinned version or a followed line, not both', () => {
    expect(parseBody(putAliasSchema, { collection: 'items', line: 'cand-1a2b3c4d' })).toEqual({
      collection: 'items',
      line: 'cand-1a2b3c4d',
    });
    invalid(putAliasSchema, { collection: 'items', version: 3, line: 'wide' }, 'line', /not both/);
    invalid(putAliasSchema, { collection: 'items', line: 'Wide!' }, 'line');
    expect(
      parseBody(startExperimentSchema, { challenger: { collection: 'items', line: 'wide' }, mode: 'shadow' }),
    ).toMatchObject({ challenger: { collection: 'items', line: 'wide' } });
    invalid(
      startExperimentSchema,
      { challenger: { collection: 'items', version: 2, line: 'wide' }, mode: 'shadow' },
      'challenger.line',
      /not both/,
    );
  });

  it('tune: graph sweep options', () => {
    // `sample` has no schema default: the service's (DEFAULT_TUNE_SAMPLE, 100) applies when no `queries` came.
    expect(parseBody(tuneSchema, { targetRecall: 0.9 })).toEqual({
      targetRecall: 0.9,
      k: 10,
      async: false,
    });
    invalid(tuneSchema, { targetRecall: 0.9, sample: 50, queries: Array.from({ length: 20 }, () => [1, 2]) }, 'sample');
    invalid(tuneSchema, { targetRecall: 0.9, queries: [[1, 2]] }, 'queries');
    expect(parseBody(tuneSchema, { targetRecall: 0.9, graph: { sample: 500, candidate: 'wide' } })).toMatchObject({
      graph: { sample: 500, candidate: 'wide' },
    });
    invalid(tuneSchema, { targetRecall: 0.9, graph: { sample: 10 } }, 'graph.sample');
    invalid(tuneSchema, { targetRecall: 0.9, graph: { m: 16 } }, 'graph.m');
  });

  it('tune: async and sample (held-out queries, 20–2000)', () => {
    expect(parseBody(tuneSchema, { targetRecall: 0.9, async: true, sample: 2000 })).toEqual({
      targetRecall: 0.9,
      k: 10,
      sample: 2000,
      async: true,
    });
    expect(parseBody(tuneSchema, { targetRecall: 0.9, sample: 20 }).sample).toBe(20);
    for (const sample of [19, 2001, 50.5, '100', null]) invalid(tuneSchema, { targetRecall: 0.9, sample }, 'sample');
    for (const async of ['true', 1, null]) invalid(tuneSchema, { targetRecall: 0.9, async }, 'async');
  });

  it("index builds: optional body, candidate settings validated like a collection's", () => {
    expect(parseBody(buildRequestSchema, {})).toEqual({});
    expect(parseBody(buildRequestSchema, { index: { m: 32, efConstruction: 400 }, candidate: 'wide' })).toEqual({
      index: { m: 32, efConstruction: 400 },
      candidate: 'wide',
    });
    invalid(buildRequestSchema, { index: { engine: 'flat', efConstruction: 100 } }, 'index.efConstruction', /hnsw/);
    invalid(buildRequestSchema, { index: { m: 1000 } }, 'index.m');
    invalid(buildRequestSchema, { params: {} }, 'params');
  });
});
