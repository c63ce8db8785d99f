/**
 * Parquet, read with hyparquet over ranged GETs: the footer first (schema checked before any row),
 * then row groups in slices of at most `SLICE_ROWS` rows, each slice's column-chunk bytes cached
 * only while its row group is being read. Columns: `id` (string or integer); the vector in
 * `vector` (or `values`, `embedding`) as a list of float/double, or as FIXED_LEN_BYTE_ARRAY of
 * 4·d bytes (float32 little-endian); every other top-level column becomes metadata (int64 →
 * number when safe else string, dates → ISO strings, binary columns skipped). Rows are numbered
 * 0-based; the checkpoint is the next row (resume lands inside its row group).
 */
import {
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
  type AsyncBuffer,
  type FileMetaData,
  type SchemaTree,
} from 'hyparquet';
import type { JsonValue } from '../../types.js';
import { UnreadableFileError, type ByteSource, type ImportRow, type ReaderOptions } from '../types.js';
import { makeRow } from './common.js';

const VECTOR_COLUMNS = ['vector', 'values', 'embedding'];
export const SLICE_ROWS = 20_000;

function asyncBuffer(source: ByteSource, cache?: Map<string, Promise<ArrayBuffer>>): AsyncBuffer {
  return {
    byteLength: source.size,
    slice(start: number, end?: number): Promise<ArrayBuffer> {
      const e = end ?? source.size;
      const key = `${start}:${e}`;
      const hit = cache?.get(key);
      if (hit) return hit;
      const p = source.range(start, e).then((b) => b.slice().buffer as ArrayBuffer);
      cache?.set(key, p);
      return p;
    },
  };
}

function leaf(tree: SchemaTree): SchemaTree {
  let t = tree;
  while (t.children.length === 1) t = t.children[0];
  return t;
}

interface VectorColumn {
  name: string;
  kind: 'list' | 'bytes';
}

function checkSchema(
  metadata: FileMetaData,
  dimension: number,
  name: string,
): { vector: VectorColumn; meta: string[] } {
  const root = parquetSchema(metadata);
  const cols = root.children;
  const names = cols.map((c) => c.element.name);
  if (!names.includes('id'))
    throw new UnreadableFileError(
      `${name}: the Parquet schema has no "id" column (columns: ${names.slice(0, 10).join(', ')})`,
    );
  const vec = cols.find((c) => VECTOR_COLUMNS.includes(c.element.name));
  if (!vec)
    throw new UnreadableFileError(
      `${name}: the Parquet schema has no vector column ("vector", "values" or "embedding")`,
    );
  let vector: VectorColumn;
  if (vec.children.length === 0) {
    if (vec.element.type !== 'FIXED_LEN_BYTE_ARRAY') {
      throw new UnreadableFileError(
        `${name}: column "${vec.element.name}" is ${vec.element.type}; ` +
          `expected a list of float or FIXED_LEN_BYTE_ARRAY(${4 * dimension})`,
      );
    }
    if (vec.element.type_length !== 4 * dimension) {
      throw new UnreadableFileError(
        `${name}: column "${vec.element.name}" holds ${vec.element.type_length} bytes per row; ` +
          `dimension ${dimension} needs ${4 * dimension} (float32)`,
      );
    }
    vector = { name: vec.element.name, kind: 'bytes' };
  } else {
    const l = leaf(vec);
    if (l.element.type !== 'FLOAT' && l.element.type !== 'DOUBLE') {
      throw new UnreadableFileError(
        `${name}: column "${vec.element.name}" is a list of ${l.element.type ?? 'groups'}; expected float or double`,
      );
    }
    vector = { name: vec.element.name, kind: 'list' };
  }
  const meta = cols
    .filter(
      (c) =>
        c.element.name !== 'id' &&
        c !== vec &&
        !(
          c.children.length === 0 &&
          c.element.type === 'BYTE_ARRAY' &&
          c.element.converted_type !== 'UTF8' &&
          !c.element.logical_type
        ),
    )
    .map((c) => c.element.name);
  return { vector, meta };
}

function toJson(v: unknown): JsonValue | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'bigint')
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return undefined;
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return Array.from(v as ArrayLike<unknown>, (x) => toJson(x) ?? null);
  if (typeof v === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v)) {
      const j = toJson(x);
      if (j !== undefined) out[k] = j;
    }
    return out;
  }
  return undefined;
}

export async function readParquetMetadata(source: ByteSource): Promise<FileMetaData> {
  if (source.size < 12) throw new UnreadableFileError(`${source.name} is not a Parquet file (${source.size} bytes)`);
  const head = await source.range(0, 4);
  if (Buffer.from(head).toString('latin1') !== 'PAR1')
    throw new UnreadableFileError(`${source.name} is not a Parquet file (bad magic)`);
  try {
    return await parquetMetadataAsync(asyncBuffer(source));
  } catch (err) {
    throw new UnreadableFileError(`${source.name}: the Parquet footer cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export async function* readParquet(source: ByteSource, opts: ReaderOptions): AsyncGenerator<ImportRow> {
  const metadata = await readParquetMetadata(source);
  const { vector, meta } = checkSchema(metadata, opts.dimension, source.name);
  const total = Number(metadata.num_rows);
  let groupStart = 0;
  const from = opts.from?.rows ?? 0;
  for (const group of metadata.row_groups) {
    const groupRows = Number(group.num_rows);
    const groupEnd = groupStart + groupRows;
    if (groupEnd <= from) {
      groupStart = groupEnd;
      continue;
    }
    const cache = new Map<string, Promise<ArrayBuffer>>();
    const file = asyncBuffer(source, cache);
    for (let s = Math.max(from, groupStart); s < groupEnd; s += SLICE_ROWS) {
      const e = Math.min(groupEnd, s + SLICE_ROWS);
      let rows: Array<Record<string, unknown>>;
      try {
        rows = (await parquetReadObjects({
          file,
          metadata,
          rowStart: s,
          rowEnd: e,
          columns: ['id', vector.name, ...meta],
        })) as Array<Record<string, unknown>>;
      } catch (err) {
        if (err instanceof UnreadableFileError) throw err;
        throw new UnreadableFileError(
          `${source.name}: rows ${s}..${e - 1} cannot be decoded: ${(err as Error).message}`,
          { cause: err },
        );
      }
      for (let i = 0; i < rows.length; i++) {
        const row = s + i;
        const r = rows[i];
        let values: unknown = r[vector.name];
        if (vector.kind === 'bytes' && values instanceof Uint8Array) {
          const f = new Float32Array(opts.dimension);
          new Uint8Array(f.buffer).set(values.subarray(0, 4 * opts.dimension));
          values = f;
        }
        let metadataOut: Record<string, JsonValue> | undefined;
        for (const m of meta) {
          const j = toJson(r[m]);
          if (j !== undefined) (metadataOut ??= {})[m] = j;
        }
        const base = {
          rowNumber: row,
          next: { rows: row + 1 },
          bytesRead: total ? Math.round((source.size * (row + 1)) / total) : source.size,
        };
        yield makeRow(base, r.id, values, metadataOut, opts.dimension);
      }
    }
    groupStart = groupEnd;
  }
}
