/**
 * Shared fixtures of the filter tests (expression parser, JSON parser, compiler): AST builders,
 * one small catalogue with missing fields, nulls, NaN and wrongly typed values on purpose, and
 * the assertion helper for syntax errors.
 */
import { expect } from 'vitest';
import { FilterSyntaxError } from '../../shared/errors.js';
import type { CmpOp, FieldRef, FilterNode, Literal } from '../../shared/filter/ast.js';
import { compileFilter, objectGetter } from '../../shared/filter/compile.js';

export const ref = (field: string, ...path: (string | number)[]): FieldRef => ({ field, path });
export const cmp = (r: FieldRef, op: CmpOp, value: Literal): FilterNode => ({ op: 'cmp', cmp: op, ref: r, value });

export const ROWS: Record<string, unknown>[] = [
  {
    title: 'Kind of Blue',
    genre: 'jazz',
    year: 1959,
    rating: 4.9,
    live: false,
    tags: ['modal', 'cool'],
    meta: { label: 'Columbia', sales: { us: 5 } },
  },
  {
    title: 'A Love Supreme',
    genre: 'jazz',
    year: 1965,
    rating: 4.8,
    live: false,
    tags: ['spiritual'],
    meta: { label: 'Impulse!' },
  },
  {
    title: "What's Going On",
    genre: 'soul',
    year: 1971,
    rating: 4.7,
    live: false,
    meta: { label: 'Tamla', sales: { us: 2 } },
  },
  { title: 'Live at the Apollo', genre: 'soul', year: 1963, rating: null, live: true, tags: ['live'] },
  { title: '100% Pure', genre: 'ambient', year: '1999', live: 'yes', meta: { label: 'Warp', sales: { us: '7' } } },
  {},
  { title: 'Jazz_Standards', genre: 'Jazz', year: 2001.5, rating: NaN, tags: [], meta: null },
];

/** Indexes of the ROWS a compiled filter matches. */
export function rowsMatching(node: FilterNode): number[] {
  const match = compileFilter(node, objectGetter(ROWS));
  return ROWS.map((_, i) => i).filter(match);
}

/** Runs `fn` expecting a FilterSyntaxError; returns it. */
export function syntaxError(fn: () => unknown): FilterSyntaxError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FilterSyntaxError);
    return e as FilterSyntaxError;
  }
  throw new Error('expected a FilterSyntaxError');
}
