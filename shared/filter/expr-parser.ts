/**
 * Milvus-style boolean filter expressions → FilterNode.
 *
 * A hand-written recursive-descent parser that reads the source directly (no separate
 * token stream) because some lexemes depend on context: `.5` is a number where a
 * literal may start but a path step in `meta.5`.
 *
 * Grammar (keywords are case-insensitive):
 *   expr      := and (("or" | "||") and)*
 *   and       := unary (("and" | "&&") unary)*
 *   unary     := ("not" | "!") unary | "(" expr ")" | predicate
 *   predicate := ref cmpOp literal
 *              | literal cmpOp ref                      (flipped to ref-on-left)
 *              | literal (< | <=) ref (< | <=) literal  (also > / >=; becomes an `and`)
 *              | ref ["not"] "in" "[" [literal ("," literal)*] "]"
 *              | ref ["not"] "like" string
 *              | ref "is" ["not"] "null"
 *   ref       := ident ( "[" (string | index) "]" | "." (ident | index) )*
 */
import { FilterSyntaxError } from '../errors.js';
import type { CmpOp, FieldRef, FilterNode, Literal } from './ast.js';

/** Longest accepted expression, in UTF-16 code units; keeps parse time and AST size bounded. */
export const FILTER_MAX_LENGTH = 64 * 1024;
/**
 * Deepest accepted nesting of parentheses and `not`s (and of `$and`/`$or`/`$not` in JSON
 * filters), so hostile input cannot exhaust the stack here or in the compiler.
 */
export const FILTER_MAX_DEPTH = 64;

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'like', 'is', 'null', 'true', 'false']);
const IDENT_RE = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER_RE = /-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const INDEX_RE = /\d+/y;
const WS_RE = /\s*/y;
/** Quotes whole words and number-ish runs (`12abc`, `1.2.3`) in error messages. */
const DESCRIBE_WORD_RE = /-?[A-Za-z0-9_.]*[A-Za-z0-9_]/y;
const HEX4_RE = /^[0-9A-Fa-f]{4}$/;

const FLIPPED: Record<CmpOp, CmpOp> = { '==': '==', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

const EXPECT_CONTINUATION = 'and, or or end of input';

type Operand = { kind: 'ref'; ref: FieldRef; pos: number } | { kind: 'lit'; value: Literal; pos: number };

function isIdentChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_]/.test(c);
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isOrdering(op: CmpOp): boolean {
  return op !== '==' && op !== '!=';
}

class ExprParser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly src: string) {}

  parse(): FilterNode {
    if (this.src.length > FILTER_MAX_LENGTH) {
      const expected = `at most ${FILTER_MAX_LENGTH} characters`;
      throw new FilterSyntaxError(
        `Filter expression is too long: ${this.src.length} characters, expected ${expected}`,
        FILTER_MAX_LENGTH,
        expected,
      );
    }
    this.skipWs();
    if (this.atEnd()) {
      throw new FilterSyntaxError('Empty filter: expected an expression at position 0', 0, 'an expression');
    }
    const node = this.parseOr();
    this.skipWs();
    if (!this.atEnd()) this.fail(EXPECT_CONTINUATION);
    return node;
  }

  // ---- boolean structure ----

  private parseOr(): FilterNode {
    const args = [this.parseAnd()];
    while (this.acceptBoolOp('||', 'or')) args.push(this.parseAnd());
    return args.length === 1 ? args[0] : { op: 'or', args };
  }

  private parseAnd(): FilterNode {
    const args = [this.parseUnary()];
    while (this.acceptBoolOp('&&', 'and')) args.push(this.parseUnary());
    return args.length === 1 ? args[0] : { op: 'and', args };
  }

  private parseUnary(): FilterNode {
    this.skipWs();
    const start = this.pos;
    const bang = this.src[start] === '!' && this.src[start + 1] !== '=';
    if (bang || this.peekKeyword() === 'not') {
      this.pos += bang ? 1 : 3;
      this.enter(start);
      const arg = this.parseUnary();
      this.depth--;
      return { op: 'not', arg };
    }
    if (this.src[start] === '(') {
      this.enter(start);
      this.pos++;
      const node = this.parseOr();
      this.skipWs();
      if (this.src[this.pos] !== ')') this.fail('and, or or ")"');
      this.pos++;
      this.depth--;
      return node;
    }
    return this.parsePredicate();
  }

  private enter(at: number): void {
    if (++this.depth > FILTER_MAX_DEPTH) {
      this.fail(`at most ${FILTER_MAX_DEPTH} levels of nesting`, at);
    }
  }

  private acceptBoolOp(symbol: string, word: string): boolean {
    this.skipWs();
    if (this.src.startsWith(symbol, this.pos)) {
      this.pos += symbol.length;
      return true;
    }
    if (this.peekKeyword() === word) {
      this.pos += word.length;
      return true;
    }
    return false;
  }

  // ---- predicates ----

  private parsePredicate(): FilterNode {
    const left = this.parseOperand('a field name or literal');
    return left.kind === 'ref' ? this.parseRefPredicate(left.ref) : this.parseLiteralFirst(left);
  }

  private parseRefPredicate(ref: FieldRef): FilterNode {
    this.skipWs();
    const opPos = this.pos;
    const op = this.acceptCmpOp();
    if (op !== undefined) {
      const lit = this.parseLiteral('a literal');
      return this.makeCmp(ref, op, lit.value, lit.pos);
    }
    const word = this.peekKeyword();
    if (word === 'in' || word === 'like') {
      this.pos += word.length;
      return word === 'in' ? this.parseInList(ref, false) : this.parseLike(ref, false);
    }
    if (word === 'not') {
      this.pos += 3;
      this.skipWs();
      const next = this.peekKeyword();
      if (next === 'in' || next === 'like') {
        this.pos += next.length;
        return next === 'in' ? this.parseInList(ref, true) : this.parseLike(ref, true);
      }
      this.fail('in or like');
    }
    if (word === 'is') {
      this.pos += 2;
      this.skipWs();
      let negate = false;
      if (this.peekKeyword() === 'not') {
        this.pos += 3;
        this.skipWs();
        negate = true;
      }
      if (this.peekKeyword() !== 'null') this.fail(negate ? 'null' : 'null or not null');
      this.pos += 4;
      return { op: 'isNull', ref, negate };
    }
    // A bare field (`flag`) lands here: truthiness is deliberately not a filter.
    return this.fail('a comparison operator, in, like or is', opPos);
  }

  /** `5 < x` and the chained `10 < x < 20`; the field always ends up on the left. */
  private parseLiteralFirst(left: Extract<Operand, { kind: 'lit' }>): FilterNode {
    this.skipWs();
    const op1 = this.acceptCmpOp();
    if (op1 === undefined) this.fail('a comparison operator');
    const right = this.parseOperand('a field name');
    if (right.kind !== 'ref') this.fail('a field name', right.pos);
    const first = this.makeCmp(right.ref, FLIPPED[op1], left.value, left.pos);
    if (!isOrdering(op1)) return first;

    this.skipWs();
    const op2Pos = this.pos;
    const op2 = this.acceptCmpOp();
    if (op2 === undefined) return first;
    const ascending = op1 === '<' || op1 === '<=';
    if (ascending ? op2 !== '<' && op2 !== '<=' : op2 !== '>' && op2 !== '>=') {
      this.fail(ascending ? '< or <= to continue the range' : '> or >= to continue the range', op2Pos);
    }
    const upper = this.parseLiteral('a literal');
    return { op: 'and', args: [first, this.makeCmp(right.ref, op2, upper.value, upper.pos)] };
  }

  /** `== null` / `!= null` read as null tests; bools and null have no order. */
  private makeCmp(ref: FieldRef, cmp: CmpOp, value: Literal, litPos: number): FilterNode {
    if (value === null) {
      if (cmp === '==') return { op: 'isNull', ref, negate: false };
      if (cmp === '!=') return { op: 'isNull', ref, negate: true };
      this.fail('a number or string', litPos);
    }
    if (typeof value === 'boolean' && isOrdering(cmp)) this.fail('a number or string', litPos);
    return { op: 'cmp', cmp, ref, value };
  }

  private parseInList(ref: FieldRef, negate: boolean): FilterNode {
    this.skipWs();
    if (this.src[this.pos] !== '[') this.fail('"["');
    this.pos++;
    const values: Literal[] = [];
    this.skipWs();
    if (this.src[this.pos] === ']') {
      this.pos++;
      return { op: 'in', ref, values, negate };
    }
    for (;;) {
      const lit = this.parseLiteral('a literal');
      // SQL-style `in` never matches null, so a null element would be silently dead.
      if (lit.value === null) this.fail('a number, string or boolean', lit.pos);
      values.push(lit.value);
      this.skipWs();
      const c = this.src[this.pos];
      if (c === ']') {
        this.pos++;
        return { op: 'in', ref, values, negate };
      }
      if (c !== ',') this.fail('"," or "]"');
      this.pos++;
    }
  }

  private parseLike(ref: FieldRef, negate: boolean): FilterNode {
    this.skipWs();
    const start = this.pos;
    const q = this.src[start];
    if (q !== '"' && q !== "'") this.fail('a quoted pattern');
    const pattern = this.parseString();
    let escaped = false;
    for (let i = 0; i < pattern.length; i++) {
      escaped = !escaped && pattern[i] === '\\';
    }
    if (escaped) this.fail('a complete escape at the end of the pattern', start);
    return { op: 'like', ref, pattern, negate };
  }

  // ---- operands ----

  private parseOperand(expected: string): Operand {
    this.skipWs();
    const start = this.pos;
    const c = this.src[start];
    if (c === '"' || c === "'") return { kind: 'lit', value: this.parseString(), pos: start };
    if (isDigit(c) || c === '-' || (c === '.' && isDigit(this.src[start + 1]))) {
      return { kind: 'lit', value: this.parseNumber(expected), pos: start };
    }
    IDENT_RE.lastIndex = start;
    const m = IDENT_RE.exec(this.src);
    if (m === null) this.fail(expected);
    const word = m[0];
    const lower = word.toLowerCase();
    if (lower === 'true' || lower === 'false') {
      this.pos = start + word.length;
      return { kind: 'lit', value: lower === 'true', pos: start };
    }
    if (lower === 'null') {
      this.pos = start + word.length;
      return { kind: 'lit', value: null, pos: start };
    }
    if (KEYWORDS.has(lower)) this.fail(expected);
    this.pos = start + word.length;
    return { kind: 'ref', ref: { field: word, path: this.parsePath() }, pos: start };
  }

  private parseLiteral(expected: string): Extract<Operand, { kind: 'lit' }> {
    this.skipWs();
    const start = this.pos;
    const operand = this.parseOperand(expected);
    if (operand.kind !== 'lit') this.fail(expected, start);
    return operand;
  }

  /** Selectors must touch the field (`meta["a"]`, `meta.a`) so `x in [...]` stays unambiguous. */
  private parsePath(): (string | number)[] {
    const path: (string | number)[] = [];
    for (;;) {
      const c = this.src[this.pos];
      if (c === '[') {
        this.pos++;
        this.skipWs();
        const q = this.src[this.pos];
        if (q === '"' || q === "'") {
          path.push(this.parseString());
        } else {
          path.push(this.parseIndex('a quoted key or array index'));
        }
        this.skipWs();
        if (this.src[this.pos] !== ']') this.fail('"]"');
        this.pos++;
      } else if (c === '.') {
        this.pos++;
        if (isDigit(this.src[this.pos])) {
          path.push(this.parseIndex('a key or array index after "."'));
        } else {
          IDENT_RE.lastIndex = this.pos;
          const m = IDENT_RE.exec(this.src);
          if (m === null) this.fail('a key or array index after "."');
          path.push(m[0]);
          this.pos += m[0].length;
        }
      } else {
        return path;
      }
    }
  }

  private parseIndex(expected: string): number {
    const start = this.pos;
    INDEX_RE.lastIndex = start;
    const m = INDEX_RE.exec(this.src);
    if (m === null) this.fail(expected);
    const n = Number(m[0]);
    if (!Number.isSafeInteger(n) || isIdentChar(this.src[start + m[0].length])) this.fail(expected, start);
    this.pos = start + m[0].length;
    return n;
  }

  private parseNumber(expected: string): number {
    const start = this.pos;
    NUMBER_RE.lastIndex = start;
    const m = NUMBER_RE.exec(this.src);
    if (m === null) this.fail(expected);
    const end = start + m[0].length;
    // `12abc` or `1.2.3` is a typo, not a number followed by something else.
    if (isIdentChar(this.src[end]) || this.src[end] === '.') this.fail('a valid number', start);
    const n = Number(m[0]);
    if (!Number.isFinite(n)) this.fail('a finite number', start);
    this.pos = end;
    return n;
  }

  private parseString(): string {
    const src = this.src;
    const quote = src[this.pos];
    this.pos++;
    let out = '';
    let chunk = this.pos;
    for (;;) {
      const c = src[this.pos];
      if (c === undefined) this.fail(`a closing ${quote}`);
      if (c === quote) {
        out += src.slice(chunk, this.pos);
        this.pos++;
        return out;
      }
      if (c !== '\\') {
        this.pos++;
        continue;
      }
      out += src.slice(chunk, this.pos);
      const escPos = this.pos;
      const e = src[this.pos + 1];
      switch (e) {
        case '"':
        case "'":
        case '\\':
        case '/':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          const hex = src.slice(this.pos + 2, this.pos + 6);
          if (!HEX4_RE.test(hex)) this.fail('\\u followed by 4 hex digits', escPos);
          out += String.fromCharCode(parseInt(hex, 16));
          this.pos += 4;
          break;
        }
        default:
          this.fail('a valid escape sequence', escPos);
      }
      this.pos += 2;
      chunk = this.pos;
    }
  }

  // ---- lexical helpers ----

  private acceptCmpOp(): CmpOp | undefined {
    const s = this.src;
    const p = this.pos;
    const c = s[p];
    const eq = s[p + 1] === '=';
    let op: CmpOp | undefined;
    if (c === '=' && eq) op = '==';
    else if (c === '!' && eq) op = '!=';
    else if (c === '<') op = eq ? '<=' : '<';
    else if (c === '>') op = eq ? '>=' : '>';
    if (op !== undefined) this.pos += op.length;
    return op;
  }

  /** The lower-cased keyword at the cursor, if the whole word there is one. */
  private peekKeyword(): string | undefined {
    IDENT_RE.lastIndex = this.pos;
    const m = IDENT_RE.exec(this.src);
    if (m === null) return undefined;
    const lower = m[0].toLowerCase();
    return KEYWORDS.has(lower) ? lower : undefined;
  }

  private skipWs(): void {
    WS_RE.lastIndex = this.pos;
    WS_RE.exec(this.src);
    this.pos = WS_RE.lastIndex;
  }

  private atEnd(): boolean {
    return this.pos >= this.src.length;
  }

  private fail(expected: string, at: number = this.pos): never {
    throw new FilterSyntaxError(`Expected ${expected} at position ${at} but found ${this.describe(at)}`, at, expected);
  }

  /** A short quote of the source at `at`, for error messages. */
  private describe(at: number): string {
    if (at >= this.src.length) return 'end of input';
    DESCRIBE_WORD_RE.lastIndex = at;
    const word = DESCRIBE_WORD_RE.exec(this.src);
    if (word !== null) return JSON.stringify(word[0].slice(0, 24));
    const two = this.src.slice(at, at + 2);
    if (['==', '!=', '<=', '>=', '&&', '||'].includes(two)) return JSON.stringify(two);
    return JSON.stringify(String.fromCodePoint(this.src.codePointAt(at) ?? 0));
  }
}

/**
 * Parses a Milvus-style boolean expression such as
 * `genre in ["jazz", "soul"] and 1960 <= year < 1970 and meta["rating"] > 4`.
 * Throws FilterSyntaxError (with `position` and `expected`) on any malformed input,
 * including empty input: an absent filter must be `undefined`, never `""`.
 */
export function parseFilterExpression(src: string): FilterNode {
  return new ExprParser(src).parse();
}
