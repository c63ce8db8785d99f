/**
 * Rows for `shoal upsert --file`, read as a stream. The rules follow the bulk-import formats (docs/imports.md)
 * so that a file that imports also upserts:
 * - JSONL: `{"id", "values" | "vector" | "embedding", "metadata"?}` per line; other top-level fields are
 *   merged into metadata (`metadata` wins); blank lines are skipped.
 * - CSV (RFC 4180, header required): `id`, then the vector as one JSON-array column (`vector`, `values` or
 *   `embedding`) or as columns `v0..v{d-1}`; other columns are metadata (`true`/`false` and plain decimals
 *   become booleans and numbers, empty cells are left out, the rest are strings).
 * - .npy: 2-D little-endian float32, C order; ids are the row numbers, after `--id-prefix` when given.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Metadata, VectorInput } from '../types.js';
import { UsageError } from './output.js';

export type FileFormat = 'jsonl' | 'csv' | 'npy';

export interface RowSource {
  format: FileFormat;
  /** Rows in the file, when it can be known cheaply (the .npy header; a line count for text). */
  total(): Promise<number | undefined>;
  rows(): AsyncGenerator<VectorInput>;
}

export function formatOf(file: string, explicit?: string): FileFormat {
  const f = (explicit ?? path.extname(file).slice(1)).toLowerCase();
  if (f === 'jsonl' || f === 'ndjson' || f === 'json') return 'jsonl';
  if (f === 'csv') return 'csv';
  if (f === 'npy') return 'npy';
  throw new UsageError(`cannot tell the format of ${file}: use .jsonl, .csv or .npy, or --format jsonl|csv|npy`);
}

export function openRows(file: string, options: { format?: string; idPrefix?: string } = {}): RowSource {
  const format = formatOf(file, options.format);
  if (format === 'npy') return npyRows(file, options.idPrefix ?? '');
  return {
    format,
    total: async () => {
      const lines = await countLines(file);
      // A CSV's header is not a row (a quoted field spanning lines makes this an upper bound).
      return format === 'csv' ? Math.max(0, lines - 1) : lines;
    },
    rows: () => (format === 'jsonl' ? jsonlRows(file) : csvRows(file)),
  };
}

async function countLines(file: string): Promise<number> {
  let lines = 0;
  let last = 10;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    if (chunk.length > 0) last = chunk[chunk.length - 1];
  }
  return last === 10 ? lines : lines + 1;
}

const VECTOR_KEYS = ['values', 'vector', 'embedding'] as const;

function bad(file: string, where: string, message: string): UsageError {
  return new UsageError(`${file}:${where}: ${message}`);
}

async function* jsonlRows(file: string): AsyncGenerator<VectorInput> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (line.trim() === '') continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (err) {
      throw bad(file, String(n), `not JSON (${(err as Error).message})`);
    }
    if (!rec || typeof rec !== 'object' || Array.isArray(rec)) throw bad(file, String(n), 'not a JSON object');
    const { id, metadata, ...rest } = rec as Record<string, unknown>;
    const key = VECTOR_KEYS.find((k) => k in rest);
    if (id === undefined) throw bad(file, String(n), 'no "id"');
    if (!key || !Array.isArray(rest[key])) throw bad(file, String(n), 'no "values" array');
    const values = rest[key] as number[];
    for (const k of VECTOR_KEYS) delete rest[k];
    if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) {
      throw bad(file, String(n), '"metadata" must be an object');
    }
    const meta = { ...(rest as Metadata), ...((metadata as Metadata | undefined) ?? {}) };
    yield Object.keys(meta).length > 0 ? { id: id as string, values, metadata: meta } : { id: id as string, values };
  }
}

/** RFC 4180 records (quoted fields may hold commas, quotes as `""` and newlines). */
async function* csvRecords(file: string): AsyncGenerator<{ fields: string[]; line: number }> {
  let field = '';
  let fields: string[] = [];
  let quoted = false;
  let afterQuote = false;
  let line = 1;
  let recordLine = 1;
  for await (const chunk of createReadStream(file, 'utf8') as AsyncIterable<string>) {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (quoted) {
        if (c === '"') {
          quoted = false;
          afterQuote = true;
        } else {
          if (c === '\n') line++;
          field += c;
        }
      } else if (c === '"') {
        if (afterQuote) field += '"';
        quoted = true;
        afterQuote = false;
      } else if (c === ',') {
        fields.push(field);
        field = '';
        afterQuote = false;
      } else if (c === '\n') {
        fields.push(field.endsWith('\r') && !afterQuote ? field.slice(0, -1) : field);
        if (!(fields.length === 1 && fields[0] === '')) yield { fields, line: recordLine };
        fields = [];
        field = '';
        afterQuote = false;
        line++;
        recordLine = line;
      } else if (c !== '\r' || afterQuote === false) {
        field += c;
        afterQuote = false;
      }
    }
  }
  if (quoted) throw bad(file, String(recordLine), 'unterminated quoted field');
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    yield { fields, line: recordLine };
  }
}

const DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/;

function typed(text: string): Metadata[string] | undefined {
  if (text === '') return undefined;
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (DECIMAL.test(text)) return Number(text);
  return text;
}

async function* csvRows(file: string): AsyncGenerator<VectorInput> {
  let header: string[] | undefined;
  let idCol = -1;
  let vecCol = -1;
  let dimCols: number[] = [];
  for await (const { fields, line } of csvRecords(file)) {
    if (!header) {
      header = fields.map((h) => h.trim());
      idCol = header.indexOf('id');
      vecCol = header.findIndex((h) => (VECTOR_KEYS as readonly string[]).includes(h));
      for (let d = 0; header.includes(`v${d}`); d++) dimCols.push(header.indexOf(`v${d}`));
      if (idCol === -1) throw bad(file, '1', 'the header has no "id" column');
      if (vecCol === -1 && dimCols.length === 0) {
        throw bad(file, '1', 'the header needs a "vector" (JSON array) column or columns v0, v1, …');
      }
      if (vecCol !== -1) dimCols = [];
      continue;
    }
    if (fields.length !== header.length) {
      throw bad(file, String(line), `${fields.length} fields, the header has ${header.length}`);
    }
    let values: number[];
    if (vecCol !== -1) {
      try {
        values = JSON.parse(fields[vecCol]) as number[];
      } catch {
        throw bad(file, String(line), `column ${header[vecCol]} is not a JSON array`);
      }
      if (!Array.isArray(values)) throw bad(file, String(line), `column ${header[vecCol]} is not a JSON array`);
    } else {
      values = dimCols.map((c) => Number(fields[c]));
    }
    const metadata: Metadata = {};
    header.forEach((h, i) => {
      if (i === idCol || i === vecCol || dimCols.includes(i)) return;
      const v = typed(fields[i]);
      if (v !== undefined) metadata[h] = v;
    });
    const id = fields[idCol];
    yield Object.keys(metadata).length > 0 ? { id, values, metadata } : { id, values };
  }
}

interface NpyHeader {
  rows: number;
  dim: number;
  dataOffset: number;
}

async function npyHeader(file: string): Promise<NpyHeader> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(12);
    await fh.read(head, 0, 12, 0);
    if (head.readUInt8(0) !== 0x93 || head.toString('latin1', 1, 6) !== 'NUMPY') {
      throw bad(file, '0', 'not a .npy file (no \\x93NUMPY magic)');
    }
    const major = head.readUInt8(6);
    const lenBytes = major === 1 ? 2 : 4;
    const headerLen = lenBytes === 2 ? head.readUInt16LE(8) : head.readUInt32LE(8);
    const start = 8 + lenBytes;
    const text = Buffer.alloc(headerLen);
    await fh.read(text, 0, headerLen, start);
    const dict = text.toString('latin1');
    const descr = /'descr':\s*'([^']*)'/.exec(dict)?.[1];
    const fortran = /'fortran_order':\s*(True|False)/.exec(dict)?.[1];
    const shape = /'shape':\s*\(([^)]*)\)/.exec(dict)?.[1];
    if (descr !== '<f4') throw bad(file, 'header', `dtype ${descr}: only little-endian float32 ('<f4') is read`);
    if (fortran !== 'False') throw bad(file, 'header', 'Fortran order: save a C-order array');
    const dims = (shape ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map(Number);
    if (dims.length !== 2) throw bad(file, 'header', `shape (${shape}): a 2-D array (rows, dimension) is needed`);
    return { rows: dims[0], dim: dims[1], dataOffset: start + headerLen };
  } finally {
    await fh.close();
  }
}

function npyRows(file: string, idPrefix: string): RowSource {
  return {
    format: 'npy',
    total: async () => (await npyHeader(file)).rows,
    async *rows() {
      const { rows, dim, dataOffset } = await npyHeader(file);
      const rowBytes = dim * 4;
      const perRead = Math.max(1, Math.floor((4 << 20) / rowBytes));
      const fh = await open(file, 'r');
      try {
        for (let r = 0; r < rows; r += perRead) {
          const n = Math.min(perRead, rows - r);
          const buf = Buffer.alloc(n * rowBytes);
          const { bytesRead } = await fh.read(buf, 0, buf.length, dataOffset + r * rowBytes);
          if (bytesRead < buf.length) throw bad(file, `row ${r}`, 'the file is shorter than its header says');
          for (let i = 0; i < n; i++) {
            const values = new Float32Array(dim);
            for (let j = 0; j < dim; j++) values[j] = buf.readFloatLE(i * rowBytes + j * 4);
            yield { id: `${idPrefix}${r + i}`, values };
          }
        }
      } finally {
        await fh.close();
      }
    },
  };
}
