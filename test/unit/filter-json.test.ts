import { describe, expect, it } from 'vitest';
import type { FilterNode } from '../../shared/filter/ast.js';
import { FILTER_MAX_DEPTH } from '../../shared/filter/expr-parser.js';
import { parseFilterObject } from '../../shared/filter/json-parser.js';
import { cmp, ref, rowsMatching, syntaxError } from '../helpers/filter-fixtures.js';

const x = ref('x');

const selectRows = (filter: unknown): number[] => rowsMatching(parseFilterObject(filter));

describe('parseFilterObject: field operators', () => {
  it.each<[string, unknown, FilterNode]>([
    ['implicit $eq number', { x: 1 }, cmp(x, '==', 1)],
    ['implicit $eq string', { x: 'a' }, cmp(x, '==', 'a')],
    ['implicit $eq boolean', { x: false }, cmp(x, '==', false)],
    ['implicit null', { x: null }, { op: 'isNull', ref: x, negate: false }],
    ['$eq', { x: { $eq: 'a' } }, cmp(x, '==', 'a')],
    ['$eq null', { x: { $eq: null } }, { op: 'isNull', ref: x, negate: false }],
    ['$ne', { x: { $ne: 1 } }, { op: 'not', arg: cmp(x, '==', 1) }],
    ['$ne null', { x: { $ne: null } }, { op: 'isNull', ref: x, negate: true }],
    ['$gt', { x: { $gt: 1 } }, cmp(x, '>', 1)],
    ['$gte', { x: { $gte: -1.5 } }, cmp(x, '>=', -1.5)],
    ['$lt', { x: { $lt: 'm' } }, cmp(x, '<', 'm')],
    ['$lte', { x: { $lte: 0 } }, cmp(x, '<=', 0)],
    ['$in', { x: { $in: [1, 'a', true] } }, { op: 'in', ref: x, values: [1, 'a', true], negate: false }],
    ['$in empty', { x: { $in: [] } }, { op: 'in', ref: x, values: [], negate: false }],
    [
      '$in with null',
      { x: { $in: [1, null] } },
      {
        op: 'or',
        args: [
          { op: 'isNull', ref: x, negate: false },
          { op: 'in', ref: x, values: [1], negate: false },
        ],
      },
    ],
    ['$in only null', { x: { $in: [null] } }, { op: 'isNull', ref: x, negate: false }],
    ['$nin', { x: { $nin: ['a', 'b'] } }, { op: 'not', arg: { op: 'in', ref: x, values: ['a', 'b'], negate: false } }],
    ['$exists true', { x: { $exists: true } }, { op: 'isNull', ref: x, negate: true }],
    ['$exists false', { x: { $exists: false } }, { op: 'isNull', ref: x, negate: false }],
    ['field-level $not', { x: { $not: { $gt: 5 } } }, { op: 'not', arg: cmp(x, '>', 5) }],
    ['several operators', { x: { $gte: 1, $lt: 5 } }, { op: 'and', args: [cmp(x, '>=', 1), cmp(x, '<', 5)] }],
  ])('parses %s', (_label, filter, expected) => {
    // Prepare: table
    // Act
    const node = parseFilterObject(filter);
    // Assess
    expect(node).toEqual(expected);
  });
});

describe('parseFilterObject: logical operators and paths', () => {
  const a1 = cmp(ref('a'), '==', 1);
  const b2 = cmp(ref('b'), '==', 2);
  it.each<[string, unknown, FilterNode]>([
    ['several keys', { a: 1, b: 2 }, { op: 'and', args: [a1, b2] }],
    ['$and', { $and: [{ a: 1 }, { b: 2 }] }, { op: 'and', args: [a1, b2] }],
    ['$and of one', { $and: [{ a: 1 }] }, a1],
    ['$or', { $or: [{ a: 1 }, { b: 2 }] }, { op: 'or', args: [a1, b2] }],
    ['$not', { $not: { a: 1 } }, { op: 'not', arg: a1 }],
    ['$not of several keys', { $not: { a: 1, b: 2 } }, { op: 'not', arg: { op: 'and', args: [a1, b2] } }],
    [
      'nested',
      { $or: [{ a: 1, $not: { b: 2 } }, { $and: [{ a: 1 }, { b: 2 }] }] },
      {
        op: 'or',
        args: [
          { op: 'and', args: [a1, { op: 'not', arg: b2 }] },
          { op: 'and', args: [a1, b2] },
        ],
      },
    ],
    ['dotted path', { 'meta.a.b': 1 }, cmp(ref('meta', 'a', 'b'), '==', 1)],
    ['dotted path with index', { 'tags.0': 'x' }, cmp(ref('tags', 0), '==', 'x')],
    ['leading-zero step stays a key', { 'm.01': 1 }, cmp(ref('m', '01'), '==', 1)],
    ['keys with odd characters', { 'a b': 1 }, cmp(ref('a b'), '==', 1)],
  ])('parses %s', (_label, filter, expected) => {
    // Prepare: table
    // Act
    const node = parseFilterObject(filter);
    // Assess
    expect(node).toEqual(expected);
  });
});

describe('parseFilterObject: evaluation over a fixed catalogue', () => {
  it.each<[string, unknown, number[]]>([
    ['implicit $eq', { genre: 'jazz' }, [0, 1]],
    ['$eq', { genre: { $eq: 'soul' } }, [2, 3]],
    // Mongo: $ne also matches rows where the field is missing
    ['$ne', { genre: { $ne: 'jazz' } }, [2, 3, 4, 5, 6]],
    ['$gt', { year: { $gt: 1965 } }, [2, 6]],
    ['$gte', { year: { $gte: 1965 } }, [1, 2, 6]],
    ['$lt', { year: { $lt: 1965 } }, [0, 3]],
    ['$lte', { year: { $lte: 1965 } }, [0, 1, 3]],
    ['$gt string', { genre: { $gt: 'k' } }, [2, 3]],
    ['boolean', { live: true }, [3]],
    ['$in', { genre: { $in: ['soul', 'ambient'] } }, [2, 3, 4]],
    ['$in mixed types', { year: { $in: [1959, '1999'] } }, [0, 4]],
    ['$in with null', { rating: { $in: [4.9, null] } }, [0, 3, 4, 5]],
    ['$nin', { genre: { $nin: ['soul', 'ambient'] } }, [0, 1, 5, 6]],
    ['$exists true', { rating: { $exists: true } }, [0, 1, 2, 6]],
    ['$exists false', { rating: { $exists: false } }, [3, 4, 5]],
    ['null value', { rating: null }, [3, 4, 5]],
    ['$ne null', { rating: { $ne: null } }, [0, 1, 2, 6]],
    ['range on one field', { year: { $gte: 1960, $lt: 1970 } }, [1, 3]],
    ['dotted path', { 'meta.sales.us': { $gt: 1 } }, [0, 2]],
    ['array index path', { 'tags.0': 'modal' }, [0]],
    ['$and', { $and: [{ genre: 'soul' }, { year: { $lt: 1970 } }] }, [3]],
    ['$or', { $or: [{ genre: 'ambient' }, { live: true }] }, [3, 4]],
    ['$not', { $not: { genre: 'jazz' } }, [2, 3, 4, 5, 6]],
    ['field $not', { year: { $not: { $lt: 1965 } } }, [1, 2, 4, 5, 6]],
    ['several keys', { genre: 'jazz', year: { $gt: 1960 } }, [1]],
  ])('%s selects the expected rows', (_label, filter, expected) => {
    // Prepare: ROWS
    // Act
    const rows = selectRows(filter);
    // Assess
    expect(rows).toEqual(expected);
  });
});

describe('parseFilterObject: errors', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.$not = cyclic;
  const deep = (levels: number): Record<string, unknown> => {
    let f: Record<string, unknown> = { a: 1 };
    for (let i = 0; i < levels; i++) f = i % 2 === 0 ? { $not: f } : { $and: [f] };
    return f;
  };

  it.each<[string, unknown, string, string]>([
    ['a string', 'x == 1', 'filter', 'an object'],
    ['an array', [{ a: 1 }], 'filter', 'an object'],
    ['null', null, 'filter', 'an object'],
    ['a Date', new Date(0), 'filter', 'an object'],
    ['an empty object', {}, 'filter', 'a non-empty object'],
    ['unknown top-level operator', { $nor: [] }, 'filter.$nor', '$and, $or, $not or a field name'],
    ['$and not an array', { $and: { a: 1 } }, 'filter.$and', 'an array'],
    ['empty $and', { $and: [] }, 'filter.$and', 'a non-empty array'],
    ['empty $or', { $or: [] }, 'filter.$or', 'a non-empty array'],
    ['$or item not an object', { $or: [{ a: 1 }, 3] }, 'filter.$or[1]', 'an object'],
    ['empty object inside $and', { $and: [{ a: 1 }, {}] }, 'filter.$and[1]', 'a non-empty object'],
    ['$not not an object', { $not: [{ a: 1 }] }, 'filter.$not', 'an object'],
    [
      '$gt with an object',
      { $and: [{ a: 1 }, { price: { $gt: {} } }] },
      'filter.$and[1].price.$gt',
      'a number or string',
    ],
    ['$gt with an array', { price: { $gt: [1] } }, 'filter.price.$gt', 'a number or string'],
    ['$gte with null', { price: { $gte: null } }, 'filter.price.$gte', 'a number or string'],
    ['$lt with a boolean', { price: { $lt: true } }, 'filter.price.$lt', 'a number or string'],
    ['$lte with NaN', { price: { $lte: NaN } }, 'filter.price.$lte', 'a finite number'],
    ['$eq with an object', { a: { $eq: { b: 1 } } }, 'filter.a.$eq', 'a number, string, boolean or null'],
    ['$ne with an array', { a: { $ne: [1] } }, 'filter.a.$ne', 'a number, string, boolean or null'],
    ['$in with a non-array', { a: { $in: 'abc' } }, 'filter.a.$in', 'an array'],
    ['$nin with a non-array', { a: { $nin: 1 } }, 'filter.a.$nin', 'an array'],
    [
      '$in with an object element',
      { a: { $in: [1, { b: 2 }] } },
      'filter.a.$in[1]',
      'a number, string, boolean or null',
    ],
    ['$in with Infinity', { a: { $in: [Infinity] } }, 'filter.a.$in[0]', 'a finite number'],
    ['$exists with a string', { a: { $exists: 'yes' } }, 'filter.a.$exists', 'a boolean'],
    ['field $not with a literal', { a: { $not: 5 } }, 'filter.a.$not', 'an operator object'],
    ['unknown field operator', { a: { $regex: 'x' } }, 'filter.a.$regex', 'an operator such as $eq, $gt or $in'],
    ['nested field object', { a: { b: 1 } }, 'filter.a.b', 'an operator such as $eq, $gt or $in'],
    ['empty operator object', { a: {} }, 'filter.a', 'an operator such as $eq'],
    ['array value', { a: [1, 2] }, 'filter.a', 'a number, string, boolean or null or an operator object'],
    ['undefined value', { a: undefined }, 'filter.a', 'a number, string, boolean or null or an operator object'],
    ['NaN value', { a: NaN }, 'filter.a', 'a finite number'],
    ['empty path segment', { 'meta..a': 1 }, 'filter.meta..a', 'a field name such as "a" or "a.b"'],
    ['empty field name', { '': 1 }, 'filter[""]', 'a field name such as "a" or "a.b"'],
    [
      'cyclic object',
      cyclic,
      'filter' + '.$not'.repeat(FILTER_MAX_DEPTH + 1),
      `at most ${FILTER_MAX_DEPTH} levels of nesting`,
    ],
  ])('rejects %s, naming its JSON path', (_label, filter, path, expected) => {
    // Prepare: table
    // Act
    const err = syntaxError(() => parseFilterObject(filter));
    // Assess
    expect(err.position).toBe(-1);
    expect(err.expected).toBe(expected);
    expect(err.details).toEqual({ position: -1, expected, path });
    expect(err.field).toBe('filter');
  });

  it('accepts nesting up to the depth limit', () => {
    // Prepare
    const filter = deep(FILTER_MAX_DEPTH);
    // Act
    let node = parseFilterObject(filter);
    // Assess: single-item $and levels unwrap, so only the $not levels remain
    let nots = 0;
    while (node.op === 'not') {
      nots++;
      node = node.arg;
    }
    expect(nots).toBe(FILTER_MAX_DEPTH / 2);
    expect(node).toEqual(cmp(ref('a'), '==', 1));
  });

  it('rejects nesting deeper than the depth limit', () => {
    // Prepare
    const filter = deep(10_000);
    // Act
    const err = syntaxError(() => parseFilterObject(filter));
    // Assess
    expect(err.position).toBe(-1);
    expect(err.expected).toBe(`at most ${FILTER_MAX_DEPTH} levels of nesting`);
  });

  it('rejects a field-level $not chain deeper than the depth limit', () => {
    // Prepare
    let ops: Record<string, unknown> = { $gt: 1 };
    for (let i = 0; i < 200; i++) ops = { $not: ops };
    // Act
    const err = syntaxError(() => parseFilterObject({ a: ops }));
    // Assess
    expect(err.expected).toBe(`at most ${FILTER_MAX_DEPTH} levels of nesting`);
  });
});
