import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FilterSyntaxError, ValidationError } from '../../shared/errors.js';
import type { CmpOp, FieldRef, FilterNode, Literal } from '../../shared/filter/ast.js';
import {
  compileFilter,
  compileLike,
  objectGetter,
  parseFilter,
  parseFilterExpression,
  parseFilterObject,
} from '../../shared/filter/index.js';

const RUNS = { seed: 42, numRuns: 2000 } as const;
/** Generous per-call budget (shared CI machines pause): inputs are tiny, so a real blow-up takes far longer. */
const MAX_CALL_MS = 500;

const FIELDS = ['a', 'b', 'c', 'meta'] as const;
const KEY_POOL = ['x', 'y', 'in', 'with space', 'q"uote', "it's", 'back\\slash', '😀'] as const;
const CMP_OPS: readonly CmpOp[] = ['==', '!=', '<', '<=', '>', '>='];

// ---------------------------------------------------------------------------
// Helpers

/** Runs `fn`, requiring it to finish fast and to fail, if at all, only with our error types. */
function parsesOrRejectsCleanly(fn: () => FilterNode | undefined): FilterNode | undefined {
  const started = performance.now();
  let node: FilterNode | undefined;
  try {
    node = fn();
  } catch (e) {
    if (!(e instanceof FilterSyntaxError) && !(e instanceof ValidationError)) throw e;
    node = undefined;
  }
  expect(performance.now() - started).toBeLessThan(MAX_CALL_MS);
  return node;
}

/** Compiling and running a parsed filter must not throw either, whatever the row holds. */
function evaluatesCleanly(node: FilterNode): void {
  const rows = [{}, { a: 1, b: 'x', c: null, meta: { x: [1, 'y'] } }, { a: NaN, b: true, meta: 'str' }];
  const match = compileFilter(node, objectGetter(rows));
  for (let i = 0; i < rows.length; i++) expect(typeof match(i)).toBe('boolean');
}

const FLIP: Record<CmpOp, CmpOp> = { '==': '==', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

interface PrintStyle {
  upper: boolean;
  symbols: boolean;
  flip: boolean;
  dots: boolean;
  singleQuotes: boolean;
}

function printString(s: string, style: PrintStyle): string {
  if (!style.singleQuotes) return JSON.stringify(s);
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function printLiteral(v: Literal, style: PrintStyle): string {
  if (typeof v === 'string') return printString(v, style);
  if (typeof v === 'boolean') return style.upper ? String(v).toUpperCase() : String(v);
  return String(v);
}

function printRef(r: FieldRef, style: PrintStyle): string {
  return (
    r.field +
    r.path
      .map((p) => {
        if (typeof p === 'number') return style.dots ? `.${p}` : `[${p}]`;
        if (style.dots && /^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) return `.${p}`;
        return `[${printString(p, style)}]`;
      })
      .join('')
  );
}

/** Prints an AST as a fully parenthesised expression; style varies the surface syntax only. */
function printExpr(node: FilterNode, style: PrintStyle): string {
  const kw = (w: string): string => (style.upper ? w.toUpperCase() : w);
  switch (node.op) {
    case 'and':
      return `(${node.args.map((a) => printExpr(a, style)).join(style.symbols ? ' && ' : ` ${kw('and')} `)})`;
    case 'or':
      return `(${node.args.map((a) => printExpr(a, style)).join(style.symbols ? ' || ' : ` ${kw('or')} `)})`;
    case 'not':
      return style.symbols ? `!(${printExpr(node.arg, style)})` : `${kw('not')} (${printExpr(node.arg, style)})`;
    case 'cmp':
      return style.flip
        ? `${printLiteral(node.value, style)} ${FLIP[node.cmp]} ${printRef(node.ref, style)}`
        : `${printRef(node.ref, style)} ${node.cmp} ${printLiteral(node.value, style)}`;
    case 'in':
      return `${printRef(node.ref, style)} ${node.negate ? `${kw('not')} ` : ''}${kw('in')} [${node.values
        .map((v) => printLiteral(v, style))
        .join(', ')}]`;
    case 'like':
      return (
        `${printRef(node.ref, style)} ${node.negate ? `${kw('not')} ` : ''}` +
        `${kw('like')} ${printString(node.pattern, style)}`
      );
    case 'isNull':
      return `${printRef(node.ref, style)} ${kw('is')} ${node.negate ? `${kw('not')} ` : ''}${kw('null')}`;
    case 'const':
      throw new Error('the expression syntax has no constants');
  }
}

// ---------------------------------------------------------------------------
// Reference semantics: a deliberately naive tree-walking interpreter of ast.ts

function refValue(row: Record<string, unknown> | undefined, r: FieldRef): unknown {
  let v: unknown = row !== undefined && Object.hasOwn(row, r.field) ? row[r.field] : undefined;
  for (const p of r.path) {
    if (Array.isArray(v)) v = typeof p === 'number' && p < v.length ? v[p] : undefined;
    else if (typeof v === 'object' && v !== null && Object.hasOwn(v, String(p)))
      v = (v as Record<string, unknown>)[String(p)];
    else v = undefined;
  }
  return v;
}

function likeRegExp(pattern: string): RegExp {
  let src = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '%') src += '.*';
    else if (c === '_') src += '.';
    else {
      const lit = c === '\\' && i + 1 < pattern.length ? pattern[++i] : c;
      src += lit.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
    }
  }
  return new RegExp(`^${src}$`, 'su');
}

function scalarOk(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && !Number.isNaN(v));
}

function referenceEval(node: FilterNode, row: Record<string, unknown> | undefined): boolean {
  switch (node.op) {
    case 'and':
      return node.args.every((a) => referenceEval(a, row));
    case 'or':
      return node.args.some((a) => referenceEval(a, row));
    case 'not':
      return !referenceEval(node.arg, row);
    case 'const':
      return node.value;
    case 'isNull': {
      const v = refValue(row, node.ref);
      return (v === undefined || v === null) !== node.negate;
    }
    case 'like': {
      const v = refValue(row, node.ref);
      return typeof v === 'string' && likeRegExp(node.pattern).test(v) !== node.negate;
    }
    case 'in': {
      const v = refValue(row, node.ref);
      if (!scalarOk(v)) return false;
      const sameType = node.values.filter((x) => typeof x === typeof v);
      if (sameType.length === 0) return false;
      return sameType.includes(v) !== node.negate;
    }
    case 'cmp': {
      const v = refValue(row, node.ref);
      const lit = node.value;
      if (!scalarOk(v) || lit === null || typeof v !== typeof lit) return false;
      if (typeof lit === 'number' && Number.isNaN(lit)) return false;
      if (typeof lit === 'boolean' && node.cmp !== '==' && node.cmp !== '!=') return false;
      const [l, r] = [v as number | string, lit as number | string];
      switch (node.cmp) {
        case '==':
          return l === r;
        case '!=':
          return l !== r;
        case '<':
          return l < r;
        case '<=':
          return l <= r;
        case '>':
          return l > r;
        case '>=':
          return l >= r;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Arbitraries

const pathKey = fc.oneof(fc.constantFrom(...KEY_POOL), fc.string({ maxLength: 4 }), fc.nat(3));
const refArb: fc.Arbitrary<FieldRef> = fc.record({
  field: fc.constantFrom(...FIELDS),
  path: fc.array(pathKey, { maxLength: 2 }),
});
/** -0 prints as "0"; normalise it so printed-and-parsed ASTs compare structurally. */
const numberArb = fc
  .oneof(fc.integer({ min: -3, max: 3 }), fc.double({ noNaN: true, noDefaultInfinity: true }))
  .map((n) => (Object.is(n, -0) ? 0 : n));
const stringArb = fc.oneof(
  fc.constantFrom('', 'a', 'b', 'ab', 'A', 'x%'),
  fc.string({ maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 4 }),
);
const scalarArb: fc.Arbitrary<string | number | boolean> = fc.oneof(numberArb, stringArb, fc.boolean());
const patternArb = fc
  .array(fc.constantFrom('a', 'b', 'ab', '%', '_', '\\%', '\\_', '\\\\', '.', '*', '(', '😀', '\n'), { maxLength: 6 })
  .map((parts) => parts.join(''));

const cmpArb: fc.Arbitrary<FilterNode> = fc
  .tuple(refArb, fc.constantFrom(...CMP_OPS), scalarArb)
  .map(([ref, op, value]) => ({
    op: 'cmp' as const,
    cmp: typeof value === 'boolean' && op !== '==' && op !== '!=' ? ('==' as const) : op,
    ref,
    value,
  }));
const inArb: fc.Arbitrary<FilterNode> = fc
  .tuple(refArb, fc.array(scalarArb, { maxLength: 4 }), fc.boolean())
  .map(([ref, values, negate]) => ({ op: 'in' as const, ref, values, negate }));
const likeArb: fc.Arbitrary<FilterNode> = fc
  .tuple(refArb, patternArb, fc.boolean())
  .map(([ref, pattern, negate]) => ({ op: 'like' as const, ref, pattern, negate }));
const isNullArb: fc.Arbitrary<FilterNode> = fc
  .tuple(refArb, fc.boolean())
  .map(([ref, negate]) => ({ op: 'isNull' as const, ref, negate }));

const { node: astArb } = fc.letrec<{ node: FilterNode }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 5, depthSize: 'small' },
    cmpArb,
    inArb,
    likeArb,
    isNullArb,
    fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((args): FilterNode => ({ op: 'and', args })),
    fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((args): FilterNode => ({ op: 'or', args })),
    tie('node').map((arg): FilterNode => ({ op: 'not', arg })),
  ),
}));

const styleArb: fc.Arbitrary<PrintStyle> = fc.record({
  upper: fc.boolean(),
  symbols: fc.boolean(),
  flip: fc.boolean(),
  dots: fc.boolean(),
  singleQuotes: fc.boolean(),
});

const { value: metaValueArb } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 3, depthSize: 'small' },
    scalarArb,
    fc.constantFrom(null, NaN, -0),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('x', 'y', 'in', 'with space', '0', '1'), tie('value'), { maxKeys: 3 }),
  ),
}));
const rowArb: fc.Arbitrary<Record<string, unknown>> = fc.record(
  { a: metaValueArb, b: metaValueArb, c: metaValueArb, meta: metaValueArb },
  { requiredKeys: [] },
);

/** Token soup: reaches deep into the grammar far more often than uniformly random text. */
const exprSoupArb = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'a',
        'meta',
        '==',
        '!=',
        '<',
        '<=',
        '>',
        '>=',
        '=',
        '!',
        '&&',
        '||',
        '(',
        ')',
        '[',
        ']',
        ',',
        '.',
        'and',
        'OR',
        'not',
        'in',
        'like',
        'is',
        'null',
        'true',
        'False',
        '1',
        '-',
        '2.5',
        '1e',
        '1e9999',
        '"x"',
        "'y'",
        '"',
        "'",
        '\\',
        '\\u',
        '\\u00',
        '%',
        '_',
        ' ',
        '\n',
        '😀',
        '\u0000',
      ),
      fc.string({ maxLength: 3 }),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

const jsonKeyArb = fc.constantFrom(
  '$and',
  '$or',
  '$not',
  '$eq',
  '$ne',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$in',
  '$nin',
  '$exists',
  '$regex',
  'a',
  'b.c',
  'meta.0',
  '',
  '.',
  'a..b',
  'constructor',
  'toString',
);
const { obj: filterishArb } = fc.letrec<{ value: unknown; obj: Record<string, unknown> }>((tie) => ({
  value: fc.oneof(
    { maxDepth: 5, depthSize: 'small' },
    fc.jsonValue({ maxDepth: 1 }),
    fc.constantFrom(NaN, Infinity, undefined, -0),
    tie('obj'),
    fc.array(tie('value'), { maxLength: 3 }),
  ),
  obj: fc.dictionary(jsonKeyArb, tie('value'), { maxKeys: 3 }),
}));

// ---------------------------------------------------------------------------

describe('parseFilterExpression fuzz', () => {
  it.each<[string, fc.Arbitrary<string>]>([
    ['arbitrary text', fc.string({ maxLength: 200 })],
    ['arbitrary UTF-16', fc.string({ unit: 'binary', maxLength: 200 })],
    ['token soup', exprSoupArb],
    ['JSON text', fc.jsonValue().map((v) => JSON.stringify(v))],
  ])('never throws anything but filter errors on %s, and returns quickly', (_label, arb) => {
    // Prepare: arb
    // Act + Assess
    fc.assert(
      fc.property(arb, (src) => {
        let thrown: unknown;
        const node = parsesOrRejectsCleanly(() => {
          try {
            return parseFilterExpression(src);
          } catch (e) {
            thrown = e;
            throw e;
          }
        });
        if (thrown instanceof FilterSyntaxError) {
          expect(thrown.position).toBeGreaterThanOrEqual(0);
          expect(thrown.position).toBeLessThanOrEqual(src.length);
          expect(thrown.expected.length).toBeGreaterThan(0);
        }
        if (node !== undefined) evaluatesCleanly(node);
      }),
      RUNS,
    );
  });
});

describe('parseFilterObject fuzz', () => {
  it.each<[string, fc.Arbitrary<unknown>]>([
    ['arbitrary JSON', fc.jsonValue()],
    ['filter-shaped objects', filterishArb],
    [
      'arbitrary JS values',
      fc.anything({ withNullPrototype: true, withBoxedValues: true, withMap: true, withSet: true, withDate: true }),
    ],
  ])('never throws anything but filter errors on %s, and returns quickly', (_label, arb) => {
    // Prepare: arb
    // Act + Assess
    fc.assert(
      fc.property(arb, (input) => {
        let thrown: unknown;
        const node = parsesOrRejectsCleanly(() => {
          try {
            return parseFilterObject(input);
          } catch (e) {
            thrown = e;
            throw e;
          }
        });
        if (thrown instanceof FilterSyntaxError) {
          expect(thrown.position).toBe(-1);
          expect(String(thrown.details?.path)).toMatch(/^filter/);
        }
        if (node !== undefined) evaluatesCleanly(node);
        // parseFilter is the same dispatch for every non-string input
        parsesOrRejectsCleanly(() => parseFilter(input));
      }),
      RUNS,
    );
  });
});

describe('printed ASTs round-trip through parseFilterExpression', () => {
  it('parses back to the same AST, which evaluates like the original and like the reference', () => {
    // Prepare: random valid ASTs, surface styles and rows
    // Act + Assess
    fc.assert(
      fc.property(astArb, styleArb, fc.array(rowArb, { minLength: 1, maxLength: 8 }), (ast, style, rows) => {
        const src = printExpr(ast, style);
        const parsed = parseFilterExpression(src);
        expect(parsed).toEqual(ast);
        const getter = objectGetter(rows);
        const [original, reparsed] = [compileFilter(ast, getter), compileFilter(parsed, getter)];
        rows.forEach((row, i) => {
          const expected = referenceEval(ast, row);
          expect(original(i)).toBe(expected);
          expect(reparsed(i)).toBe(expected);
        });
      }),
      RUNS,
    );
  });
});

describe('compileLike fuzz', () => {
  it('agrees with a naive anchored RegExp on short strings', () => {
    // Prepare
    const subject = fc
      .array(fc.constantFrom('a', 'b', '%', '_', '\\', '.', '😀', '\n'), { maxLength: 8 })
      .map((p) => p.join(''));
    // Act + Assess
    fc.assert(
      fc.property(patternArb, subject, (pattern, s) => {
        expect(compileLike(pattern)(s)).toBe(likeRegExp(pattern).test(s));
      }),
      RUNS,
    );
  });
});
