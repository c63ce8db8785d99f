/**
 * Readers for the benchmark vector formats: TEXMEX `.fvecs`/`.ivecs` and LeCun IDX
 * (`.idx*-ubyte`, usually gzipped). Used by tests, benchmarks and the bulk importer, so
 * they validate everything they read: a truncated download must fail loudly here, not
 * turn into a silently smaller dataset and a misleading recall number.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { CorruptDataError } from '../errors.js';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** A file path, or bytes already in memory (then `name` labels them in errors). */
export type VecSource = string | Uint8Array;

export interface Fvecs {
  dim: number;
  count: number;
  /** count × dim, row-major. */
  data: Float32Array;
}

export interface Ivecs {
  dim: number;
  count: number;
  /** count × dim, row-major. */
  data: Int32Array;
}

export interface IdxFile {
  /** Sizes per dimension, outermost first (images: [count, rows, cols]). */
  dims: number[];
  data: Uint8Array;
}

function load(source: VecSource, name: string | undefined): { bytes: Uint8Array; label: string } {
  if (typeof source === 'string') {
    const buf = readFileSync(source);
    return { bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), label: name ?? source };
  }
  return { bytes: source, label: name ?? '<buffer>' };
}

/**
 * Shared TEXMEX parser: per row an int32 LE `d`, then d 4-byte LE values. The element
 * type only changes how the payload is reinterpreted, so rows are copied as raw words.
 */
function readVecs(bytes: Uint8Array, label: string): { dim: number; count: number; words: Uint32Array } {
  const len = bytes.byteLength;
  if (len === 0) return { dim: 0, count: 0, words: new Uint32Array(0) };
  if (len < 4) throw new CorruptDataError(`${label}: ${len} bytes is too short for a row header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, len);
  const dim = dv.getInt32(0, true);
  if (dim <= 0) throw new CorruptDataError(`${label}: row 0 declares dimension ${dim}`);
  const rowBytes = 4 + dim * 4;
  if (len % rowBytes !== 0) {
    throw new CorruptDataError(
      `${label}: ${len} bytes is not a whole number of ${dim}-dimensional rows (${rowBytes} bytes each): ` +
        'truncated or mixed dimensions',
    );
  }
  const count = len / rowBytes;
  const words = new Uint32Array(count * dim);
  // Fast path copies whole rows through an aligned view; otherwise go word by word.
  const aligned = LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0;
  const all = aligned ? new Uint32Array(bytes.buffer, bytes.byteOffset, len / 4) : null;
  for (let r = 0; r < count; r++) {
    const at = r * rowBytes;
    const d = dv.getInt32(at, true);
    if (d !== dim) throw new CorruptDataError(`${label}: row ${r} has dimension ${d}, row 0 has ${dim}`);
    if (all !== null) {
      const w = at / 4 + 1;
      words.set(all.subarray(w, w + dim), r * dim);
    } else {
      for (let j = 0; j < dim; j++) words[r * dim + j] = dv.getUint32(at + 4 + j * 4, true);
    }
  }
  return { dim, count, words };
}

/** Reads a `.fvecs` file (or bytes): float32 vectors. */
export function readFvecs(source: VecSource, name?: string): Fvecs {
  const { bytes, label } = load(source, name);
  const { dim, count, words } = readVecs(bytes, label);
  return { dim, count, data: new Float32Array(words.buffer, 0, words.length) };
}

/** Reads a `.ivecs` file (or bytes): int32 vectors, e.g. ground-truth neighbour ids. */
export function readIvecs(source: VecSource, name?: string): Ivecs {
  const { bytes, label } = load(source, name);
  const { dim, count, words } = readVecs(bytes, label);
  return { dim, count, data: new Int32Array(words.buffer, 0, words.length) };
}

/** IDX type byte for unsigned bytes, the only element type the MNIST files use. */
const IDX_UBYTE = 0x08;

/**
 * Reads a LeCun IDX file of unsigned bytes, gunzipping it first when it starts with the
 * gzip magic (so both `.gz` and already-extracted files work).
 */
export function readIdxUbyte(source: VecSource, name?: string): IdxFile {
  const { bytes: raw, label } = load(source, name);
  let bytes = raw;
  if (raw.byteLength >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      const buf = gunzipSync(raw);
      bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (cause) {
      throw new CorruptDataError(`${label}: gzip stream is damaged`, { cause });
    }
  }
  if (bytes.byteLength < 4)
    throw new CorruptDataError(`${label}: ${bytes.byteLength} bytes is too short for an IDX header`);
  if (bytes[0] !== 0 || bytes[1] !== 0) throw new CorruptDataError(`${label}: not an IDX file (bad magic)`);
  if (bytes[2] !== IDX_UBYTE) {
    throw new CorruptDataError(`${label}: IDX element type 0x${bytes[2].toString(16)} is not unsigned byte (0x08)`);
  }
  const ndims = bytes[3];
  if (ndims === 0) throw new CorruptDataError(`${label}: IDX header declares 0 dimensions`);
  const headerBytes = 4 + 4 * ndims;
  if (bytes.byteLength < headerBytes) throw new CorruptDataError(`${label}: truncated IDX header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < ndims; i++) {
    const d = dv.getUint32(4 + 4 * i, false);
    dims.push(d);
    size *= d;
  }
  const body = bytes.byteLength - headerBytes;
  if (body !== size) {
    throw new CorruptDataError(
      `${label}: IDX header [${dims.join(' × ')}] needs ${size} bytes of data, file has ${body}`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/**
 * Flattens IDX images (count × rows × cols, or any count × …) into float32 vectors with the
 * raw 0–255 pixel values — unscaled, because the MNIST ground truth distances are on that
 * scale. `maxCount` converts only the first rows, saving time and memory for subsets.
 */
export function idxImagesToFloat32(idx: IdxFile, maxCount?: number): Fvecs {
  if (idx.dims.length < 1) throw new CorruptDataError('IDX data has no dimensions');
  const total = idx.dims[0];
  const dim = idx.dims.slice(1).reduce((a, b) => a * b, 1);
  const count = maxCount === undefined ? total : Math.max(0, Math.min(total, Math.floor(maxCount)));
  const n = count * dim;
  if (idx.data.length < n) throw new CorruptDataError(`IDX data has ${idx.data.length} bytes, expected ${total * dim}`);
  const data = new Float32Array(n);
  const src = idx.data;
  for (let i = 0; i < n; i++) data[i] = src[i];
  return { dim, count, data };
}
