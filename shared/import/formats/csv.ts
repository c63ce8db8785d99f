/**
 * CSV (RFC 4180: `,` separated, `"` quoted, `""` escapes, quoted fields may span lines) with a
 * header line. Columns: `id` (required); the vector either as one column `vector` (or `values`,
 * `embedding`) holding a JSON array, or as `v0..v{d-1}` numeric columns; every other column becomes
 * metadata, typed by its text (`true`/`false` → boolean, a plain decimal number → number, empty →
 * absent, anything else → string). Rows are numbered by the physical line they start on (the
 * header is line 1).
 */
import type { JsonValue } from '../../types.js';
import { UnreadableFileError, type ByteSource, type Checkpoint, type ImportRow, type ReaderOptions } from '../types.js';
import { assertText, makeRow, readLines, rejectRow, sniff, type Line } from './common.js';

const VECTOR_COLUMNS = ['vector', 'values', 'embedding'];
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** Splits one CSV record into fields; undefined when a quote is malformed. */
export function parseCsvRecord(text: string): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  const n = text.length;
  for (;;) {
    if (i < n && text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) return undefined;
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
      if (i === n) return fields;
      if (text[i] !== ',') return undefined;
      i++;
    } else {
      const c = text.indexOf(',', i);
      const end = c < 0 ? n : c;
      const raw = text.slice(i, end);
      if (raw.includes('"')) return undefined;
      fields.push(raw);
      if (c < 0) return fields;
      i = c + 1;
    }
  }
}

function countQuotes(s: string): number {
  let c = 0;
  for (let i = s.indexOf('"'); i >= 0; i = s.indexOf('"', i + 1)) c++;
  return c;
}

interface CsvRecord {
  /** First physical line of the record. */
  line: number;
  text?: string;
  error?: Line['error'];
  last: Line;
}

/** Joins physical lines into records (a record continues while a quoted field is open). */
async function* records(lines: AsyncIterable<Line>): AsyncGenerator<CsvRecord> {
  let parts: string[] = [];
  let quotes = 0;
  let startLine = 0;
  let lastLine: Line | undefined;
  for await (const line of lines) {
    lastLine = line;
    if (line.error) {
      if (parts.length) {
        yield { line: startLine, error: { code: 'BAD_ROW', message: 'unterminated quoted field' }, last: line };
        parts = [];
        quotes = 0;
      }
      yield { line: line.line, error: line.error, last: line };
      continue;
    }
    const text = line.text ?? '';
    if (!parts.length) startLine = line.line;
    parts.push(text);
    quotes += countQuotes(text);
    if (quotes % 2 === 0) {
      yield { line: startLine, text: parts.join('\n'), last: line };
      parts = [];
      quotes = 0;
    } else if (parts.length > 10_000) {
      yield { line: startLine, error: { code: 'BAD_ROW', message: 'unterminated quoted field' }, last: line };
      parts = [];
      quotes = 0;
    }
  }
  if (parts.length && lastLine)
    yield {
      line: startLine,
      error: { code: 'BAD_ROW', message: 'unterminated quoted field at end of file' },
      last: lastLine,
    };
}

interface Layout {
  header: string[];
  idIndex: number;
  vectorIndex?: number;
  /** Column index of v0..v{d-1}. */
  vIndexes?: number[];
  meta: Array<{ name: string; index: number }>;
}

function layout(header: string[], dimension: number, name: string): Layout {
  const trimmed = header.map((h) => h.trim());
  const idIndex = trimmed.indexOf('id');
  if (idIndex < 0)
    throw new UnreadableFileError(
      `${name}: the CSV header has no "id" column (header: ${trimmed.slice(0, 10).join(',')})`,
    );
  const seen = new Set<string>();
  for (const h of trimmed) {
    if (seen.has(h)) throw new UnreadableFileError(`${name}: the CSV header repeats the column "${h}"`);
    seen.add(h);
  }
  const vectorIndex = trimmed.findIndex((h) => VECTOR_COLUMNS.includes(h));
  const vCols = trimmed.map((h, i) => ({ m: /^v(\d+)$/.exec(h), i })).filter((x) => x.m !== null);
  if (vectorIndex >= 0 && vCols.length)
    throw new UnreadableFileError(
      `${name}: the CSV header has both a "${trimmed[vectorIndex]}" column and v0.. columns`,
    );
  let vIndexes: number[] | undefined;
  if (vCols.length) {
    const byNumber = new Map(vCols.map((x) => [Number(x.m![1]), x.i]));
    if (vCols.length !== dimension) {
      throw new UnreadableFileError(
        `${name}: the CSV has ${vCols.length} vector columns (v0..v${vCols.length - 1}); ` +
          `the collection has dimension ${dimension}`,
      );
    }
    vIndexes = [];
    for (let j = 0; j < dimension; j++) {
      const at = byNumber.get(j);
      if (at === undefined)
        throw new UnreadableFileError(
          `${name}: the CSV header lacks column v${j} (vector columns must be v0..v${dimension - 1})`,
        );
      vIndexes.push(at);
    }
  } else if (vectorIndex < 0) {
    throw new UnreadableFileError(
      `${name}: the CSV header has no vector column ("vector" holding a JSON array, or v0..v${dimension - 1})`,
    );
  }
  const used = new Set([idIndex, ...(vectorIndex >= 0 ? [vectorIndex] : []), ...(vIndexes ?? [])]);
  const meta = trimmed.flatMap((h, index) => (used.has(index) ? [] : [{ name: h, index }]));
  return { header: trimmed, idIndex, vectorIndex: vectorIndex >= 0 ? vectorIndex : undefined, vIndexes, meta };
}

function typed(text: string): JsonValue | undefined {
  if (text === '') return undefined;
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (NUMBER.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  return text;
}

async function readHeader(source: ByteSource, gzip: boolean): Promise<{ header: string[]; last: Line }> {
  for await (const rec of records(readLines(source, { gzip }))) {
    if (rec.error || rec.text === undefined)
      throw new UnreadableFileError(`${source.name}: the CSV header cannot be read: ${rec.error?.message ?? 'empty'}`);
    const fields = parseCsvRecord(rec.text);
    if (!fields) throw new UnreadableFileError(`${source.name}: the CSV header is malformed (bad quoting)`);
    return { header: fields, last: rec.last };
  }
  throw new UnreadableFileError(`${source.name} is empty: a CSV import needs a header line`);
}

export async function* readCsv(
  source: ByteSource,
  opts: ReaderOptions & { gzip?: boolean },
): AsyncGenerator<ImportRow> {
  const gzip = opts.gzip ?? false;
  if (!gzip) assertText(await sniff(source), source.name, 'CSV');
  const { header, last } = await readHeader(source, gzip);
  const lay = layout(header, opts.dimension, source.name);
  const from: Checkpoint =
    opts.from && opts.from.rows > 0 ? opts.from : { rows: last.line, ...(gzip ? {} : { offset: last.nextOffset }) };
  for await (const rec of records(readLines(source, { gzip, from }))) {
    const base = {
      rowNumber: rec.line,
      next: { rows: rec.last.line, ...(gzip ? {} : { offset: rec.last.nextOffset }) },
      bytesRead: rec.last.bytesRead,
    };
    if (rec.error) {
      yield rejectRow(base, rec.error);
      continue;
    }
    const text = rec.text ?? '';
    if (text.trim() === '') continue;
    const fields = parseCsvRecord(text);
    if (!fields) {
      yield rejectRow(base, { code: 'BAD_ROW', message: 'malformed CSV quoting' });
      continue;
    }
    if (fields.length !== lay.header.length) {
      yield rejectRow(base, {
        code: 'BAD_ROW',
        message: `row has ${fields.length} fields; the header has ${lay.header.length}`,
      });
      continue;
    }
    let values: unknown;
    if (lay.vIndexes) {
      const arr = new Array<unknown>(lay.vIndexes.length);
      for (let j = 0; j < arr.length; j++) {
        const t = fields[lay.vIndexes[j]].trim();
        arr[j] = t === '' ? null : Number(t);
        if (t !== '' && Number.isNaN(arr[j]) && !/^[+-]?nan$/i.test(t)) arr[j] = t;
      }
      values = arr;
    } else {
      const cell = fields[lay.vectorIndex!].trim();
      if (cell === '') values = undefined;
      else {
        try {
          values = JSON.parse(cell);
        } catch (err) {
          yield rejectRow(base, {
            code: 'BAD_JSON',
            message: `vector column is broken JSON: ${(err as Error).message}`,
          });
          continue;
        }
      }
    }
    let metadata: Record<string, JsonValue> | undefined;
    for (const m of lay.meta) {
      const v = typed(fields[m.index]);
      if (v === undefined) continue;
      (metadata ??= {})[m.name] = v;
    }
    yield makeRow(base, fields[lay.idIndex].trim(), values, metadata, opts.dimension);
  }
}
