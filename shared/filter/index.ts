/** The metadata filter language: two front ends, one AST, one compiled evaluator. */
export type { CmpOp, FieldRef, FilterNode, Literal } from './ast.js';
export { FILTER_MAX_DEPTH, FILTER_MAX_LENGTH, parseFilterExpression } from './expr-parser.js';
export { parseFilterObject } from './json-parser.js';
export {
  compileFilter,
  compileLike,
  filterFields,
  matchesMetadata,
  objectGetter,
  parseFilter,
  type RowPredicate,
  type ValueGetter,
} from './compile.js';
