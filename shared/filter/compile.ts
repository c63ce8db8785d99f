/**
 * Filter AST → row predicate.
 *
 * `compileFilter` does all the work that does not depend on the row up front (operator
 * dispatch, literal typing, `in` sets, `like` matchers, constant folding, one accessor per
 * distinct field path) and returns a tree of small closures, because it runs once per row
 * over 100k-row shards.
 */
import { FilterSyntaxError } from '../errors.js';
import type { CmpOp, FieldRef, FilterNode, Literal } from './ast.js';
import { parseFilterExpression } from './expr-parser.js';
import { isFilterObject, parseFilterObject } from './json-parser.js';

/** Given a field ref, returns a per-row accessor that yields `undefined` when the value is missing. */
export type ValueGetter = (ref: FieldRef) => (row: number) => unknown;
export type RowPredicate = (row: number) => boolean;
type Accessor = (row: number) => unknown;

// Identity-compared so the combinators can fold constants away.
const ALWAYS: RowPredicate = () => true;
const NEVER: RowPredicate = () => false;

/** Compiles `node` once; the returned predicate does no AST walking. */
export function compileFilter(node: FilterNode, getter: ValueGetter): RowPredicate {
  const accessors = new Map<string, Accessor>();
  // `10 < year < 20` reads `year` twice; one accessor per path lets getters share work.
  const access = (ref: FieldRef): Accessor => {
    const key = JSON.stringify([ref.field, ...ref.path]);
    let a = accessors.get(key);
    if (a === undefined) {
      a = getter(ref);
      accessors.set(key, a);
    }
    return a;
  };
  return compileNode(node, access);
}

function compileNode(node: FilterNode, access: (ref: FieldRef) => Accessor): RowPredicate {
  switch (node.op) {
    case 'and':
      return compileAnd(node.args.map((a) => compileNode(a, access)));
    case 'or':
      return compileOr(node.args.map((a) => compileNode(a, access)));
    case 'not': {
      const p = compileNode(node.arg, access);
      if (p === ALWAYS) return NEVER;
      if (p === NEVER) return ALWAYS;
      return (row) => !p(row);
    }
    case 'cmp':
      return compileCmp(node.cmp, node.value, access(node.ref));
    case 'in':
      return compileIn(node.values, node.negate, access(node.ref));
    case 'like':
      return compileLikeNode(node.pattern, node.negate, access(node.ref));
    case 'isNull': {
      const get = access(node.ref);
      return node.negate
        ? (row) => {
            const v = get(row);
            return v !== undefined && v !== null;
          }
        : (row) => {
            const v = get(row);
            return v === undefined || v === null;
          };
    }
    case 'const':
      return node.value ? ALWAYS : NEVER;
  }
}

function compileAnd(parts: RowPredicate[]): RowPredicate {
  if (parts.includes(NEVER)) return NEVER;
  const ps = parts.filter((p) => p !== ALWAYS);
  switch (ps.length) {
    case 0:
      return ALWAYS;
    case 1:
      return ps[0];
    case 2: {
      const [a, b] = ps;
      return (row) => a(row) && b(row);
    }
    case 3: {
      const [a, b, c] = ps;
      return (row) => a(row) && b(row) && c(row);
    }
    default:
      return (row) => {
        for (let i = 0; i < ps.length; i++) if (!ps[i](row)) return false;
        return true;
      };
  }
}

function compileOr(parts: RowPredicate[]): RowPredicate {
  if (parts.includes(ALWAYS)) return ALWAYS;
  const ps = parts.filter((p) => p !== NEVER);
  switch (ps.length) {
    case 0:
      return NEVER;
    case 1:
      return ps[0];
    case 2: {
      const [a, b] = ps;
      return (row) => a(row) || b(row);
    }
    case 3: {
      const [a, b, c] = ps;
      return (row) => a(row) || b(row) || c(row);
    }
    default:
      return (row) => {
        for (let i = 0; i < ps.length; i++) if (ps[i](row)) return true;
        return false;
      };
  }
}

/**
 * One specialised closure per (type, operator). `===` against a typed literal already
 * rejects other types, missing values and NaN, so `==` needs no typeof check; `!=` and
 * ordering need one, and `!=` must also reject NaN (`NaN !== 5` is true in JS).
 */
function compileCmp(op: CmpOp, value: Literal, get: Accessor): RowPredicate {
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return NEVER;
    switch (op) {
      case '==':
        return (row) => get(row) === value;
      case '!=':
        return (row) => {
          const v = get(row);
          return typeof v === 'number' && v === v && v !== value;
        };
      case '<':
        return (row) => {
          const v = get(row);
          return typeof v === 'number' && v < value;
        };
      case '<=':
        return (row) => {
          const v = get(row);
          return typeof v === 'number' && v <= value;
        };
      case '>':
        return (row) => {
          const v = get(row);
          return typeof v === 'number' && v > value;
        };
      case '>=':
        return (row) => {
          const v = get(row);
          return typeof v === 'number' && v >= value;
        };
    }
  }
  if (typeof value === 'string') {
    switch (op) {
      case '==':
        return (row) => get(row) === value;
      case '!=':
        return (row) => {
          const v = get(row);
          return typeof v === 'string' && v !== value;
        };
      case '<':
        return (row) => {
          const v = get(row);
          return typeof v === 'string' && v < value;
        };
      case '<=':
        return (row) => {
          const v = get(row);
          return typeof v === 'string' && v <= value;
        };
      case '>':
        return (row) => {
          const v = get(row);
          return typeof v === 'string' && v > value;
        };
      case '>=':
        return (row) => {
          const v = get(row);
          return typeof v === 'string' && v >= value;
        };
    }
  }
  if (typeof value === 'boolean') {
    if (op === '==') return (row) => get(row) === value;
    if (op === '!=') return (row) => get(row) === !value;
    return NEVER;
  }
  // A null literal compares with nothing (use isNull); the parsers never emit it.
  return NEVER;
}

/**
 * `in` is a Set lookup per type. `not in` is true only for a present value whose type
 * occurs in the list (a type mismatch is false, like `!=`), so `5 not in ["a"]` is false.
 */
function compileIn(values: Literal[], negate: boolean, get: Accessor): RowPredicate {
  const nums = new Set<number>();
  const strs = new Set<string>();
  let hasNum = false;
  let hasStr = false;
  let hasBool = false;
  let hasTrue = false;
  let hasFalse = false;
  for (const v of values) {
    if (typeof v === 'number') {
      hasNum = true;
      if (v === v) nums.add(v);
    } else if (typeof v === 'string') {
      hasStr = true;
      strs.add(v);
    } else if (typeof v === 'boolean') {
      hasBool = true;
      if (v) hasTrue = true;
      else hasFalse = true;
    }
  }
  if (!hasNum && !hasStr && !hasBool) return NEVER;
  if (!negate) {
    // NaN is never added to `nums`, so `nums.has(NaN)` is false as required.
    if (hasStr && !hasNum && !hasBool) {
      return (row) => {
        const v = get(row);
        return typeof v === 'string' && strs.has(v);
      };
    }
    if (hasNum && !hasStr && !hasBool) {
      return (row) => {
        const v = get(row);
        return typeof v === 'number' && nums.has(v);
      };
    }
    return (row) => {
      const v = get(row);
      switch (typeof v) {
        case 'number':
          return nums.has(v);
        case 'string':
          return strs.has(v);
        case 'boolean':
          return v ? hasTrue : hasFalse;
        default:
          return false;
      }
    };
  }
  return (row) => {
    const v = get(row);
    switch (typeof v) {
      case 'number':
        return hasNum && v === v && !nums.has(v);
      case 'string':
        return hasStr && !strs.has(v);
      case 'boolean':
        return hasBool && (v ? !hasTrue : !hasFalse);
      default:
        return false;
    }
  };
}

function compileLikeNode(pattern: string, negate: boolean, get: Accessor): RowPredicate {
  const match = compileLike(pattern);
  return negate
    ? (row) => {
        const v = get(row);
        return typeof v === 'string' && !match(v);
      }
    : (row) => {
        const v = get(row);
        return typeof v === 'string' && match(v);
      };
}

/** A `%`-free piece of a like pattern: matched at, found after, or anchored to the end. */
interface Segment {
  /** End index if the segment matches starting exactly at `pos`, else -1. */
  at(s: string, pos: number): number;
  /** End index of the leftmost match starting at or after `from`, else -1. */
  find(s: string, from: number): number;
  /** Whether a match starting at or after `from` ends exactly at the end of `s`. */
  endsAt(s: string, from: number): boolean;
}

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/g;

function literalSegment(text: string): Segment {
  return {
    at: (s, pos) => (s.startsWith(text, pos) ? pos + text.length : -1),
    find: (s, from) => {
      const i = s.indexOf(text, from);
      return i < 0 ? -1 : i + text.length;
    },
    endsAt: (s, from) => s.length - text.length >= from && s.endsWith(text),
  };
}

function regexSegment(source: string): Segment {
  // No quantifiers inside a segment, so each regex runs in linear time per start offset.
  const sticky = new RegExp(source, 'suy');
  const search = new RegExp(source, 'sug');
  const tail = new RegExp(`(?:${source})$`, 'sug');
  return {
    at: (s, pos) => {
      sticky.lastIndex = pos;
      return sticky.test(s) ? sticky.lastIndex : -1;
    },
    find: (s, from) => {
      search.lastIndex = from;
      return search.test(s) ? search.lastIndex : -1;
    },
    endsAt: (s, from) => {
      tail.lastIndex = from;
      return tail.test(s);
    },
  };
}

/**
 * Compiles a like pattern (`%` any run, `_` one code point, `\` escapes the next
 * character; a trailing lone `\` is literal).
 *
 * Not one `^…$` RegExp: `%a%a%a…b` would backtrack exponentially on V8, and the pattern
 * comes from the caller. Instead the pattern is split at `%` into segments matched
 * left to right, taking the leftmost match of each middle segment (always optimal for
 * `%`, which absorbs any gap); segments with `_` use small quantifier-free RegExps,
 * pure-literal ones plain string search. Worst case O(|s| · |pattern|).
 */
export function compileLike(pattern: string): (s: string) => boolean {
  const segments: Segment[] = [];
  let literal = '';
  let source = '';
  let wild = false;
  const flush = (): void => {
    segments.push(wild ? regexSegment(source) : literalSegment(literal));
    literal = '';
    source = '';
    wild = false;
  };
  for (let i = 0; i < pattern.length; i++) {
    let c = pattern[i];
    if (c === '%') {
      flush();
      continue;
    }
    if (c === '_') {
      source += '.';
      wild = true;
      continue;
    }
    if (c === '\\' && i + 1 < pattern.length) c = pattern[++i];
    literal += c;
    source += c.replace(REGEX_SPECIAL, '\\$&');
  }
  flush();

  if (segments.length === 1) {
    // No `%`: the one segment must span the whole string (plain equality when literal).
    const only = segments[0];
    return (s) => only.at(s, 0) === s.length;
  }
  const first = segments[0];
  const last = segments[segments.length - 1];
  const middle = segments.slice(1, -1);
  return (s) => {
    let pos = first.at(s, 0);
    if (pos < 0) return false;
    for (let i = 0; i < middle.length; i++) {
      pos = middle[i].find(s, pos);
      if (pos < 0) return false;
    }
    return last.endsAt(s, pos);
  };
}

function hasOwn(o: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

/** One path step: string keys into objects, integer indexes into arrays; anything else is missing. */
function step(v: unknown, key: string | number): unknown {
  if (typeof v !== 'object' || v === null) return undefined;
  if (Array.isArray(v)) {
    return typeof key === 'number' && Number.isInteger(key) && key >= 0 && key < v.length ? v[key] : undefined;
  }
  // A numeric step also finds `"0"`-style keys: JSON filters cannot say which one they mean.
  const k = typeof key === 'number' ? String(key) : key;
  return hasOwn(v, k) ? (v as Record<string, unknown>)[k] : undefined;
}

/**
 * A ValueGetter over plain metadata objects (row number = array index). Only own
 * properties count, so `constructor` or `__proto__` never resolve to prototype members.
 */
export function objectGetter(rows: ReadonlyArray<Record<string, unknown> | undefined>): ValueGetter {
  return (ref) => {
    const field = ref.field;
    const path = ref.path.slice();
    const top = (row: number): unknown => {
      const r: unknown = rows[row];
      if (typeof r !== 'object' || r === null) return undefined;
      return hasOwn(r, field) ? (r as Record<string, unknown>)[field] : undefined;
    };
    if (path.length === 0) return top;
    return (row) => {
      let v = top(row);
      for (let i = 0; i < path.length && v !== undefined; i++) v = step(v, path[i]);
      return v;
    };
  };
}

/** Evaluates `node` against one metadata object; compile once with `compileFilter` for many. */
export function matchesMetadata(node: FilterNode, metadata: Record<string, unknown> | undefined): boolean {
  return compileFilter(node, objectGetter([metadata]))(0);
}

/** The distinct top-level metadata fields `node` reads, in first-use order (to load only those columns). */
export function filterFields(node: FilterNode): string[] {
  const seen = new Set<string>();
  const visit = (n: FilterNode): void => {
    switch (n.op) {
      case 'and':
      case 'or':
        n.args.forEach(visit);
        return;
      case 'not':
        visit(n.arg);
        return;
      case 'const':
        return;
      default:
        seen.add(n.ref.field);
    }
  };
  visit(node);
  return [...seen];
}

/**
 * The API entry point: a string is an expression, a plain object a JSON filter, and
 * `undefined`/`null` mean "no filter". Anything else is a FilterSyntaxError.
 */
export function parseFilter(input: unknown): FilterNode | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input === 'string') return parseFilterExpression(input);
  if (isFilterObject(input)) return parseFilterObject(input);
  const kind = Array.isArray(input) ? 'array' : typeof input;
  throw new FilterSyntaxError(
    `filter: expected an expression string or a filter object, got ${kind}`,
    -1,
    'a string or an object',
  );
}
