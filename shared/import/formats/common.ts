/**
 * What every format shares: turning a parsed record (id, vector, metadata) into an `ImportRow`
 * with the same rules as the HTTP API (`shared/validation.ts`: ids, metadata limits, finite
 * float32 components) plus the collection's dimension, and a line splitter over a byte stream
 * that knows each line's byte offset (text formats resume there).
 */
import { createGunzip } from 'node:zlib';
import { FLOAT32_MAX, idSchema, metadataSchema } from '../../validation.js';
import type { Metadata } from '../../types.js';
import { UnreadableFileError, type ByteSource, type Checkpoint, type ImportRow, type RowError } from '../types.js';

/** Lines longer than this are rejected (LINE_TOO_LONG) and skipped: memory stays bounded without newlines. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

function reject(code: RowError['code'], message: string): { error: RowError } {
  return { error: { code, message } };
}

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 30 ? `"${v.slice(0, 30)}…"` : JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

export function checkId(raw: unknown): { id: string } | { error: RowError } {
  if (raw === undefined || raw === null || raw === '') return reject('MISSING_ID', 'missing id');
  if (typeof raw === 'bigint') raw = raw >= 0n && raw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(raw) : String(raw);
  const parsed = idSchema.safeParse(raw);
  if (!parsed.success) return reject('BAD_ID', `id ${parsed.error.issues[0]?.message ?? 'is invalid'}`);
  return { id: parsed.data };
}

/** Vector components from an array-like of numbers (JSON array, typed array). */
export function checkValues(raw: unknown, dimension: number): { values: Float32Array } | { error: RowError } {
  if (raw === undefined || raw === null) return reject('MISSING_VECTOR', 'missing vector ("values" or "vector")');
  const isTyped = raw instanceof Float32Array || raw instanceof Float64Array;
  if (!Array.isArray(raw) && !isTyped)
    return reject('BAD_VECTOR', `vector must be an array of numbers, got ${describeValue(raw)}`);
  const arr = raw as ArrayLike<unknown>;
  if (arr.length !== dimension) {
    return reject('WRONG_DIMENSION', `vector has ${arr.length} dimensions; the collection has ${dimension}`);
  }
  const out = new Float32Array(dimension);
  for (let j = 0; j < dimension; j++) {
    const v = arr[j];
    if (typeof v !== 'number') return reject('BAD_VECTOR', `vector[${j}] is not a number: ${describeValue(v)}`);
    if (!Number.isFinite(v)) return reject('NOT_FINITE', `vector[${j}] is ${v}`);
    if (Math.abs(v) > FLOAT32_MAX) return reject('NOT_FINITE', `vector[${j}] = ${v} overflows float32`);
    out[j] = v;
  }
  return { values: out };
}

export function checkMetadata(raw: unknown): { metadata?: Metadata } | { error: RowError } {
  if (raw === undefined || raw === null) return {};
  const parsed = metadataSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue && issue.path.length ? ` at ${issue.path.join('.')}` : '';
    return reject('BAD_METADATA', `metadata${at} ${issue?.message ?? 'is invalid'}`);
  }
  return Object.keys(parsed.data).length ? { metadata: parsed.data } : {};
}

/** The checked row, or the first problem found (id first, then vector, then metadata). */
export function makeRow(
  base: { rowNumber: number; next: Checkpoint; bytesRead: number },
  rawId: unknown,
  rawValues: unknown,
  rawMetadata: unknown,
  dimension: number,
): ImportRow {
  const id = checkId(rawId);
  if ('error' in id) return { ...base, error: id.error };
  const values = checkValues(rawValues, dimension);
  if ('error' in values) return { ...base, id: id.id, error: values.error };
  const meta = checkMetadata(rawMetadata);
  if ('error' in meta) return { ...base, id: id.id, error: meta.error };
  return meta.metadata
    ? { ...base, id: id.id, values: values.values, metadata: meta.metadata }
    : { ...base, id: id.id, values: values.values };
}

export function rejectRow(
  base: { rowNumber: number; next: Checkpoint; bytesRead: number },
  error: RowError,
  id?: string,
): ImportRow {
  return id === undefined ? { ...base, error } : { ...base, id, error };
}

// -------------------------------------------------------------------------------------------
// Lines

export interface Line {
  /** 1-based physical line number. */
  line: number;
  /** Decoded text without the line terminator; undefined when the line was too long or not UTF-8. */
  text?: string;
  error?: RowError;
  /** Byte offset of the next line (uncompressed stream). */
  nextOffset: number;
  /** Bytes of the object consumed so far (compressed bytes for gzip). */
  bytesRead: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The first bytes of an object, for magic checks. */
export async function sniff(source: ByteSource, n = 4096): Promise<Uint8Array> {
  return source.range(0, Math.min(n, source.size));
}

/** Rejects objects that are not text (NUL bytes, or broken UTF-8 beyond a cut multi-byte sequence). */
export function assertText(head: Uint8Array, name: string, what: string): void {
  if (head.includes(0))
    throw new UnreadableFileError(`${name} is not a ${what} file: it contains binary data (NUL bytes)`);
  let end = head.byteLength;
  // Allow a multi-byte sequence cut at the end of the sniffed window.
  while (end > 0 && end > head.byteLength - 3 && (head[end - 1] & 0xc0) === 0x80) end--;
  if (end > 0 && head[end - 1] >= 0xc0) end--;
  try {
    decoder.decode(head.subarray(0, end));
  } catch {
    throw new UnreadableFileError(`${name} is not a ${what} file: it is not UTF-8 text`);
  }
}

/**
 * Splits an object into lines. Without gzip, reading starts at `from.offset` and line numbers
 * continue from `from.rows`; with gzip, the object is decompressed from its start and the first
 * `from.rows` lines are skipped undecoded. `\n` and `\r\n` end lines; a UTF-8 BOM is dropped.
 */
export async function* readLines(source: ByteSource, opts: { gzip: boolean; from?: Checkpoint }): AsyncGenerator<Line> {
  const from = opts.from ?? { rows: 0, offset: 0 };
  let lineNo = opts.gzip ? 0 : from.rows;
  let offset = opts.gzip ? 0 : (from.offset ?? 0);
  const skip = opts.gzip ? from.rows : 0;
  if (!opts.gzip && from.rows > 0 && from.offset === undefined)
    throw new Error('a text checkpoint needs a byte offset');

  let compressedRead = opts.gzip ? 0 : offset;
  let chunks: AsyncIterable<Uint8Array>;
  if (opts.gzip) {
    const head = await source.range(0, 2);
    if (head.byteLength < 2 || head[0] !== 0x1f || head[1] !== 0x8b) {
      throw new UnreadableFileError(
        `${source.name} is not gzip (bad magic); rename it without .gz if it is not compressed`,
      );
    }
    const gunzip = createGunzip();
    const raw = source.stream(0);
    const feed = (async () => {
      try {
        for await (const c of raw) {
          if (gunzip.destroyed) break;
          compressedRead += c.byteLength;
          if (!gunzip.write(c)) {
            // Wait for room, or for the consumer to stop early (the header read, an error).
            await new Promise<void>((r) => {
              const done = (): void => {
                gunzip.off('drain', done);
                gunzip.off('close', done);
                r();
              };
              gunzip.on('drain', done);
              gunzip.on('close', done);
            });
          }
        }
        if (!gunzip.destroyed) gunzip.end();
      } catch (err) {
        gunzip.destroy(err as Error);
      }
    })();
    chunks = (async function* () {
      try {
        for await (const c of gunzip as AsyncIterable<Buffer>) yield c;
      } catch (err) {
        throw new UnreadableFileError(`${source.name}: gzip data is corrupt: ${(err as Error).message}`, {
          cause: err,
        });
      } finally {
        // Stopped early or failed: tear the pipe down so the feeder stops reading the object.
        gunzip.destroy();
        await feed;
      }
    })();
  } else {
    chunks = (async function* () {
      for await (const c of source.stream(offset)) {
        compressedRead += c.byteLength;
        yield c;
      }
    })();
  }

  let carry: Buffer[] = [];
  let carryBytes = 0;
  let tooLong = false;
  let first = offset === 0;

  const emit = (buf: Buffer, terminatorBytes: number): Line => {
    lineNo++;
    offset += buf.byteLength + terminatorBytes;
    const base = { line: lineNo, nextOffset: offset, bytesRead: opts.gzip ? compressedRead : offset };
    if (lineNo <= skip) {
      tooLong = false;
      return base;
    }
    if (tooLong) {
      tooLong = false;
      return { ...base, error: { code: 'LINE_TOO_LONG', message: `line is longer than ${MAX_LINE_BYTES} bytes` } };
    }
    let b = buf;
    if (b.byteLength && b[b.byteLength - 1] === 0x0d) b = b.subarray(0, b.byteLength - 1);
    if (first && b.byteLength >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
    first = false;
    try {
      return { ...base, text: decoder.decode(b) };
    } catch {
      return { ...base, error: { code: 'BAD_ENCODING', message: 'line is not valid UTF-8' } };
    }
  };

  for await (const chunk of chunks) {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (;;) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (tooLong) {
          offset += buf.byteLength;
        } else {
          carry.push(buf);
          carryBytes += buf.byteLength;
          if (carryBytes > MAX_LINE_BYTES) {
            tooLong = true;
            offset += carryBytes;
            carry = [];
            carryBytes = 0;
          }
        }
        break;
      }
      const part = buf.subarray(0, nl);
      let line: Buffer;
      if (tooLong) {
        offset += part.byteLength;
        line = Buffer.alloc(0);
      } else if (carry.length) {
        carry.push(part);
        line = Buffer.concat(carry, carryBytes + part.byteLength);
        carry = [];
        carryBytes = 0;
      } else {
        line = part;
      }
      const out = emit(line, 1);
      if (out.line > skip) yield out;
      buf = buf.subarray(nl + 1);
    }
  }
  if (carryBytes > 0 || tooLong) {
    const line = Buffer.concat(carry, carryBytes);
    const out = emit(line, 0);
    if (out.line > skip) yield out;
  }
}
