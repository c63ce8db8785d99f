import { describe, expect, it } from 'vitest';
import type { FieldRef, FilterNode, Literal } from '../../shared/filter/ast.js';
import { FILTER_MAX_DEPTH, FILTER_MAX_LENGTH, parseFilterExpression } from '../../shared/filter/expr-parser.js';
import { cmp, ref, rowsMatching, syntaxError } from '../helpers/filter-fixtures.js';

const x = ref('x');
const a1 = cmp(ref('a'), '==', 1);
const b2 = cmp(ref('b'), '==', 2);
const c3 = cmp(ref('c'), '==', 3);

const selectRows = (src: string): number[] => rowsMatching(parseFilterExpression(src));

describe('parseFilterExpression: comparisons', () => {
  it.each<[string, FilterNode]>([
    ['x == 1', cmp(x, '==', 1)],
    ['x != 1', cmp(x, '!=', 1)],
    ['x < 1', cmp(x, '<', 1)],
    ['x <= 1', cmp(x, '<=', 1)],
    ['x > 1', cmp(x, '>', 1)],
    ['x >= 1', cmp(x, '>=', 1)],
    ['x == "a"', cmp(x, '==', 'a')],
    ['x < "m"', cmp(x, '<', 'm')],
    ['x == true', cmp(x, '==', true)],
    ['x != FALSE', cmp(x, '!=', false)],
    ['x==1', cmp(x, '==', 1)],
    ['\n\tx\n>=\t-2\n', cmp(x, '>=', -2)],
  ])('parses %j', (src, expected) => {
    // Prepare: src and expected come from the table
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node).toEqual(expected);
  });

  it.each<[string, FilterNode]>([
    ['x == null', { op: 'isNull', ref: x, negate: false }],
    ['x != NULL', { op: 'isNull', ref: x, negate: true }],
    ['null == x', { op: 'isNull', ref: x, negate: false }],
  ])('reads equality with null in %j as a null test', (src, expected) => {
    // Prepare: table
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node).toEqual(expected);
  });
});

describe('parseFilterExpression: literals', () => {
  it.each<[string, Literal]>([
    ['x == 0', 0],
    ['x == 42', 42],
    ['x == -7', -7],
    ['x == 3.25', 3.25],
    ['x == -0.5', -0.5],
    ['x == .5', 0.5],
    ['x == 5.', 5],
    ['x == 1e3', 1000],
    ['x == 1.5E-2', 0.015],
    ['x == -2e+2', -200],
    ['x == true', true],
    ['x == True', true],
    ['x == false', false],
    ['x == fAlSe', false],
    ['x == ""', ''],
    ["x == ''", ''],
    ['x == "double"', 'double'],
    ["x == 'single'", 'single'],
    ['x == "it\'s"', "it's"],
    [String.raw`x == 'it\'s'`, "it's"],
    [String.raw`x == "say \"hi\""`, 'say "hi"'],
    [String.raw`x == "back\\slash"`, 'back\\slash'],
    [String.raw`x == "a\nb\tc\rd"`, 'a\nb\tc\rd'],
    [String.raw`x == "\b\f\/"`, '\b\f/'],
    [String.raw`x == "caf\u00e9 \u00E9"`, 'café é'],
    [String.raw`x == "\ud83d\ude00"`, '😀'],
    ['x == "emoji 😀 and\nnewline"', 'emoji 😀 and\nnewline'],
  ])('parses the literal in %j', (src, value) => {
    // Prepare: table
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node).toEqual(cmp(x, '==', value));
  });
});

describe('parseFilterExpression: field references', () => {
  it.each<[string, FieldRef]>([
    ['meta == 1', ref('meta')],
    ['_private_1 == 1', ref('_private_1')],
    ['meta["a"] == 1', ref('meta', 'a')],
    ['meta["a"]["b"] == 1', ref('meta', 'a', 'b')],
    ["meta['a'][0] == 1", ref('meta', 'a', 0)],
    ['meta[ "a" ][ 12 ] == 1', ref('meta', 'a', 12)],
    ['meta["with space.and dot"] == 1', ref('meta', 'with space.and dot')],
    [String.raw`meta["q\"uote"] == 1`, ref('meta', 'q"uote')],
    ['meta.a.b == 1', ref('meta', 'a', 'b')],
    ['meta.a[0].b == 1', ref('meta', 'a', 0, 'b')],
    ['tags.0 == 1', ref('tags', 0)],
    ['meta.in.like == 1', ref('meta', 'in', 'like')],
    ['android == 1', ref('android')],
    ['order == 1', ref('order')],
    ['notes == 1', ref('notes')],
    ['island == 1', ref('island')],
    ['nullable == 1', ref('nullable')],
  ])('parses the field in %j', (src, expected) => {
    // Prepare: table
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node).toEqual(cmp(expected, '==', 1));
  });

  it('reads meta["a"]["b"] and meta.a.b as the same path', () => {
    // Prepare
    const bracketed = 'meta["a"]["b"] > 2';
    const dotted = 'meta.a.b > 2';
    // Act
    const [left, right] = [parseFilterExpression(bracketed), parseFilterExpression(dotted)];
    // Assess
    expect(left).toEqual(right);
    expect(left).toEqual(cmp(ref('meta', 'a', 'b'), '>', 2));
  });
});

describe('parseFilterExpression: in, like, is null', () => {
  it.each<[string, FilterNode]>([
    ['x in [1, 2, 3]', { op: 'in', ref: x, values: [1, 2, 3], negate: false }],
    ['x IN ["a", \'b\', true, -1.5]', { op: 'in', ref: x, values: ['a', 'b', true, -1.5], negate: false }],
    ['x in []', { op: 'in', ref: x, values: [], negate: false }],
    ['x in[ 1 ]', { op: 'in', ref: x, values: [1], negate: false }],
    ['x not in [1]', { op: 'in', ref: x, values: [1], negate: true }],
    ['x NOT IN ["a"]', { op: 'in', ref: x, values: ['a'], negate: true }],
    ['x like "pre%"', { op: 'like', ref: x, pattern: 'pre%', negate: false }],
    ["x LIKE '_b%'", { op: 'like', ref: x, pattern: '_b%', negate: false }],
    [String.raw`x like "100\\%"`, { op: 'like', ref: x, pattern: '100\\%', negate: false }],
    ['x not like "%z"', { op: 'like', ref: x, pattern: '%z', negate: true }],
    ['x is null', { op: 'isNull', ref: x, negate: false }],
    ['x IS NULL', { op: 'isNull', ref: x, negate: false }],
    ['x is not null', { op: 'isNull', ref: x, negate: true }],
    ['meta["a"] Is Not Null', { op: 'isNull', ref: ref('meta', 'a'), negate: true }],
  ])('parses %j', (src, expected) => {
    // Prepare: table
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node).toEqual(expected);
  });
});

describe('parseFilterExpression: boolean structure and precedence', () => {
  it.each<[string, FilterNode]>([
    ['a == 1 and b == 2', { op: 'and', args: [a1, b2] }],
    ['a == 1 AND b == 2 && c == 3', { op: 'and', args: [a1, b2, c3] }],
    ['a == 1 or b == 2', { op: 'or', args: [a1, b2] }],
    ['a == 1 || b == 2 OR c == 3', { op: 'or', args: [a1, b2, c3] }],
    ['not a == 1', { op: 'not', arg: a1 }],
    ['NOT a == 1', { op: 'not', arg: a1 }],
    ['!a == 1', { op: 'not', arg: a1 }],
    ['!(a == 1)', { op: 'not', arg: a1 }],
    ['not not a == 1', { op: 'not', arg: { op: 'not', arg: a1 } }],
    ['((a == 1))', a1],
    // and binds tighter than or
    ['a == 1 or b == 2 and c == 3', { op: 'or', args: [a1, { op: 'and', args: [b2, c3] }] }],
    ['a == 1 and b == 2 or c == 3', { op: 'or', args: [{ op: 'and', args: [a1, b2] }, c3] }],
    // not binds tighter than and
    ['not a == 1 and b == 2', { op: 'and', args: [{ op: 'not', arg: a1 }, b2] }],
    ['!a == 1 || b == 2', { op: 'or', args: [{ op: 'not', arg: a1 }, b2] }],
    // parentheses override
    ['(a == 1 or b == 2) and c == 3', { op: 'and', args: [{ op: 'or', args: [a1, b2] }, c3] }],
    ['not (a == 1 or b == 2)', { op: 'not', arg: { op: 'or', args: [a1, b2] } }],
    [
      'a==1&&b==2||!(c==3)',
      {
        op: 'or',
        args: [
          { op: 'and', args: [a1, b2] },
          { op: 'not', arg: c3 },
        ],
      },
    ],
    // prefix `not` applies to the whole predicate, unlike the `not in` operator
    ['not x in [1]', { op: 'not', arg: { op: 'in', ref: x, values: [1], negate: false } }],
  ])('parses %j', (src, expected) => {
    // Prepare: table
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node).toEqual(expected);
  });
});

describe('parseFilterExpression: literal on the left and chained ranges', () => {
  const year = ref('year');
  it.each<[string, FilterNode]>([
    ['5 < x', cmp(x, '>', 5)],
    ['5 <= x', cmp(x, '>=', 5)],
    ['5 > x', cmp(x, '<', 5)],
    ['5 >= x', cmp(x, '<=', 5)],
    ['5 == x', cmp(x, '==', 5)],
    ['5 != x', cmp(x, '!=', 5)],
    ['"m" < x', cmp(x, '>', 'm')],
    ['true == x', cmp(x, '==', true)],
    ['-1 < meta["a"]', cmp(ref('meta', 'a'), '>', -1)],
  ])('flips %j so the field is on the left', (src, expected) => {
    // Prepare: table
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node).toEqual(expected);
  });

  it.each<[string, FilterNode]>([
    ['10 < year < 20', { op: 'and', args: [cmp(year, '>', 10), cmp(year, '<', 20)] }],
    ['10 <= year <= 20', { op: 'and', args: [cmp(year, '>=', 10), cmp(year, '<=', 20)] }],
    ['10 < year <= 20', { op: 'and', args: [cmp(year, '>', 10), cmp(year, '<=', 20)] }],
    ['20 > year > 10', { op: 'and', args: [cmp(year, '<', 20), cmp(year, '>', 10)] }],
    ['20 >= year >= 10', { op: 'and', args: [cmp(year, '<=', 20), cmp(year, '>=', 10)] }],
    ['"a" <= name < "b"', { op: 'and', args: [cmp(ref('name'), '>=', 'a'), cmp(ref('name'), '<', 'b')] }],
    [
      '1 < year < 2 and x == 1',
      { op: 'and', args: [{ op: 'and', args: [cmp(year, '>', 1), cmp(year, '<', 2)] }, cmp(x, '==', 1)] },
    ],
  ])('expands the chained range %j into an and', (src, expected) => {
    // Prepare: table
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node).toEqual(expected);
  });
});

describe('parseFilterExpression: evaluation over a fixed catalogue', () => {
  it.each<[string, number[]]>([
    ['genre == "jazz"', [0, 1]],
    ['genre != "jazz"', [2, 3, 4, 6]],
    ['year < 1965', [0, 3]],
    ['year <= 1965', [0, 1, 3]],
    ['year > 1965', [2, 6]],
    ['year >= 1971', [2, 6]],
    ['year == "1999"', [4]],
    ['live == true', [3]],
    ['live != true', [0, 1, 2]],
    ['live == false', [0, 1, 2]],
    ['rating > 4.75', [0, 1]],
    ['rating != 4.8', [0, 2]],
    ['genre in ["soul", "ambient"]', [2, 3, 4]],
    ['genre not in ["soul", "ambient"]', [0, 1, 6]],
    ['year in [1959, 1963, "1999"]', [0, 3, 4]],
    ['year not in [1959, 1963]', [1, 2, 6]],
    ['title like "Live%"', [3]],
    ['title like "%Blue"', [0]],
    ['title like "%o%"', [0, 1, 2, 3]],
    [String.raw`title like "100\\% %"`, [4]],
    [String.raw`title like "Jazz\\_%"`, [6]],
    ['genre like "_azz"', [0, 1, 6]],
    ['title not like "%o%"', [4, 6]],
    ['rating is null', [3, 4, 5]],
    ['rating is not null', [0, 1, 2, 6]],
    ['meta["label"] == "Impulse!"', [1]],
    ['meta.sales.us > 1', [0, 2]],
    ['meta["sales"]["us"] is null', [1, 3, 5, 6]],
    ['tags[0] == "modal"', [0]],
    ['tags.0 == "live"', [3]],
    ['tags[1] is not null', [0]],
    ['not genre == "jazz"', [2, 3, 4, 5, 6]],
    ['!(year < 1965)', [1, 2, 4, 5, 6]],
    ['genre == "soul" and year < 1970', [3]],
    ['genre == "ambient" || live == true', [3, 4]],
    ['1960 <= year < 1970', [1, 3]],
    ['1970 > year > 1960', [1, 3]],
    ['1965 < year', [2, 6]],
  ])('%j selects rows %j', (src, expected) => {
    // Prepare: ROWS
    // Act
    const rows = selectRows(src);
    // Assess
    expect(rows).toEqual(expected);
  });
});

describe('parseFilterExpression: errors', () => {
  it.each<[string, number, string]>([
    ['', 0, 'an expression'],
    [' \n\t ', 0, 'an expression'],
    ['flag', 4, 'a comparison operator, in, like or is'],
    ['flag and x == 1', 5, 'a comparison operator, in, like or is'],
    ['x = 1', 2, 'a comparison operator, in, like or is'],
    ['x @ 1', 2, 'a comparison operator, in, like or is'],
    ['a ! = 1', 2, 'a comparison operator, in, like or is'],
    ['x ==', 4, 'a literal'],
    ['x == y', 5, 'a literal'],
    ['1 < 2', 4, 'a field name'],
    ['"a" == "b"', 7, 'a field name'],
    ['5', 1, 'a comparison operator'],
    ['5 in [1]', 2, 'a comparison operator'],
    ['and == 1', 0, 'a field name or literal'],
    ['x == 1 or', 9, 'a field name or literal'],
    ['not', 3, 'a field name or literal'],
    ['!', 1, 'a field name or literal'],
    ['()', 1, 'a field name or literal'],
    ['x == 1 y == 2', 7, 'and, or or end of input'],
    ['x == 1)', 6, 'and, or or end of input'],
    ['x < 5 < 10', 6, 'and, or or end of input'],
    ['5 == x < 10', 7, 'and, or or end of input'],
    ['(x == 1', 7, 'and, or or ")"'],
    ['x == "abc', 9, 'a closing "'],
    ["x == 'abc", 9, "a closing '"],
    [String.raw`x == "a\qb"`, 7, 'a valid escape sequence'],
    [String.raw`x == "\u12G4"`, 6, '\\u followed by 4 hex digits'],
    ['x == 1e999', 5, 'a finite number'],
    ['x == -1e999', 5, 'a finite number'],
    ['x == 12abc', 5, 'a valid number'],
    ['x == 1.2.3', 5, 'a valid number'],
    ['x == -', 5, 'a literal'],
    ['x < true', 4, 'a number or string'],
    ['x >= null', 5, 'a number or string'],
    ['false > x', 0, 'a number or string'],
    ['x in [1, null]', 9, 'a number, string or boolean'],
    ['x in 1', 5, '"["'],
    ['x in (1, 2)', 5, '"["'],
    ['x in [1 2]', 8, '"," or "]"'],
    ['x in [1,]', 8, 'a literal'],
    ['x in [y]', 6, 'a literal'],
    ['x not == 1', 6, 'in or like'],
    ['x is 1', 5, 'null or not null'],
    ['x is not 1', 9, 'null'],
    ['x like 5', 7, 'a quoted pattern'],
    [String.raw`x like "ab\\"`, 7, 'a complete escape at the end of the pattern'],
    ['10 < x > 5', 7, '< or <= to continue the range'],
    ['10 > x <= 20', 7, '> or >= to continue the range'],
    ['meta[', 5, 'a quoted key or array index'],
    ['meta[-1] == 1', 5, 'a quoted key or array index'],
    ['meta[1x] == 1', 5, 'a quoted key or array index'],
    ['meta["a" == 1', 9, '"]"'],
    ['meta. == 1', 5, 'a key or array index after "."'],
    ['meta.-a == 1', 5, 'a key or array index after "."'],
  ])('rejects %j at position %i expecting %j', (src, position, expected) => {
    // Prepare: table
    // Act
    const err = syntaxError(() => parseFilterExpression(src));
    // Assess
    expect(err.position).toBe(position);
    expect(err.expected).toBe(expected);
    expect(err.code).toBe('FILTER_SYNTAX_ERROR');
    expect(err.statusCode).toBe(400);
    expect(err.details).toEqual({ position, expected });
  });

  it('accepts nesting up to the depth limit', () => {
    // Prepare
    const src = '('.repeat(FILTER_MAX_DEPTH) + 'x == 1' + ')'.repeat(FILTER_MAX_DEPTH);
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node).toEqual(cmp(x, '==', 1));
  });

  it.each<[string, string, number]>([
    ['parentheses', '('.repeat(FILTER_MAX_DEPTH + 1) + 'x == 1' + ')'.repeat(FILTER_MAX_DEPTH + 1), FILTER_MAX_DEPTH],
    ['not keywords', 'not '.repeat(FILTER_MAX_DEPTH + 1) + 'x == 1', FILTER_MAX_DEPTH * 4],
    ['bangs', '!'.repeat(FILTER_MAX_DEPTH + 1) + 'x == 1', FILTER_MAX_DEPTH],
    ['mixed', '(!'.repeat(40) + 'x == 1' + ')'.repeat(40), FILTER_MAX_DEPTH],
    ['unbalanced parentheses', '('.repeat(60_000), FILTER_MAX_DEPTH],
  ])('rejects nesting deeper than the limit (%s) at the first level too deep', (_label, src, position) => {
    // Prepare: table
    // Act
    const err = syntaxError(() => parseFilterExpression(src));
    // Assess
    expect(err.position).toBe(position);
    expect(err.expected).toBe(`at most ${FILTER_MAX_DEPTH} levels of nesting`);
  });

  it('rejects input longer than the length limit before parsing', () => {
    // Prepare
    const src = 'x == 1 or '.repeat(FILTER_MAX_LENGTH / 8) + 'x == 1';
    const started = performance.now();
    // Act
    const err = syntaxError(() => parseFilterExpression(src));
    // Assess
    expect(err.position).toBe(FILTER_MAX_LENGTH);
    expect(err.expected).toBe(`at most ${FILTER_MAX_LENGTH} characters`);
    expect(performance.now() - started).toBeLessThan(250);
  });

  it('parses a long flat expression just under the length limit', () => {
    // Prepare
    const clauses = Math.floor((FILTER_MAX_LENGTH - 6) / 10);
    const src = 'x == 1 or '.repeat(clauses) + 'x == 2';
    // Act
    const node = parseFilterExpression(src);
    // Assess
    expect(node.op).toBe('or');
    expect(node.op === 'or' && node.args.length).toBe(clauses + 1);
  });
});
