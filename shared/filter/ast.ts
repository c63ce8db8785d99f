/**
 * The one filter AST. Two front ends produce it (Milvus-style expressions in
 * `expr-parser.ts`, JSON objects in `json-parser.ts`); one compiler evaluates it
 * (`compile.ts`) against shard metadata columns or plain metadata objects.
 *
 * Semantics (documented in docs/api.md):
 * - A field path is a top-level metadata key plus optional nested keys/indexes:
 *   `meta["a"]["b"]` → { field: "meta", path: ["a", "b"] }.
 * - A comparison (`cmp`, `in`, `like`) against a missing or null value is false,
 *   including `!=` and `not in` (SQL-style); `not` is plain boolean negation, so
 *   `not (a == 1)` is true where `a` is missing.
 * - Values compare only within one type: number with number, string with string
 *   (code-unit order), bool with bool (`==`/`!=` only). A type mismatch is false.
 * - `like` patterns: `%` any run, `_` one character, `\` escapes; strings only.
 */
export type Literal = string | number | boolean | null;

export interface FieldRef {
  field: string;
  path: (string | number)[];
}

export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export type FilterNode =
  | { op: 'and'; args: FilterNode[] }
  | { op: 'or'; args: FilterNode[] }
  | { op: 'not'; arg: FilterNode }
  | { op: 'cmp'; cmp: CmpOp; ref: FieldRef; value: Literal }
  | { op: 'in'; ref: FieldRef; values: Literal[]; negate: boolean }
  | { op: 'like'; ref: FieldRef; pattern: string; negate: boolean }
  /** `is null` (negate=false) / `is not null` (negate=true); a missing field is null. */
  | { op: 'isNull'; ref: FieldRef; negate: boolean }
  | { op: 'const'; value: boolean };
