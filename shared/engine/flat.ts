/**
 * The `flat` engine: no index at all, just the vectors, searched exactly. It is the
 * reference the approximate engines are measured against, the right choice for small
 * shards (below a few thousand rows a scan beats a graph walk), and — via
 * `createFlatIndex` — how the unindexed tail of recent writes is searched.
 *
 * Index bytes are the raw row-major float32 vectors, little-endian, nothing else: the
 * shard header already records dim, count and metric, so a second header here would only
 * be one more thing to disagree.
 */
import { endianness } from 'node:os';
import { CorruptDataError, EngineError, ValidationError } from '../errors.js';
import type { Metric, RowHit } from '../types.js';
import { exactTopK, norm } from './distance.js';
import type { BuildInput, EngineParams, IndexEngine, LoadedIndex, SearchOptions, VectorView } from './types.js';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

function checkShape(dim: number, count: number): void {
  if (!Number.isInteger(dim) || dim <= 0)
    throw new ValidationError(`dim must be a positive integer, got ${dim}`, { field: 'dim' });
  if (!Number.isInteger(count) || count < 0)
    throw new ValidationError(`count must be a non-negative integer, got ${count}`, { field: 'count' });
}

/** 1/‖row‖ per row (0 for zero rows), computed once at load so cosine scans skip it. */
function inverseNorms(data: Float32Array, dim: number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let r = 0; r < count; r++) {
    const n = norm(data, r * dim, dim);
    out[r] = n > 0 ? 1 / n : 0;
  }
  return out;
}

class FlatIndex implements LoadedIndex {
  readonly engine = 'flat' as const;
  private view: VectorView | null;
  private invNorms: Float32Array | undefined;

  constructor(
    data: Float32Array,
    readonly dim: number,
    readonly metric: Metric,
    readonly count: number,
  ) {
    this.view = { data, offset: 0, stride: dim, dim, count, normalized: false };
    this.invNorms = metric === 'cosine' ? inverseNorms(data, dim, count) : undefined;
  }

  search(query: Float32Array, options: SearchOptions): RowHit[] {
    const bits = options.allowedBits;
    const allow = bits ? (row: number) => (bits[row >>> 3] & (1 << (row & 7))) !== 0 : options.allow;
    return exactTopK(this.live(), this.metric, query, options.k, { allow, invNorms: this.invNorms });
  }

  vectors(): VectorView {
    return this.live();
  }

  dispose(): void {
    this.view = null;
    this.invNorms = undefined;
  }

  private live(): VectorView {
    if (this.view === null) throw new EngineError('flat index used after dispose()');
    return this.view;
  }
}

/**
 * Wraps in-memory vectors (count × dim, row-major) as a searchable index WITHOUT copying
 * them: the caller must not mutate `vectors` while the index is in use.
 */
export function createFlatIndex(vectors: Float32Array, dim: number, metric: Metric): LoadedIndex {
  checkShape(dim, 0);
  if (vectors.length % dim !== 0) {
    throw new ValidationError(`vector buffer of ${vectors.length} floats is not a multiple of dim ${dim}`, {
      field: 'vectors',
    });
  }
  return new FlatIndex(vectors, dim, metric, vectors.length / dim);
}

export const flatEngine: IndexEngine = {
  name: 'flat',
  // Exact search has nothing to tune.
  defaultParams: {},

  async build(input: BuildInput): Promise<{ bytes: Uint8Array; params: EngineParams }> {
    const { dim, count, vectors } = input;
    checkShape(dim, count);
    if (vectors.length !== count * dim) {
      throw new ValidationError(`expected ${count} × ${dim} = ${count * dim} floats, got ${vectors.length}`, {
        field: 'vectors',
      });
    }
    const bytes = new Uint8Array(count * dim * 4);
    if (LITTLE_ENDIAN_HOST) {
      bytes.set(new Uint8Array(vectors.buffer, vectors.byteOffset, bytes.byteLength));
    } else {
      const dv = new DataView(bytes.buffer);
      for (let i = 0; i < vectors.length; i++) dv.setFloat32(i * 4, vectors[i], true);
    }
    return { bytes, params: {} };
  },

  async load(
    bytes: Uint8Array,
    info: { dim: number; metric: Metric; count: number; params: EngineParams },
  ): Promise<LoadedIndex> {
    const { dim, count, metric } = info;
    checkShape(dim, count);
    const expected = count * dim * 4;
    if (bytes.byteLength !== expected) {
      throw new CorruptDataError(
        `flat index is ${bytes.byteLength} bytes, expected ${count} × ${dim} × 4 = ${expected}`,
      );
    }
    const n = count * dim;
    let data: Float32Array;
    if (!LITTLE_ENDIAN_HOST) {
      data = new Float32Array(n);
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < n; i++) data[i] = dv.getFloat32(i * 4, true);
    } else if (bytes.byteOffset % 4 === 0) {
      // Zero-copy: shard files are read into one buffer and sliced; aligned slices are
      // viewed in place so a shard costs its size once, not twice.
      data = new Float32Array(bytes.buffer, bytes.byteOffset, n);
    } else {
      // A Float32Array cannot start at an unaligned byte offset.
      const copy = new Uint8Array(expected);
      copy.set(bytes);
      data = new Float32Array(copy.buffer, 0, n);
    }
    return new FlatIndex(data, dim, metric, count);
  },
};
