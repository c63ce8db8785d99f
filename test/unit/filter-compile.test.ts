import { describe, expect, it } from 'vitest';
import type { CmpOp, FieldRef, FilterNode, Literal } from '../../shared/filter/ast.js';
import {
  compileFilter,
  compileLike,
  filterFields,
  matchesMetadata,
  objectGetter,
  parseFilter,
  type ValueGetter,
} from '../../shared/filter/index.js';
import { ROWS, cmp, ref, rowsMatching, syntaxError } from '../helpers/filter-fixtures.js';

const v = ref('v');

/** One row per interesting value of field `v`; row 5 lacks `v` entirely. */
const VALUES: readonly unknown[] = [1, 2, 3, '2', null, undefined, NaN, true, false, -0, 'b', 'B', 'a'];
const V_ROWS: Record<string, unknown>[] = VALUES.map((value) => (value === undefined ? {} : { v: value }));

function selectV(node: FilterNode): unknown[] {
  const match = compileFilter(node, objectGetter(V_ROWS));
  return V_ROWS.map((_, i) => i)
    .filter(match)
    .map((i) => VALUES[i]);
}

function selectRows(filter: unknown): number[] {
  const node = parseFilter(filter);
  if (node === undefined) throw new Error('no filter');
  return rowsMatching(node);
}

describe('compileFilter: comparisons', () => {
  it.each<[CmpOp, Literal, unknown[]]>([
    ['==', 2, [2]],
    ['!=', 2, [1, 3, -0]],
    ['<', 2, [1, -0]],
    ['<=', 2, [1, 2, -0]],
    ['>', 2, [3]],
    ['>=', 2, [2, 3]],
    ['==', 0, [-0]],
    ['==', '2', ['2']],
    ['!=', 'b', ['2', 'B', 'a']],
    // code-unit order: uppercase sorts before lowercase, digits before both
    ['<', 'a', ['2', 'B']],
    ['<=', 'a', ['2', 'B', 'a']],
    ['>', 'B', ['b', 'a']],
    ['>=', 'b', ['b']],
    ['==', true, [true]],
    ['!=', true, [false]],
    ['==', false, [false]],
    ['!=', false, [true]],
    ['<', true, []],
    ['>=', false, []],
    ['==', null, []],
    ['!=', null, []],
    ['==', NaN, []],
    ['!=', NaN, []],
    ['<', NaN, []],
  ])('v %s %j matches only same-typed, present, non-NaN values', (op, value, expected) => {
    // Prepare
    const node = cmp(v, op, value);
    // Act
    const matched = selectV(node);
    // Assess
    expect(matched).toEqual(expected);
  });

  it('orders strings by UTF-16 code unit, not code point', () => {
    // Prepare: U+1F600 is stored as surrogates D83D DE00, which sort below U+FFFF
    const rows = [{ s: '😀' }, { s: '\uffff' }];
    const node = cmp(ref('s'), '<', '\uffff');
    // Act
    const match = compileFilter(node, objectGetter(rows));
    // Assess
    expect([match(0), match(1)]).toEqual([true, false]);
  });
});

describe('compileFilter: in', () => {
  it.each<[Literal[], boolean, unknown[]]>([
    [[1, 3], false, [1, 3]],
    [[1, 3], true, [2, -0]],
    [['b', 'a'], false, ['b', 'a']],
    [['b', 'a'], true, ['2', 'B']],
    [[2, '2'], false, [2, '2']],
    [[2, '2'], true, [1, 3, -0, 'b', 'B', 'a']],
    [[true], false, [true]],
    [[true], true, [false]],
    [[0], false, [-0]],
    [[NaN], false, []],
    [[NaN], true, [1, 2, 3, -0]],
    [[null], false, []],
    [[], false, []],
    [[], true, []],
  ])('v in %j (negate=%s) follows the type rules', (values, negate, expected) => {
    // Prepare
    const node: FilterNode = { op: 'in', ref: v, values, negate };
    // Act
    const matched = selectV(node);
    // Assess
    expect(matched).toEqual(expected);
  });
});

describe('compileFilter: like', () => {
  it.each<[string, string, boolean]>([
    ['abc', 'abc', true],
    ['abc', 'abcd', false],
    ['', '', true],
    ['', 'a', false],
    ['%', '', true],
    ['%', 'anything', true],
    ['%%', 'x', true],
    ['a%', 'abc', true],
    ['a%', 'bac', false],
    ['%c', 'abc', true],
    ['%c', 'cab', false],
    ['%b%', 'abc', true],
    ['%b%', 'acd', false],
    ['a%c', 'ac', true],
    ['a%c', 'abbbc', true],
    ['a%c', 'abcd', false],
    ['a%b%c', 'axxbyyc', true],
    ['a%b%c', 'axxcyyb', false],
    ['%aa%aa', 'aaa', false],
    ['%aa%aa', 'aaaa', true],
    ['a%a', 'a', false],
    ['_', 'a', true],
    ['_', '', false],
    ['_', 'ab', false],
    ['a_c', 'abc', true],
    ['a_c', 'ac', false],
    ['a_c', 'a😀c', true],
    ['___', 'a\nb', true],
    ['a%', 'a\nb', true],
    ['%a_c%', 'xxabcxx', true],
    ['%a_c%', 'xxacxx', false],
    ['%_z', 'yz', true],
    ['%_z', 'z', false],
    ['_%_', 'ab', true],
    ['_%_', 'a', false],
    ['x_%_y', 'x12y', true],
    ['x_%_y', 'x1y', false],
    ['100\\%', '100%', true],
    ['100\\%', '1000', false],
    ['a\\_c', 'a_c', true],
    ['a\\_c', 'abc', false],
    ['a\\\\b', 'a\\b', true],
    ['a\\', 'a\\', true],
    ['\\x', 'x', true],
    ['a.c', 'abc', false],
    ['a.c', 'a.c', true],
    ['(x)+[y]{2}|$^/', '(x)+[y]{2}|$^/', true],
    ['%.*%', 'abc', false],
    ['_.%', 'a.b', true],
    ['-_-', '-x-', true],
  ])('pattern %j on %j is %s', (pattern, s, expected) => {
    // Prepare
    const match = compileLike(pattern);
    // Act
    const result = match(s);
    // Assess
    expect(result).toBe(expected);
  });

  it('matches like only against strings, and not like only strings that fail', () => {
    // Prepare
    const like: FilterNode = { op: 'like', ref: v, pattern: '%', negate: false };
    const notLike: FilterNode = { op: 'like', ref: v, pattern: 'b', negate: true };
    // Act
    const [liked, notLiked] = [selectV(like), selectV(notLike)];
    // Assess
    expect(liked).toEqual(['2', 'b', 'B', 'a']);
    expect(notLiked).toEqual(['2', 'B', 'a']);
  });

  it('stays linear on patterns that make backtracking regexes explode', () => {
    // Prepare
    const match = compileLike('%a%a%a%a%a%a%a%a%a%a%a%a%b');
    const underscored = compileLike('%a_a%a_a%a_a%a_a%a_a%b');
    const s = 'a'.repeat(100_000);
    const started = performance.now();
    // Act
    const results = [match(s), underscored(s)];
    // Assess
    expect(results).toEqual([false, false]);
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe('compileFilter: null tests, constants and combinators', () => {
  it('treats missing and null as null, and nothing else', () => {
    // Prepare
    const isNull: FilterNode = { op: 'isNull', ref: v, negate: false };
    const notNull: FilterNode = { op: 'isNull', ref: v, negate: true };
    // Act
    const [nulls, present] = [selectV(isNull), selectV(notNull)];
    // Assess
    expect(nulls).toEqual([null, undefined]);
    expect(present).toEqual(VALUES.filter((x) => x !== null && x !== undefined));
  });

  it.each<[string, FilterNode, readonly unknown[]]>([
    ['const true', { op: 'const', value: true }, VALUES],
    ['const false', { op: 'const', value: false }, []],
    ['empty and', { op: 'and', args: [] }, VALUES],
    ['empty or', { op: 'or', args: [] }, []],
    ['and with const false', { op: 'and', args: [cmp(v, '==', 1), { op: 'const', value: false }] }, []],
    ['and with const true', { op: 'and', args: [cmp(v, '==', 1), { op: 'const', value: true }] }, [1]],
    ['or with const true', { op: 'or', args: [cmp(v, '==', 1), { op: 'const', value: true }] }, VALUES],
    ['or with const false', { op: 'or', args: [cmp(v, '==', 1), { op: 'const', value: false }] }, [1]],
    ['not const', { op: 'not', arg: { op: 'const', value: true } }, []],
    ['not', { op: 'not', arg: cmp(v, '>', 1) }, [1, '2', null, undefined, NaN, true, false, -0, 'b', 'B', 'a']],
    [
      'and of four',
      { op: 'and', args: [cmp(v, '>', 0), cmp(v, '<', 4), cmp(v, '!=', 2), { op: 'not', arg: cmp(v, '==', 3) }] },
      [1],
    ],
    [
      'or of four',
      {
        op: 'or',
        args: [cmp(v, '==', 1), cmp(v, '==', 'a'), cmp(v, '==', true), { op: 'isNull', ref: v, negate: false }],
      },
      [1, null, undefined, true, 'a'],
    ],
  ])('%s', (_label, node, expected) => {
    // Prepare: table
    // Act
    const matched = selectV(node);
    // Assess
    expect(matched).toEqual(expected);
  });
});

describe('compileFilter: compile-once contract', () => {
  it('asks the getter once per distinct field path, at compile time only', () => {
    // Prepare
    const asked: string[] = [];
    const inner = objectGetter(ROWS);
    const getter: ValueGetter = (r) => {
      asked.push(JSON.stringify(r));
      return inner(r);
    };
    const node = parseFilter(
      '1960 < year < 1970 or (year == 1971 and meta.a == 1 and meta["a"] != 2 and meta.b is null)',
    );
    if (node === undefined) throw new Error('no filter');
    // Act
    const match = compileFilter(node, getter);
    const askedAtCompile = asked.length;
    ROWS.forEach((_, i) => match(i));
    // Assess
    expect(askedAtCompile).toBe(3);
    expect(asked.length).toBe(3);
  });

  it('evaluates 100k rows quickly once compiled', () => {
    // Prepare
    const rows = Array.from({ length: 100_000 }, (_, i) => ({ n: i, s: `k${i % 100}`, b: i % 3 === 0 }));
    const node = parseFilter('n >= 1000 and s in ["k1", "k2", "k3"] and b == true and s like "k_"');
    if (node === undefined) throw new Error('no filter');
    const match = compileFilter(node, objectGetter(rows));
    const started = performance.now();
    // Act
    let count = 0;
    for (let i = 0; i < rows.length; i++) if (match(i)) count++;
    // Assess
    expect(count).toBe(rows.filter((r) => r.n >= 1000 && ['k1', 'k2', 'k3'].includes(r.s) && r.b).length);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('objectGetter', () => {
  const rows: (Record<string, unknown> | undefined)[] = [
    { a: { b: [10, { c: 'deep' }] }, o: { '0': 'zero', x: 1 }, s: 'str', arr: [1, 2] },
    undefined,
    { a: null },
  ];

  it.each<[string, FieldRef, number, unknown]>([
    ['a top-level field', ref('s'), 0, 'str'],
    ['an object key then array index', ref('a', 'b', 0), 0, 10],
    ['through an array into an object', ref('a', 'b', 1, 'c'), 0, 'deep'],
    ['a numeric step into an object key', ref('o', 0), 0, 'zero'],
    ['a string step into an array', ref('arr', '0'), 0, undefined],
    ['an index past the end', ref('arr', 2), 0, undefined],
    ['a negative index', ref('arr', -1), 0, undefined],
    ['a fractional index', ref('arr', 0.5), 0, undefined],
    ['a step into a string', ref('s', 0), 0, undefined],
    ['a step into a number', ref('o', 'x', 'y'), 0, undefined],
    ['a missing field', ref('nope'), 0, undefined],
    ['an inherited property', ref('constructor'), 0, undefined],
    ['an inherited nested property', ref('o', 'toString'), 0, undefined],
    ['__proto__', ref('__proto__'), 0, undefined],
    ['an array length', ref('arr', 'length'), 0, undefined],
    ['an undefined row', ref('s'), 1, undefined],
    ['a row past the end', ref('s'), 9, undefined],
    ['a step into null', ref('a', 'b'), 2, undefined],
  ])('reads %s', (_label, r, row, expected) => {
    // Prepare
    const get = objectGetter(rows)(r);
    // Act
    const value = get(row);
    // Assess
    expect(value).toBe(expected);
  });
});

describe('matchesMetadata', () => {
  it.each<[string, Record<string, unknown> | undefined, boolean]>([
    ['a matching object', { genre: 'jazz', year: 1965 }, true],
    ['a non-matching object', { genre: 'jazz', year: 1955 }, false],
    ['an object without the fields', {}, false],
    ['no metadata at all', undefined, false],
  ])('evaluates %s', (_label, metadata, expected) => {
    // Prepare
    const node = parseFilter({ genre: 'jazz', year: { $gt: 1960 } });
    if (node === undefined) throw new Error('no filter');
    // Act
    const result = matchesMetadata(node, metadata);
    // Assess
    expect(result).toBe(expected);
  });
});

describe('filterFields', () => {
  it.each<[unknown, string[]]>([
    ['a == 1', ['a']],
    ['a == 1 and (b in [1] or not c like "x") and a > 0', ['a', 'b', 'c']],
    ['meta["x"] is null or meta.y == 2 or tags[0] == "t"', ['meta', 'tags']],
    [{ $or: [{ 'm.a': 1 }, { z: { $exists: true } }], k: { $nin: [1] } }, ['m', 'z', 'k']],
  ])('lists the top-level fields of %j', (filter, expected) => {
    // Prepare
    const node = parseFilter(filter);
    if (node === undefined) throw new Error('no filter');
    // Act
    const fields = filterFields(node);
    // Assess
    expect(fields).toEqual(expected);
  });

  it('lists nothing for a constant', () => {
    // Prepare
    const node: FilterNode = { op: 'const', value: true };
    // Act
    const fields = filterFields(node);
    // Assess
    expect(fields).toEqual([]);
  });
});

describe('parseFilter', () => {
  it.each<[unknown]>([[undefined], [null]])('reads %j as no filter', (input) => {
    // Prepare: table
    // Act
    const node = parseFilter(input);
    // Assess
    expect(node).toBeUndefined();
  });

  it('parses strings as expressions and objects as JSON filters', () => {
    // Prepare
    const expected = cmp(ref('a'), '==', 1);
    // Act
    const [fromString, fromObject, fromNullProto] = [
      parseFilter('a == 1'),
      parseFilter({ a: 1 }),
      parseFilter(Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 })),
    ];
    // Assess
    expect(fromString).toEqual(expected);
    expect(fromObject).toEqual(expected);
    expect(fromNullProto).toEqual(expected);
  });

  it.each<[string, unknown]>([
    ['a number', 1],
    ['a boolean', true],
    ['an array', [{ a: 1 }]],
    ['a function', () => true],
    ['a Map', new Map([['a', 1]])],
  ])('rejects %s', (_label, input) => {
    // Prepare: table
    // Act
    const err = syntaxError(() => parseFilter(input));
    // Assess
    expect(err.position).toBe(-1);
    expect(err.expected).toBe('a string or an object');
  });

  it('rejects an empty string rather than reading it as no filter', () => {
    // Prepare
    const input = '';
    // Act
    const err = syntaxError(() => parseFilter(input));
    // Assess
    expect(err.position).toBe(0);
    expect(err.expected).toBe('an expression');
  });
});

describe('front-end equivalence: expression and JSON select the same rows', () => {
  it.each<[string, unknown]>([
    ['genre == "jazz"', { genre: 'jazz' }],
    ['genre == "jazz"', { genre: { $eq: 'jazz' } }],
    ['year > 1960 and year <= 1971', { year: { $gt: 1960, $lte: 1971 } }],
    ['1960 < year <= 1971', { year: { $gt: 1960, $lte: 1971 } }],
    ['1971 >= year and 1960 < year', { $and: [{ year: { $lte: 1971 } }, { year: { $gt: 1960 } }] }],
    ['year < 1965', { year: { $lt: 1965 } }],
    ['year >= 1965', { year: { $gte: 1965 } }],
    ['live == true', { live: true }],
    ['genre in ["soul", "ambient"]', { genre: { $in: ['soul', 'ambient'] } }],
    ['not (genre in ["soul", "ambient"])', { genre: { $nin: ['soul', 'ambient'] } }],
    ['not genre == "jazz"', { genre: { $ne: 'jazz' } }],
    ['rating is null', { rating: null }],
    ['rating is null', { rating: { $exists: false } }],
    ['rating is not null', { rating: { $exists: true } }],
    ['rating != null', { rating: { $ne: null } }],
    ['rating is null or rating == 4.9', { rating: { $in: [4.9, null] } }],
    ['meta["sales"]["us"] > 1', { 'meta.sales.us': { $gt: 1 } }],
    ['meta.label == "Warp"', { 'meta.label': 'Warp' }],
    ['tags[0] == "modal"', { 'tags.0': 'modal' }],
    [
      '(genre == "soul" and year < 1970) or live == true',
      { $or: [{ genre: 'soul', year: { $lt: 1970 } }, { live: true }] },
    ],
    ['not (genre == "jazz" or year >= 1970)', { $not: { $or: [{ genre: 'jazz' }, { year: { $gte: 1970 } }] } }],
    ['not year < 1965', { year: { $not: { $lt: 1965 } } }],
  ])('%j ≡ %j', (expr, json) => {
    // Prepare: table
    // Act
    const [fromExpr, fromJson] = [selectRows(expr), selectRows(json)];
    // Assess
    expect(fromExpr).toEqual(fromJson);
    expect(fromExpr.length).toBeGreaterThan(0);
    expect(fromExpr.length).toBeLessThan(ROWS.length);
  });

  it('keeps SQL-style != apart from Mongo-style $ne on rows missing the field', () => {
    // Prepare
    const sql = 'genre != "jazz"';
    const mongo = { genre: { $ne: 'jazz' } };
    // Act
    const [fromSql, fromMongo] = [selectRows(sql), selectRows(mongo)];
    // Assess: row 5 has no genre
    expect(fromSql).toEqual([2, 3, 4, 6]);
    expect(fromMongo).toEqual([2, 3, 4, 5, 6]);
  });
});
