import { CorruptDataError, LimitExceededError, ValidationError } from '../errors.js';
import type { Metric, RowHit } from '../types.js';
import {
  HNSW_HEAP_LIMIT_BYTES,
  engineFailure,
  exportIndex,
  importIndex,
  loadRawHnswlib,
  type RawHnswIndex,
} from './hnswlib-runtime.js';
import type { BuildInput, EngineParams, IndexEngine, LoadedIndex, SearchOptions, VectorView } from './types.js';

/**
 * HNSW parameters. Defaults favour recall ≥ 0.95 at ef=64 on 100–1000-d data.
 * - `m` (default 16): graph degree. Higher = better recall at a given ef and more
 *   robust filtered search, but bytes per vector grow by 8·m and builds slow down.
 *   12–48 is the useful range; 16 suits most embeddings, 32+ for >1000-d or recall ≥ 0.99.
 * - `efConstruction` (default 200): build beam width. Higher = better graph, slower
 *   build (roughly linear). 100–400 is typical; below 100 recall drops visibly.
 * - `efSearch` (default 64): query beam width when a request gives no `ef`. Higher =
 *   better recall, lower QPS; always raised to at least k.
 * - `seed` (default 100): level-assignment seed, fixed so builds are reproducible.
 */
/** Longest stretch of synchronous graph building before yielding to the event loop. */
const BUILD_YIELD_MS = 50;

export const HNSW_DEFAULTS = { m: 16, efConstruction: 200, efSearch: 64, seed: 100 } as const;

/** hnswlib's saveIndex header on wasm32 (size_t = 4 bytes): 6 size_t, int, u32, 3 size_t, double, size_t. */
const HEADER_BYTES = 56;

interface HnswLayout {
  count: number;
  sizePerElement: number;
  offsetData: number;
  labelOffset: number;
}

/** Reads hnswlib's own header so exact scans can read vectors straight out of the index bytes. */
function parseLayout(bytes: Uint8Array, dim: number, expectedCount: number): HnswLayout {
  if (bytes.byteLength < HEADER_BYTES)
    throw new CorruptDataError('hnsw index bytes are shorter than the hnswlib header');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const offsetLevel0 = v.getUint32(0, true);
  const count = v.getUint32(8, true);
  const sizePerElement = v.getUint32(12, true);
  const labelOffset = v.getUint32(16, true);
  const offsetData = v.getUint32(20, true);
  const maxM0 = v.getUint32(36, true);
  const ok =
    offsetLevel0 === 0 &&
    count === expectedCount &&
    offsetData === maxM0 * 4 + 4 &&
    labelOffset === offsetData + dim * 4 &&
    sizePerElement === labelOffset + 4 &&
    HEADER_BYTES + count * sizePerElement <= bytes.byteLength;
  if (!ok) throw new CorruptDataError(`hnsw index header does not match a ${dim}-d index of ${expectedCount} rows`);
  return { count, sizePerElement, offsetData, labelOffset };
}

function param(params: EngineParams | undefined, name: keyof typeof HNSW_DEFAULTS, min: number, max: number): number {
  const value = params?.[name] ?? HNSW_DEFAULTS[name];
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(`index.${name} must be an integer in [${min}, ${max}], got ${value}`, {
      field: `index.${name}`,
    });
  }
  return value;
}

export function resolveHnswParams(params?: EngineParams): EngineParams {
  return {
    m: param(params, 'm', 2, 128),
    efConstruction: param(params, 'efConstruction', 8, 4096),
    efSearch: param(params, 'efSearch', 1, 4096),
    seed: param(params, 'seed', 0, 2 ** 31 - 1),
  };
}

class HnswIndex implements LoadedIndex {
  readonly engine = 'hnsw' as const;
  private disposed = false;
  private currentEf: number;
  private readonly view: VectorView;
  private readonly toScore: (distance: number) => number;

  constructor(
    private readonly raw: RawHnswIndex,
    readonly dim: number,
    readonly metric: Metric,
    readonly count: number,
    private readonly defaultEf: number,
    bytes: Uint8Array,
    layout: HnswLayout,
  ) {
    this.currentEf = raw.getEfSearch();
    // hnswlib distances: l2 = squared L2; ip = 1 − dot; cosine = 1 − cos.
    this.toScore = metric === 'l2' ? (d) => d : (d) => 1 - d;
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    this.view = {
      data: new Float32Array(aligned.buffer, aligned.byteOffset, Math.floor(aligned.byteLength / 4)),
      offset: (HEADER_BYTES + layout.offsetData) / 4,
      stride: layout.sizePerElement / 4,
      dim,
      count,
      normalized: metric === 'cosine',
    };
  }

  search(query: Float32Array, options: SearchOptions): RowHit[] {
    if (this.disposed) throw new Error('HNSW index used after dispose()');
    const k = Math.min(options.k, this.count);
    if (k <= 0) return [];
    const ef = Math.max(options.ef ?? this.defaultEf, k);
    if (ef !== this.currentEf) {
      this.raw.setEfSearch(ef);
      this.currentEf = ef;
    }
    let result: { distances: number[]; neighbors: number[] };
    try {
      result = this.raw.searchKnn(query, k, options.allow);
    } catch (raw) {
      throw engineFailure('hnswlib searchKnn failed', raw);
    }
    const { distances, neighbors } = result;
    const hits = new Array<RowHit>(neighbors.length);
    for (let i = 0; i < neighbors.length; i++) hits[i] = { row: neighbors[i], score: this.toScore(distances[i]) };
    return hits;
  }

  vectors(): VectorView {
    return this.view;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.raw.delete();
  }
}

/**
 * WASM heap bytes an index of `count` rows needs: hnswlib's level-0 block per row
 * (links + vector + label) plus upper-level links (1/m of rows on average, 2·m links
 * each) and a 64-byte allowance for per-row bookkeeping (visited lists, locks).
 */
export function estimateHnswHeapBytes(count: number, dim: number, m: number): number {
  const level0 = 4 + 2 * m * 4 + dim * 4 + 4;
  const upper = (4 + m * 4) / Math.max(Math.log(m), 1);
  return Math.ceil(count * (level0 + upper + 64));
}

/**
 * Largest index one shard may need. Several shards share the process's one 2 GiB WASM
 * heap (a warm searcher caches many), so one shard gets at most a quarter of it.
 */
export const MAX_SHARD_HEAP_BYTES = HNSW_HEAP_LIMIT_BYTES / 4;

function emptyIndex(dim: number, metric: Metric): LoadedIndex {
  return {
    engine: 'hnsw',
    dim,
    metric,
    count: 0,
    search: () => [],
    vectors: () => ({
      data: new Float32Array(0),
      offset: 0,
      stride: dim,
      dim,
      count: 0,
      normalized: metric === 'cosine',
    }),
    dispose: () => undefined,
  };
}

function space(metric: Metric): 'l2' | 'ip' | 'cosine' {
  return metric;
}

export const hnswEngine: IndexEngine = {
  name: 'hnsw',
  defaultParams: { ...HNSW_DEFAULTS },

  async build(input: BuildInput) {
    const params = resolveHnswParams(input.params);
    const { dim, count, vectors } = input;
    if (vectors.length !== dim * count) {
      throw new ValidationError(`vectors has ${vectors.length} floats, expected count × dim = ${count * dim}`, {
        field: 'vectors',
      });
    }
    const need = estimateHnswHeapBytes(count, dim, params.m);
    if (need > MAX_SHARD_HEAP_BYTES) {
      throw new LimitExceededError(
        `an hnsw shard of ${count} × ${dim} (m=${params.m}) needs ~${need} bytes of WASM heap; the limit per shard is ${MAX_SHARD_HEAP_BYTES} — split it into smaller shards`,
        { field: 'count', details: { need, limit: MAX_SHARD_HEAP_BYTES } },
      );
    }
    // hnswlib writes no file for an index without elements; an empty shard has no graph.
    if (count === 0) return { bytes: new Uint8Array(0), params };
    const lib = await loadRawHnswlib();
    const index = new lib.HierarchicalNSW(space(input.metric), dim, '');
    try {
      try {
        index.initIndex(Math.max(count, 1), params.m, params.efConstruction, params.seed);
        // subarray() is a view: rows go to WASM without an intermediate JS array. A big
        // build takes tens of seconds; yielding every ~50 ms keeps the process responsive
        // (the local runtime serves HTTP from the same event loop) at no measurable cost.
        let slice = performance.now();
        for (let row = 0; row < count; row++) {
          index.addPoint(vectors.subarray(row * dim, row * dim + dim), row, false);
          if ((row & 63) === 63 && performance.now() - slice > BUILD_YIELD_MS) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            slice = performance.now();
          }
        }
      } catch (raw) {
        throw engineFailure(`hnswlib build of ${count} × ${dim} failed`, raw);
      }
      const bytes = await exportIndex(lib, index);
      return { bytes, params };
    } finally {
      index.delete();
    }
  },

  async load(bytes, info) {
    const params = resolveHnswParams(info.params);
    if (info.count === 0) {
      if (bytes.byteLength !== 0) throw new CorruptDataError('an empty hnsw shard must have no index bytes');
      return emptyIndex(info.dim, info.metric);
    }
    const layout = parseLayout(bytes, info.dim, info.count);
    const lib = await loadRawHnswlib();
    const index = new lib.HierarchicalNSW(space(info.metric), info.dim, '');
    try {
      await importIndex(lib, index, bytes, Math.max(info.count, 1));
      if (index.getCurrentCount() !== info.count) {
        throw new CorruptDataError(`hnsw index holds ${index.getCurrentCount()} rows, the shard says ${info.count}`);
      }
      index.setEfSearch(params.efSearch);
    } catch (err) {
      index.delete();
      throw err;
    }
    return new HnswIndex(index, info.dim, info.metric, info.count, params.efSearch, bytes, layout);
  },
};
