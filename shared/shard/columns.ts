/**
 * Columnar metadata for filtering: one column per top-level metadata field, stored in a
 * shard next to the index so a filter can be evaluated per row without materialising
 * metadata objects.
 *
 * Byte layout (all integers little-endian; offsets relative to the data area):
 *
 *   0   4  magic "SHCL"
 *   4   4  u32 format version (1)
 *   8   4  u32 header length H (UTF-8 JSON bytes)
 *   12  4  u32 reserved, 0
 *   16  H  header JSON: { count, columns: [{ name, type, <section>: [offset, length], ... }] }
 *   ..     zero padding to a multiple of 8 → start of the data area
 *          sections, each starting 8-aligned within the data area:
 *            number: values (count × f64, 0 where missing), present (bitmap, bit r = row r)
 *            string: codes (count × u32, 0xFFFFFFFF = missing), dictOffsets ((n+1) × u32), dict (UTF-8)
 *            bool:   values (count × u8: 0 false, 1 true, 2 missing)
 *            json:   offsets ((count+1) × u32), text (UTF-8 JSON per row, empty = missing)
 *
 * Offsets are relative to the data area so the header never depends on its own length.
 * The column blob has no checksum of its own: inside a shard it is one CRC-checked section.
 */
import { Buffer } from 'node:buffer';
import { CorruptDataError, UnsupportedFormatError, ValidationError } from '../errors.js';
import type { FieldRef } from '../filter/ast.js';
import type { JsonValue, Metadata } from '../types.js';

export type ColumnType = 'number' | 'string' | 'bool' | 'json';
export const COLUMN_TYPES: readonly ColumnType[] = ['number', 'string', 'bool', 'json'];

const COLUMNS_MAGIC = [0x53, 0x48, 0x43, 0x4c]; // "SHCL"
export const COLUMNS_FORMAT_VERSION = 1;
const PREAMBLE = 16;
const MISSING_CODE = 0xffffffff;
const BOOL_MISSING = 2;
/** Rows are addressed with int32 bit tricks (`row >> 3`) in the bitmap. */
const MAX_ROWS = 0x7fffffff;
/** Direct-mapped: filter scans touch rows in order, so a small cache only has to catch
 * several predicates on the same json field hitting the same row back to back. */
const JSON_CACHE_SLOTS = 256;

/** Which sections each column type stores, in header order. */
const SECTIONS: Record<ColumnType, readonly string[]> = {
  number: ['values', 'present'],
  string: ['codes', 'dictOffsets', 'dict'],
  bool: ['values'],
  json: ['offsets', 'text'],
};

/** Typed-array views are native-endian; the format is little-endian, as are all hosts we run on. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
export function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new UnsupportedFormatError('shard formats need a little-endian host');
}

export const align8 = (n: number): number => Math.ceil(n / 8) * 8;

// ---------------------------------------------------------------------------------------
// UTF-8 string tables (shared with format.ts for the id table)

/**
 * Encodes strings as u32 byte offsets ((n+1) entries) plus one UTF-8 blob. Callers must
 * pass well-formed strings (no lone surrogates): those cannot round-trip through UTF-8.
 */
export function encodeUtf8Table(strings: readonly string[]): { offsets: Uint32Array; blob: Uint8Array } {
  const offsets = new Uint32Array(strings.length + 1);
  let total = 0;
  for (let i = 0; i < strings.length; i++) {
    total += Buffer.byteLength(strings[i], 'utf8');
    if (total > 0xffffffff) throw new ValidationError('string table exceeds 4 GiB');
    offsets[i + 1] = total;
  }
  // One native encode of the joined text is much faster than one encode per string.
  const buf = Buffer.from(strings.join(''), 'utf8');
  if (buf.length !== total) throw new ValidationError('string table contains ill-formed UTF-16');
  return { offsets, blob: new Uint8Array(buf.buffer, buf.byteOffset, buf.length) };
}

const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes a table written by `encodeUtf8Table`. One native decode of the whole blob plus
 * substrings: 100k ASCII ids take ~2–4 ms this way versus ~35 ms with one decode per
 * string; 100k non-ASCII ids ~13 ms, nearly all of it UTF-8 → UTF-16 transcoding.
 * Offsets must already be validated as monotonic from 0 to `blob.length`.
 */
export function decodeUtf8Table(offsets: Uint32Array, blob: Uint8Array, what: string): string[] {
  const n = offsets.length - 1;
  let text: string;
  try {
    text = fatalDecoder.decode(blob);
  } catch (cause) {
    throw new CorruptDataError(`${what}: invalid UTF-8`, { cause });
  }
  const out = new Array<string>(n);
  if (text.length === blob.length) {
    // Pure ASCII (any multi-byte sequence shrinks in UTF-16): byte offsets are char offsets.
    for (let i = 0; i < n; i++) out[i] = text.substring(offsets[i], offsets[i + 1]);
    return out;
  }
  // Map byte offsets to UTF-16 offsets: one unit per lead byte, two for 4-byte sequences.
  let units = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    const start = units;
    const end = offsets[i + 1];
    if (end < blob.length && (blob[end] & 0xc0) === 0x80) {
      throw new CorruptDataError(`${what}: entry ${i} ends inside a UTF-8 sequence`);
    }
    for (; b < end; b++) {
      const c = blob[b];
      if ((c & 0xc0) !== 0x80) units += c >= 0xf0 ? 2 : 1;
    }
    out[i] = text.substring(start, units);
  }
  if (units !== text.length) throw new CorruptDataError(`${what}: offsets do not cover the text`);
  return out;
}

/** Checks u32 offsets run monotonically from 0 to `end`. */
export function checkOffsets(offsets: Uint32Array, end: number, what: string): void {
  if (offsets.length === 0 || offsets[0] !== 0 || offsets[offsets.length - 1] !== end) {
    throw new CorruptDataError(`${what}: offsets do not span the data`);
  }
  for (let i = 1; i < offsets.length; i++) {
    if (offsets[i] < offsets[i - 1]) throw new CorruptDataError(`${what}: offsets not monotonic at ${i}`);
  }
}

/**
 * A typed-array view at `offset` of `bytes`, copying only when the absolute address is
 * misaligned for the element type (typed arrays refuse misaligned views).
 */
export function alignedView<T extends Float64Array | Uint32Array>(
  ctor: {
    new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
    new (length: number): T;
    BYTES_PER_ELEMENT: number;
  },
  bytes: Uint8Array,
  offset: number,
  length: number,
): T {
  const abs = bytes.byteOffset + offset;
  if (abs % ctor.BYTES_PER_ELEMENT === 0) return new ctor(bytes.buffer, abs, length);
  const copy = new ctor(length);
  new Uint8Array(copy.buffer).set(bytes.subarray(offset, offset + length * ctor.BYTES_PER_ELEMENT));
  return copy;
}

// ---------------------------------------------------------------------------------------
// Encoding

const WELL_FORMED = /^(?:[^\uD800-\uDFFF]|[\uD800-\uDBFF][\uDC00-\uDFFF])*$/;
const HAS_SURROGATE = /[\uD800-\uDFFF]/;
export function isWellFormed(s: string): boolean {
  return !HAS_SURROGATE.test(s) || WELL_FORMED.test(s);
}

const K_NUMBER = 1;
const K_STRING = 2;
const K_BOOL = 4;
const K_OTHER = 8;

/**
 * Validates a nested JSON value and reports whether it contains -0 (which
 * `JSON.stringify` would print as `0`, losing the sign).
 */
function checkJson(v: unknown, field: string): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return false;
    case 'number':
      if (!Number.isFinite(v)) throw new ValidationError(`metadata field ${field}: numbers must be finite`, { field });
      return Object.is(v, -0);
    case 'object': {
      if (v === null) return false;
      let negZero = false;
      if (Array.isArray(v)) {
        for (const item of v) {
          if (item === undefined)
            throw new ValidationError(`metadata field ${field}: arrays cannot hold undefined`, { field });
          negZero = checkJson(item, field) || negZero;
        }
        return negZero;
      }
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new ValidationError(`metadata field ${field}: only plain objects are JSON`, { field });
      }
      for (const item of Object.values(v)) {
        if (item !== undefined) negZero = checkJson(item, field) || negZero;
      }
      return negZero;
    }
    default:
      throw new ValidationError(`metadata field ${field}: ${typeof v} is not JSON`, { field });
  }
}

/** JSON text that keeps -0 (JSON.parse("-0") is -0); only used when -0 is present. */
function stringifyExact(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : JSON.stringify(v);
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stringifyExact).join(',')}]`;
  const parts: string[] = [];
  for (const [k, item] of Object.entries(v)) {
    if (item !== undefined) parts.push(`${JSON.stringify(k)}:${stringifyExact(item)}`);
  }
  return `{${parts.join(',')}}`;
}

function kindOf(v: unknown): number {
  switch (typeof v) {
    case 'number':
      return K_NUMBER;
    case 'string':
      // Lone surrogates do not survive UTF-8; JSON text escapes them, so use a json column.
      return isWellFormed(v) ? K_STRING : K_OTHER;
    case 'boolean':
      return K_BOOL;
    default:
      return K_OTHER;
  }
}

function typeFromKinds(kinds: number): ColumnType {
  if (kinds === K_NUMBER) return 'number';
  if (kinds === K_STRING) return 'string';
  if (kinds === K_BOOL) return 'bool';
  // Mixed, nested, or never present: json holds anything (all-missing costs 4 bytes a row).
  return 'json';
}

const own = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function valueAt(rows: ReadonlyArray<Metadata | undefined>, r: number, name: string): unknown {
  const m = rows[r];
  if (m === undefined || m === null) return undefined;
  if (typeof m !== 'object' || Array.isArray(m)) {
    throw new ValidationError(`metadata of row ${r} must be an object`, { field: 'metadata', details: { row: r } });
  }
  return own(m, name) ? (m as Record<string, unknown>)[name] : undefined;
}

/** Builds the columnar blob. `fields` limits (and orders) the columns; default: every key seen. */
export function encodeColumns(rows: ReadonlyArray<Metadata | undefined>, fields?: readonly string[]): Uint8Array {
  assertLittleEndian();
  const count = rows.length;
  if (count > MAX_ROWS) throw new ValidationError(`too many rows (${count})`, { field: 'rows' });

  const kinds = new Map<string, number>();
  if (fields !== undefined) {
    for (const f of fields) {
      if (typeof f !== 'string') throw new ValidationError('field names must be strings', { field: 'fields' });
      if (kinds.has(f)) throw new ValidationError(`duplicate field ${JSON.stringify(f)}`, { field: 'fields' });
      kinds.set(f, 0);
    }
  }
  for (let r = 0; r < count; r++) {
    const m = rows[r];
    if (m === undefined || m === null) continue;
    if (typeof m !== 'object' || Array.isArray(m)) {
      throw new ValidationError(`metadata of row ${r} must be an object`, { field: 'metadata', details: { row: r } });
    }
    for (const name of Object.keys(m)) {
      const v = (m as Record<string, unknown>)[name];
      const prev = kinds.get(name);
      if (prev === undefined && fields !== undefined) continue;
      kinds.set(name, (prev ?? 0) | (v === undefined || v === null ? 0 : kindOf(v)));
    }
  }

  const parts: { offset: number; bytes: Uint8Array }[] = [];
  let cursor = 0;
  const add = (bytes: Uint8Array): [number, number] => {
    const offset = cursor;
    parts.push({ offset, bytes });
    cursor = align8(cursor + bytes.length);
    return [offset, bytes.length];
  };
  const asBytes = (a: Float64Array | Uint32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

  const columns: Record<string, unknown>[] = [];
  for (const [name, k] of kinds) {
    const type = typeFromKinds(k);
    const col: Record<string, unknown> = { name, type };
    if (type === 'number') {
      const values = new Float64Array(count);
      const present = new Uint8Array(Math.ceil(count / 8));
      for (let r = 0; r < count; r++) {
        const v = valueAt(rows, r, name);
        if (typeof v !== 'number') continue;
        if (!Number.isFinite(v))
          throw new ValidationError(`metadata field ${name}: numbers must be finite`, { field: name });
        values[r] = v;
        present[r >> 3] |= 1 << (r & 7);
      }
      col.values = add(asBytes(values));
      col.present = add(present);
    } else if (type === 'string') {
      const codes = new Uint32Array(count);
      const dict = new Map<string, number>();
      for (let r = 0; r < count; r++) {
        const v = valueAt(rows, r, name);
        if (typeof v !== 'string') {
          codes[r] = MISSING_CODE;
          continue;
        }
        let code = dict.get(v);
        if (code === undefined) dict.set(v, (code = dict.size));
        codes[r] = code;
      }
      const table = encodeUtf8Table([...dict.keys()]);
      col.codes = add(asBytes(codes));
      col.dictOffsets = add(asBytes(table.offsets));
      col.dict = add(table.blob);
    } else if (type === 'bool') {
      const values = new Uint8Array(count);
      for (let r = 0; r < count; r++) {
        const v = valueAt(rows, r, name);
        values[r] = v === true ? 1 : v === false ? 0 : BOOL_MISSING;
      }
      col.values = add(values);
    } else {
      const cells = new Array<string>(count);
      for (let r = 0; r < count; r++) {
        const v = valueAt(rows, r, name);
        cells[r] = v === undefined || v === null ? '' : checkJson(v, name) ? stringifyExact(v) : JSON.stringify(v);
      }
      const table = encodeUtf8Table(cells);
      col.offsets = add(asBytes(table.offsets));
      col.text = add(table.blob);
    }
    columns.push(col);
  }

  const header = Buffer.from(JSON.stringify({ count, columns }), 'utf8');
  const dataStart = align8(PREAMBLE + header.length);
  // No padding after the last section, so any truncation cuts into a section.
  const end = parts.length === 0 ? 0 : parts[parts.length - 1].offset + parts[parts.length - 1].bytes.length;
  const out = new Uint8Array(dataStart + end);
  out.set(COLUMNS_MAGIC, 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(4, COLUMNS_FORMAT_VERSION, true);
  dv.setUint32(8, header.length, true);
  out.set(header, PREAMBLE);
  for (const p of parts) out.set(p.bytes, dataStart + p.offset);
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoding

interface ColumnLayout {
  name: string;
  type: ColumnType;
  /** Absolute [offset, length] within the blob, per section in SECTIONS order. */
  ranges: [number, number][];
}

export interface ColumnsHeader {
  count: number;
  columns: ColumnLayout[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Parses and bounds-checks the preamble and header without touching column data. Cheap
 * enough for the shard decoder to cross-check row counts.
 */
export function readColumnsHeader(bytes: Uint8Array): ColumnsHeader {
  if (bytes.length < PREAMBLE) throw new CorruptDataError('columns: truncated');
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== COLUMNS_MAGIC[i]) throw new CorruptDataError('columns: not a column blob (bad magic)');
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const version = dv.getUint32(4, true);
  if (version !== COLUMNS_FORMAT_VERSION) {
    throw new UnsupportedFormatError(`columns: format version ${version} is not supported`, { details: { version } });
  }
  const headerLength = dv.getUint32(8, true);
  if (PREAMBLE + headerLength > bytes.length) throw new CorruptDataError('columns: truncated header');
  let raw: unknown;
  try {
    raw = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREAMBLE, PREAMBLE + headerLength)),
    );
  } catch (cause) {
    throw new CorruptDataError('columns: header is not valid JSON', { cause });
  }
  const bad = (why: string): never => {
    throw new CorruptDataError(`columns: bad header (${why})`);
  };
  if (!isObject(raw) || !isUint(raw.count) || raw.count > MAX_ROWS || !Array.isArray(raw.columns)) bad('count/columns');
  const h = raw as { count: number; columns: unknown[] };
  const count = h.count;
  const dataStart = align8(PREAMBLE + headerLength);
  const seen = new Set<string>();
  const columns = h.columns.map((c): ColumnLayout => {
    if (!isObject(c) || typeof c.name !== 'string' || !COLUMN_TYPES.includes(c.type as ColumnType)) bad('column entry');
    const col = c as { name: string; type: ColumnType } & Record<string, unknown>;
    if (seen.has(col.name)) bad(`duplicate column ${col.name}`);
    seen.add(col.name);
    const names = SECTIONS[col.type];
    if (Object.keys(col).length !== names.length + 2) bad(`column ${col.name} has unexpected keys`);
    const ranges = names.map((s): [number, number] => {
      const r = col[s];
      if (!Array.isArray(r) || r.length !== 2 || !isUint(r[0]) || !isUint(r[1]) || r[0] % 8 !== 0)
        bad(`${col.name}.${s}`);
      const [off, len] = r as [number, number];
      if (dataStart + off + len > bytes.length) throw new CorruptDataError(`columns: ${col.name}.${s} out of bounds`);
      return [dataStart + off, len];
    });
    const len = (i: number): number => ranges[i][1];
    const sizeOk =
      col.type === 'number'
        ? len(0) === count * 8 && len(1) === Math.ceil(count / 8)
        : col.type === 'string'
          ? len(0) === count * 4 && len(1) >= 4 && len(1) % 4 === 0
          : col.type === 'bool'
            ? len(0) === count
            : len(0) === (count + 1) * 4;
    if (!sizeOk) bad(`${col.name}: section sizes do not match ${count} rows`);
    return { name: col.name, type: col.type, ranges };
  });
  return { count, columns };
}

interface Column {
  readonly type: ColumnType;
  /** Top-level value of a row; undefined when missing. `fresh` asks for an unshared object. */
  value(row: number, fresh: boolean): unknown;
}

class NumberColumn implements Column {
  readonly type = 'number';
  constructor(
    private readonly values: Float64Array,
    private readonly present: Uint8Array,
  ) {}
  value(row: number): unknown {
    return (this.present[row >> 3] >> (row & 7)) & 1 ? this.values[row] : undefined;
  }
}

class StringColumn implements Column {
  readonly type = 'string';
  private dict: string[] | undefined;
  constructor(
    private readonly codes: Uint32Array,
    private readonly dictOffsets: Uint32Array,
    private readonly dictBlob: Uint8Array,
    private readonly name: string,
  ) {}
  value(row: number): unknown {
    const code = this.codes[row];
    if (code === MISSING_CODE) return undefined;
    // Decoded on first use: many shards are loaded and searched without any filter.
    this.dict ??= decodeUtf8Table(this.dictOffsets, this.dictBlob, `columns: ${this.name} dictionary`);
    return this.dict[code];
  }
}

class BoolColumn implements Column {
  readonly type = 'bool';
  constructor(private readonly values: Uint8Array) {}
  value(row: number): unknown {
    const v = this.values[row];
    return v === 1 ? true : v === 0 ? false : undefined;
  }
}

class JsonColumn implements Column {
  readonly type = 'json';
  private text: string[] | undefined;
  private readonly cacheRows = new Int32Array(JSON_CACHE_SLOTS).fill(-1);
  private readonly cacheValues = new Array<unknown>(JSON_CACHE_SLOTS);
  constructor(
    private readonly offsets: Uint32Array,
    private readonly blob: Uint8Array,
    private readonly name: string,
  ) {}
  value(row: number, fresh: boolean): unknown {
    if (!(row >= 0 && row < this.offsets.length - 1) || this.offsets[row] === this.offsets[row + 1]) return undefined;
    const slot = row & (JSON_CACHE_SLOTS - 1);
    if (!fresh && this.cacheRows[slot] === row) return this.cacheValues[slot];
    this.text ??= decodeUtf8Table(this.offsets, this.blob, `columns: ${this.name} text`);
    let v: unknown;
    try {
      v = JSON.parse(this.text[row]);
    } catch (cause) {
      throw new CorruptDataError(`columns: ${this.name} row ${row} is not valid JSON`, { cause });
    }
    if (!fresh) {
      this.cacheRows[slot] = row;
      this.cacheValues[slot] = v;
    }
    return v;
  }
}

const CANONICAL_INDEX = /^(?:0|[1-9][0-9]*)$/;

/** One step into a JSON value, own properties only (never the prototype chain). */
function step(cur: unknown, key: string | number): unknown {
  if (typeof cur !== 'object' || cur === null) return undefined;
  if (Array.isArray(cur)) {
    const i = typeof key === 'number' ? key : CANONICAL_INDEX.test(key) ? Number(key) : -1;
    return Number.isInteger(i) && i >= 0 && i < cur.length ? (cur[i] as unknown) : undefined;
  }
  const k = String(key);
  return own(cur, k) ? (cur as Record<string, unknown>)[k] : undefined;
}

/** Decoded columns; all views point into the input bytes. */
export class ColumnSet {
  readonly fields: string[];
  readonly count: number;
  private readonly columns: Map<string, Column>;

  /** @internal use `decodeColumns`. */
  constructor(count: number, columns: Map<string, Column>) {
    this.count = count;
    this.columns = columns;
    this.fields = [...columns.keys()];
  }

  fieldType(field: string): ColumnType | undefined {
    return this.columns.get(field)?.type;
  }

  /**
   * A reader for one field path. Missing values (and rows out of range) read as
   * undefined; a stored `null` inside a json value reads as null. Objects returned for
   * json fields are shared with a cache: treat them as read-only.
   */
  getter(ref: FieldRef): (row: number) => unknown {
    const col = this.columns.get(ref.field);
    if (col === undefined) return () => undefined;
    const count = this.count;
    if (ref.path.length === 0) return (row) => (row >= 0 && row < count ? col.value(row, false) : undefined);
    if (col.type !== 'json') return () => undefined;
    const path = [...ref.path];
    return (row) => {
      let cur = row >= 0 && row < count ? col.value(row, false) : undefined;
      for (let i = 0; i < path.length && cur !== undefined; i++) cur = step(cur, path[i]);
      return cur;
    };
  }

  /** The filterable metadata of one row, as a fresh object. */
  row(row: number): Metadata {
    if (!Number.isInteger(row) || row < 0 || row >= this.count) {
      throw new ValidationError(`row ${row} out of range 0..${this.count - 1}`, { field: 'row' });
    }
    const out: Metadata = {};
    for (const [name, col] of this.columns) {
      const v = col.value(row, true);
      if (v === undefined) continue;
      // A "__proto__" field is data, not a prototype switch.
      Object.defineProperty(out, name, { value: v as JsonValue, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}

/**
 * Decodes a column blob. Lazy: only views are made here plus cheap O(rows) integrity
 * scans of the integer sections; strings are decoded and json parsed on first access.
 */
export function decodeColumns(bytes: Uint8Array): ColumnSet {
  assertLittleEndian();
  const { count, columns: layouts } = readColumnsHeader(bytes);
  const columns = new Map<string, Column>();
  const u8 = ([off, len]: [number, number]): Uint8Array => bytes.subarray(off, off + len);
  const u32 = ([off, len]: [number, number]): Uint32Array => alignedView(Uint32Array, bytes, off, len / 4);
  for (const { name, type, ranges } of layouts) {
    const where = `columns: ${name}`;
    if (type === 'number') {
      columns.set(name, new NumberColumn(alignedView(Float64Array, bytes, ranges[0][0], count), u8(ranges[1])));
    } else if (type === 'string') {
      const codes = u32(ranges[0]);
      const dictOffsets = u32(ranges[1]);
      const dict = u8(ranges[2]);
      checkOffsets(dictOffsets, dict.length, `${where} dictionary`);
      const size = dictOffsets.length - 1;
      for (let r = 0; r < count; r++) {
        const c = codes[r];
        if (c >= size && c !== MISSING_CODE) throw new CorruptDataError(`${where}: row ${r} has code ${c} ≥ ${size}`);
      }
      columns.set(name, new StringColumn(codes, dictOffsets, dict, name));
    } else if (type === 'bool') {
      const values = u8(ranges[0]);
      for (let r = 0; r < count; r++) {
        if (values[r] > BOOL_MISSING) throw new CorruptDataError(`${where}: row ${r} has bool byte ${values[r]}`);
      }
      columns.set(name, new BoolColumn(values));
    } else {
      const offsets = u32(ranges[0]);
      const text = u8(ranges[1]);
      checkOffsets(offsets, text.length, `${where} text`);
      columns.set(name, new JsonColumn(offsets, text, name));
    }
  }
  return new ColumnSet(count, columns);
}
