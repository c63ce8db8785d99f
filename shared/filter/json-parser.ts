/**
 * Mongo/Pinecone-style filter objects → FilterNode.
 *
 * Every error is a FilterSyntaxError at position -1 whose message starts with the JSON
 * path of the offending value (`filter.$and[1].price.$gt: ...`), since a JSON filter has
 * no meaningful character offset once it has been parsed from the request body.
 *
 * Lowering choices, so both front ends meet in one AST:
 * - `$ne` / `$nin` match where the field is missing (Mongo), so they become `not(==)` /
 *   `not(in)` rather than the SQL-style `!=` / `not in` of the expression syntax.
 * - `null` as a value (`{a: null}`, `$eq: null`, `$in: [..., null]`) matches null or
 *   missing, as in Mongo, via `isNull`.
 * - A dotted key `"meta.a.0"` is the path meta → "a" → 0; all-digit steps become numbers
 *   so they index arrays (and still find `"0"` keys in objects, see `objectGetter`).
 */
import { FilterSyntaxError } from '../errors.js';
import type { FieldRef, FilterNode, Literal } from './ast.js';
import { FILTER_MAX_DEPTH } from './expr-parser.js';

type Scalar = string | number | boolean;

const SCALAR_OR_NULL = 'a number, string, boolean or null';
const ORDERED = 'a number or string';
const INDEX_STEP_RE = /^(?:0|[1-9]\d*)$/;
const PLAIN_KEY_RE = /^[A-Za-z_$][A-Za-z0-9_$.]*$/;

/** `details.path` carries the JSON path machine-readably, for clients and tests. */
function fail(path: string, problem: string, expected: string): never {
  throw new FilterSyntaxError(`${path}: ${problem}`, -1, expected, { details: { path } });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function childPath(path: string, key: string): string {
  return PLAIN_KEY_RE.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Narrows to a usable literal; NaN/Infinity cannot come from JSON and never match anyway. */
function scalarOrUndefined(v: unknown, path: string): Scalar | undefined {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(path, 'expected a finite number', 'a finite number');
    return v;
  }
  return undefined;
}

function parseFieldKey(key: string, path: string): FieldRef {
  const steps = key.split('.');
  if (steps.some((s) => s === '')) {
    fail(path, `field path ${JSON.stringify(key)} has an empty segment`, 'a field name such as "a" or "a.b"');
  }
  const [field, ...rest] = steps;
  const refPath = rest.map((s): string | number => {
    const n = Number(s);
    return INDEX_STEP_RE.test(s) && Number.isSafeInteger(n) ? n : s;
  });
  return { field, path: refPath };
}

function inNode(ref: FieldRef, list: unknown, path: string): FilterNode {
  if (!Array.isArray(list)) fail(path, `expected an array of literals`, 'an array');
  const values: Literal[] = [];
  let hasNull = false;
  list.forEach((item, i) => {
    if (item === null) {
      hasNull = true;
      return;
    }
    const v = scalarOrUndefined(item, `${path}[${i}]`);
    if (v === undefined) fail(`${path}[${i}]`, `expected ${SCALAR_OR_NULL}`, SCALAR_OR_NULL);
    values.push(v);
  });
  const isNull: FilterNode = { op: 'isNull', ref, negate: false };
  if (!hasNull) return { op: 'in', ref, values, negate: false };
  if (values.length === 0) return isNull;
  return { op: 'or', args: [isNull, { op: 'in', ref, values, negate: false }] };
}

class JsonFilterParser {
  /** An `and` of one node is just that node; keeps ASTs comparable across front ends. */
  private static all(args: FilterNode[]): FilterNode {
    return args.length === 1 ? args[0] : { op: 'and', args };
  }

  clauses(obj: Record<string, unknown>, path: string, depth: number): FilterNode {
    if (depth > FILTER_MAX_DEPTH) {
      fail(path, `nested deeper than ${FILTER_MAX_DEPTH} levels`, `at most ${FILTER_MAX_DEPTH} levels of nesting`);
    }
    const keys = Object.keys(obj);
    if (keys.length === 0) fail(path, 'expected at least one condition', 'a non-empty object');
    return JsonFilterParser.all(keys.map((k) => this.clause(k, obj[k], childPath(path, k), depth)));
  }

  private clause(key: string, value: unknown, path: string, depth: number): FilterNode {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(value)) fail(path, 'expected an array of filter objects', 'an array');
      if (value.length === 0) fail(path, 'expected at least one filter object', 'a non-empty array');
      const args = value.map((item: unknown, i) => {
        const itemPath = `${path}[${i}]`;
        if (!isPlainObject(item)) fail(itemPath, 'expected a filter object', 'an object');
        return this.clauses(item, itemPath, depth + 1);
      });
      if (args.length === 1) return args[0];
      return key === '$and' ? { op: 'and', args } : { op: 'or', args };
    }
    if (key === '$not') {
      if (!isPlainObject(value)) fail(path, 'expected a filter object', 'an object');
      return { op: 'not', arg: this.clauses(value, path, depth + 1) };
    }
    if (key.startsWith('$')) {
      fail(path, `unknown operator ${JSON.stringify(key)}`, '$and, $or, $not or a field name');
    }
    return this.condition(parseFieldKey(key, path), value, path, depth);
  }

  /** The value side of `{field: value}`: a literal (implicit $eq) or an operator object. */
  private condition(ref: FieldRef, value: unknown, path: string, depth: number): FilterNode {
    if (value === null) return { op: 'isNull', ref, negate: false };
    const lit = scalarOrUndefined(value, path);
    if (lit !== undefined) return { op: 'cmp', cmp: '==', ref, value: lit };
    if (!isPlainObject(value)) {
      fail(path, `expected ${SCALAR_OR_NULL} or an operator object`, `${SCALAR_OR_NULL} or an operator object`);
    }
    const ops = Object.keys(value);
    if (ops.length === 0) fail(path, 'expected at least one operator', 'an operator such as $eq');
    return JsonFilterParser.all(ops.map((op) => this.operator(ref, op, value[op], childPath(path, op), depth)));
  }

  private operator(ref: FieldRef, op: string, operand: unknown, path: string, depth: number): FilterNode {
    switch (op) {
      case '$eq':
      case '$ne': {
        const negate = op === '$ne';
        if (operand === null) return { op: 'isNull', ref, negate };
        const v = scalarOrUndefined(operand, path);
        if (v === undefined) fail(path, `expected ${SCALAR_OR_NULL}`, SCALAR_OR_NULL);
        const eq: FilterNode = { op: 'cmp', cmp: '==', ref, value: v };
        return negate ? { op: 'not', arg: eq } : eq;
      }
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte': {
        const v = scalarOrUndefined(operand, path);
        // Booleans and null have no order; accepting them would give a filter that never matches.
        if (v === undefined || typeof v === 'boolean') fail(path, `expected ${ORDERED}`, ORDERED);
        const cmp = op === '$gt' ? '>' : op === '$gte' ? '>=' : op === '$lt' ? '<' : '<=';
        return { op: 'cmp', cmp, ref, value: v };
      }
      case '$in':
        return inNode(ref, operand, path);
      case '$nin':
        return { op: 'not', arg: inNode(ref, operand, path) };
      case '$exists':
        if (typeof operand !== 'boolean') fail(path, 'expected true or false', 'a boolean');
        return { op: 'isNull', ref, negate: operand };
      case '$not':
        if (!isPlainObject(operand)) fail(path, 'expected an operator object', 'an operator object');
        if (depth + 1 > FILTER_MAX_DEPTH) {
          fail(path, `nested deeper than ${FILTER_MAX_DEPTH} levels`, `at most ${FILTER_MAX_DEPTH} levels of nesting`);
        }
        return { op: 'not', arg: this.condition(ref, operand, path, depth + 1) };
      default:
        if (op.startsWith('$')) {
          fail(path, `unknown operator ${JSON.stringify(op)}`, 'an operator such as $eq, $gt or $in');
        }
        // `{a: {b: 1}}` is ambiguous (sub-document equality in Mongo); dotted keys say it plainly.
        fail(
          path,
          'expected an operator such as $eq; for nested fields use a dotted key like "a.b"',
          'an operator such as $eq, $gt or $in',
        );
    }
  }
}

/**
 * Parses a Mongo/Pinecone-style filter object, e.g.
 * `{genre: {$in: ["jazz", "soul"]}, year: {$gte: 1960, $lt: 1970}, "meta.rating": {$gt: 4}}`.
 * Several keys in one object, or several operators on one field, are and-ed.
 */
export function parseFilterObject(obj: unknown): FilterNode {
  if (!isPlainObject(obj)) fail('filter', 'expected a filter object', 'an object');
  return new JsonFilterParser().clauses(obj, 'filter', 0);
}

/** Exposed for `parseFilter`, which must tell filter objects from other objects the same way. */
export { isPlainObject as isFilterObject };
