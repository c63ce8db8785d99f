/**
 * NumPy `.npy` (format versions 1–3): a 2-D, C-order, little-endian float32 (`<f4`) array, one
 * row per vector. Ids come from a sibling `<name>.ids.txt` (one id per line) or `<name>.ids.jsonl`
 * (per line a JSON string/number id, or `{"id", "metadata"}`), line i naming row i; without one,
 * the row number (0-based) is the id. Rows are numbered 0-based. Data is read with ranged GETs of
 * about 4 MiB, so memory is bounded by that, not by the file.
 */
import { UnreadableFileError, type ByteSource, type ImportRow, type ReaderOptions } from '../types.js';
import { makeRow, readLines, rejectRow, type Line } from './common.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const CHUNK_BYTES = 4 * 1024 * 1024;

export interface NpyHeader {
  rows: number;
  dim: number;
  /** Byte offset of the first row. */
  dataOffset: number;
}

export async function readNpyHeader(source: ByteSource): Promise<NpyHeader> {
  const pre = await source.range(0, 12);
  if (pre.byteLength < 10 || MAGIC.some((b, i) => pre[i] !== b))
    throw new UnreadableFileError(`${source.name} is not a .npy file (bad magic)`);
  const major = pre[6];
  let headerLen: number;
  let start: number;
  const dv = new DataView(pre.buffer, pre.byteOffset, pre.byteLength);
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (pre.byteLength < 12) throw new UnreadableFileError(`${source.name}: truncated .npy header`);
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else {
    throw new UnreadableFileError(`${source.name}: unsupported .npy format version ${major}.${pre[7]}`);
  }
  if (headerLen > 1 << 20)
    throw new UnreadableFileError(`${source.name}: .npy header of ${headerLen} bytes is implausible`);
  const text = Buffer.from(await source.range(start, start + headerLen)).toString('latin1');
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new UnreadableFileError(`${source.name}: malformed .npy header ${JSON.stringify(text.slice(0, 120))}`);
  }
  if (descr !== '<f4')
    throw new UnreadableFileError(
      `${source.name}: dtype ${descr} is not supported; .npy imports must be little-endian float32 ('<f4')`,
    );
  if (fortran === 'True')
    throw new UnreadableFileError(
      `${source.name}: Fortran-order arrays are not supported; save with np.ascontiguousarray`,
    );
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (shape.length !== 2 || shape.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new UnreadableFileError(`${source.name}: .npy shape (${shapeText}) is not 2-D (rows, dimension)`);
  }
  const [rows, dim] = shape;
  const dataOffset = start + headerLen;
  const expected = dataOffset + rows * dim * 4;
  if (source.size !== expected) {
    throw new UnreadableFileError(
      `${source.name}: ${source.size} bytes, but a (${rows}, ${dim}) float32 array needs ${expected}: ` +
        'truncated or padded',
    );
  }
  return { rows, dim, dataOffset };
}

export interface NpyOptions extends ReaderOptions {
  /** The ids sidecar, if any. */
  ids?: { source: ByteSource; kind: 'txt' | 'jsonl' };
}

function idFromLine(
  line: Line | undefined,
  kind: 'txt' | 'jsonl',
): { id?: unknown; metadata?: unknown; error?: ImportRow['error'] } {
  if (!line)
    return {
      error: { code: 'MISSING_ID', message: 'missing id: the ids file has fewer lines than the array has rows' },
    };
  if (line.error) return { error: line.error };
  const text = (line.text ?? '').trim();
  if (kind === 'txt') return { id: text };
  if (text === '') return { id: undefined };
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      return { id: o.id, metadata: o.metadata };
    }
    return { id: v };
  } catch (err) {
    return {
      error: { code: 'BAD_JSON', message: `ids file line ${line.line} is broken JSON: ${(err as Error).message}` },
    };
  }
}

export async function* readNpy(source: ByteSource, opts: NpyOptions): AsyncGenerator<ImportRow> {
  const h = await readNpyHeader(source);
  if (h.dim !== opts.dimension) {
    throw new UnreadableFileError(`${source.name}: rows have dimension ${h.dim}; the collection has ${opts.dimension}`);
  }
  const rowBytes = h.dim * 4;
  const from = opts.from ?? { rows: 0 };
  let idLines: AsyncIterator<Line> | undefined;
  let sidecarOffset = from.sidecarOffset ?? 0;
  if (opts.ids) {
    idLines = readLines(opts.ids.source, { gzip: false, from: { rows: from.rows, offset: sidecarOffset } })[
      Symbol.asyncIterator
    ]();
  }
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(rowBytes, 1)));
  try {
    for (let r0 = from.rows; r0 < h.rows; r0 += rowsPerChunk) {
      const n = Math.min(rowsPerChunk, h.rows - r0);
      const bytes = await source.range(h.dataOffset + r0 * rowBytes, h.dataOffset + (r0 + n) * rowBytes);
      if (bytes.byteLength !== n * rowBytes) throw new UnreadableFileError(`${source.name}: short read at row ${r0}`);
      // Copy into an aligned buffer (the data offset is only 16-byte aligned by convention).
      const data = new Float32Array(n * h.dim);
      new Uint8Array(data.buffer).set(bytes);
      for (let i = 0; i < n; i++) {
        const row = r0 + i;
        let rawId: unknown = String(row);
        let rawMeta: unknown;
        let idError: ImportRow['error'];
        if (idLines) {
          const next = await idLines.next();
          const line = next.done ? undefined : next.value;
          if (line) sidecarOffset = line.nextOffset;
          const got = idFromLine(line, opts.ids!.kind);
          rawId = got.id;
          rawMeta = got.metadata;
          idError = got.error;
        }
        const base = {
          rowNumber: row,
          next: { rows: row + 1, ...(idLines ? { sidecarOffset } : {}) },
          bytesRead: h.dataOffset + (row + 1) * rowBytes,
        };
        if (idError) {
          yield rejectRow(base, idError);
          continue;
        }
        yield makeRow(base, rawId, data.subarray(i * h.dim, (i + 1) * h.dim), rawMeta, opts.dimension);
      }
    }
  } finally {
    await idLines?.return?.();
  }
}
