/**
 * The contracts of bulk imports (docs/imports.md): where bytes come from (`ByteSource`), what a
 * format reader yields (`ImportRow`) and where a reader resumes (`Checkpoint`).
 */
import { ShoalError } from '../errors.js';
import type { Metadata } from '../types.js';

/** The formats Shoal imports, detected from the object key's extension. */
export type ImportFormat = 'jsonl' | 'jsonl.gz' | 'csv' | 'csv.gz' | 'parquet' | 'npy';

/**
 * A byte-range-capable, read-only view of one object. `stream(start)` reads [start, size) with one
 * request; `range(start, end)` reads [start, end). Both fail with `ObjectChangedError` when the
 * object no longer has the version (ETag) the job was created for.
 */
export interface ByteSource {
  /** For messages: `s3://bucket/key`. */
  readonly name: string;
  readonly size: number;
  range(start: number, end: number): Promise<Uint8Array>;
  stream(start: number): AsyncIterable<Uint8Array>;
}

/**
 * Where a reader resumes. `rows` counts the units already consumed: physical lines for text
 * formats (CSV's header line included), rows for Parquet and .npy. `offset` is the byte offset of
 * the next unit in the object (text formats without gzip; gzip cannot seek, so `.gz` resumes by
 * re-reading and skipping `rows` lines). `sidecarOffset` is the byte offset of the next line of an
 * .npy file's ids sidecar.
 */
export interface Checkpoint {
  rows: number;
  offset?: number;
  sidecarOffset?: number;
}

/** Why a row was rejected (stable codes, listed in docs/imports.md). */
export type RejectCode =
  | 'BAD_JSON'
  | 'BAD_ROW'
  | 'BAD_ENCODING'
  | 'LINE_TOO_LONG'
  | 'MISSING_ID'
  | 'BAD_ID'
  | 'MISSING_VECTOR'
  | 'BAD_VECTOR'
  | 'WRONG_DIMENSION'
  | 'NOT_FINITE'
  | 'BAD_METADATA'
  /** A JSONL row of raw `inputs` for a collection without an embedding function (docs/models.md). */
  | 'NO_EMBEDDING_FUNCTION';

export interface RowError {
  code: RejectCode;
  message: string;
}

/**
 * One unit of input. `rowNumber` is the 1-based physical line for text formats (the line a
 * record starts on) and the 0-based row index for Parquet and .npy. Exactly one of
 * (`id` + `values`) and `error` is set. `next` is the checkpoint just after this row;
 * `bytesRead` how far into the object (compressed bytes for gzip) the reader got.
 */
export interface ImportRow {
  rowNumber: number;
  id?: string;
  values?: Float32Array;
  /** `values` are the row's raw model input (JSONL `inputs`), to be embedded by the collection's function. */
  raw?: true;
  metadata?: Metadata;
  error?: RowError;
  next: Checkpoint;
  bytesRead: number;
}

export interface ReaderOptions {
  /** The collection's dimension: rows of another length are rejected (or the file, when its header says so). */
  dimension: number;
  /** Raw values per row of the collection's embedding function, when it has one (JSONL `inputs` rows). */
  inputLength?: number;
  /** Resume here (default: the beginning). */
  from?: Checkpoint;
}

/** A format reader: validates the file's header when iteration starts, then yields rows. */
export type RowReader = AsyncIterable<ImportRow>;

/**
 * The file cannot be read at all (bad magic, bad header, wrong dtype, dimension mismatch in a
 * header, not gzip). Thrown before any row is yielded; fails the job with this message.
 */
export class UnreadableFileError extends ShoalError {
  readonly code = 'UNREADABLE_FILE';
  readonly statusCode = 400;
}

/** The object was replaced (another ETag) while the job ran: the job fails, the new version gets its own job. */
export class ObjectChangedError extends ShoalError {
  readonly code = 'OBJECT_CHANGED';
  readonly statusCode = 409;
}
