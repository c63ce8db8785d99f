import { CorruptDataError, EngineError, LimitExceededError, ValidationError } from '../errors.js';
import type { Metric, RowHit } from '../types.js';
import { SHOAL_WASM_HEAP_LIMIT_BYTES, SPACE, loadShoalWasm, type ShoalWasm } from './shoal-wasm.js';
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

/** Rows copied into the WASM heap per `shoal_add` call while building (then the event loop may run). */
const BUILD_BATCH_ROWS = 64;

/** A heap buffer that grows (never shrinks) to the largest size asked of it. */
interface Grown {
  ptr: number;
  bytes: number;
}

/** Heap scratch of one index: the query, the results, the allowed-rows bitmap and an exact scan's rows. */
interface Scratch {
  query: number;
  counts: number;
  labels: Grown;
  distances: Grown;
  bits: Grown;
  rows: Grown;
}

class HnswIndex implements LoadedIndex {
  readonly engine = 'hnsw' as const;
  private disposed = false;
  private view: VectorView;
  /** Where level 0 (links, vector, label per row) lives in the WASM heap. */
  private readonly level0: number;
  private readonly toScore: (distance: number) => number;
  private scratch: Scratch;

  constructor(
    private readonly wasm: ShoalWasm,
    private handle: number,
    readonly dim: number,
    readonly metric: Metric,
    readonly count: number,
    private readonly defaultEf: number,
    private readonly layout: HnswLayout,
  ) {
    // hnswlib distances: l2 = squared L2; ip = 1 − dot; cosine = 1 − cos.
    this.toScore = metric === 'l2' ? (d) => d : (d) => 1 - d;
    // Exact scans read the vectors where hnswlib keeps them, so a loaded shard holds its index once
    // (the heap), not twice (heap + the file bytes in JS). malloc aligns level 0 to 8 bytes.
    this.level0 = wasm.x.shoal_level0(handle) >>> 0;
    if (this.level0 % 4 !== 0) throw new EngineError('hnsw level 0 is not 4-byte aligned');
    this.view = this.heapView();
    const none = (): Grown => ({ ptr: 0, bytes: 0 });
    this.scratch = { query: 0, counts: 0, labels: none(), distances: none(), bits: none(), rows: none() };
    this.scratch.query = wasm.alloc(dim * 4, 'hnsw query buffer');
    this.scratch.counts = wasm.alloc(4, 'hnsw query buffer');
  }

  /** The buffer's pointer, reallocated first if it holds fewer than `bytes`. */
  private reserve(b: Grown, bytes: number, what: string): number {
    if (b.bytes < bytes) {
      this.wasm.free(b.ptr);
      // Cleared before allocating: if that throws, dispose() has nothing to free twice.
      b.ptr = b.bytes = 0;
      b.ptr = this.wasm.alloc(bytes, what);
      b.bytes = bytes;
    }
    return b.ptr;
  }

  private ensureK(k: number): void {
    this.reserve(this.scratch.labels, k * 4, 'hnsw result buffer');
    this.reserve(this.scratch.distances, k * 4, 'hnsw result buffer');
  }

  /** Copies the allowed-rows bitmap into the heap (bit r of byte r>>3 = row r may be returned). */
  private putBits(options: SearchOptions): number {
    const bytes = (this.count + 7) >>> 3;
    const ptr = this.reserve(this.scratch.bits, bytes, 'hnsw filter bitmap');
    const heap = this.wasm.heap();
    if (options.allowedBits) {
      if (options.allowedBits.length < bytes) throw new ValidationError('allowedBits must cover every row');
      heap.set(options.allowedBits.subarray(0, bytes), ptr);
    } else {
      // A per-row callback is evaluated once per row here, never from inside the WASM.
      const allow = options.allow!;
      const bits = heap.subarray(ptr, ptr + bytes);
      bits.fill(0);
      for (let row = 0; row < this.count; row++) if (allow(row)) bits[row >>> 3] |= 1 << (row & 7);
    }
    return ptr;
  }

  search(query: Float32Array, options: SearchOptions): RowHit[] {
    if (this.disposed) throw new Error('HNSW index used after dispose()');
    const k = Math.min(options.k, this.count);
    if (k <= 0) return [];
    if (query.length !== this.dim) {
      throw new ValidationError(`query has ${query.length} dimensions, the index has ${this.dim}`, { field: 'vector' });
    }
    const ef = Math.max(options.ef ?? this.defaultEf, k);
    this.ensureK(k);
    const filtered = options.allowedBits !== undefined || options.allow !== undefined;
    const bits = filtered ? this.putBits(options) : 0;
    const s = this.scratch;
    const w = this.wasm;
    w.f32(s.query, this.dim).set(query);
    const rc = w.x.shoal_search(
      this.handle,
      s.query,
      1,
      k,
      ef,
      bits,
      filtered ? this.count : 0,
      s.labels.ptr,
      s.distances.ptr,
      s.counts,
    );
    if (rc !== 0) throw w.failure('hnsw search failed');
    return this.hits(w.i32(s.counts, 1)[0]);
  }

  /** The first n (row, distance) pairs of the result buffers, as hits. */
  private hits(n: number): RowHit[] {
    const labels = this.wasm.i32(this.scratch.labels.ptr, n);
    const distances = this.wasm.f32(this.scratch.distances.ptr, n);
    const hits = new Array<RowHit>(n);
    for (let i = 0; i < n; i++) hits[i] = { row: labels[i], score: this.toScore(distances[i]) };
    return hits;
  }

  /**
   * Exact top k in the WASM with the graph's SIMD kernels, over the vectors where the graph reads them: an
   * exact plan's scores are the graph's, and it runs several times faster than a JS scan of the same view.
   */
  exact(query: Float32Array, k: number, rows?: Int32Array): RowHit[] {
    if (this.disposed) throw new EngineError('hnsw index is disposed');
    if (query.length !== this.dim) {
      throw new ValidationError(`query has ${query.length} dimensions, the index has ${this.dim}`, { field: 'vector' });
    }
    const want = Math.min(k, rows ? rows.length : this.count);
    if (want <= 0) return [];
    this.ensureK(want);
    const s = this.scratch;
    const w = this.wasm;
    w.f32(s.query, this.dim).set(query);
    let rowsPtr = 0;
    if (rows) {
      rowsPtr = this.reserve(s.rows, rows.length * 4, 'hnsw exact-search rows');
      w.i32(rowsPtr, rows.length).set(rows);
    }
    const n = w.x.shoal_exact(
      this.handle,
      s.query,
      rowsPtr,
      rows ? rows.length : 0,
      want,
      s.labels.ptr,
      s.distances.ptr,
    );
    if (n < 0) throw w.failure('hnsw exact search failed');
    return this.hits(n);
  }

  /**
   * A view of level 0 in the heap. Growing the heap (another shard loading) replaces its buffer and
   * detaches older views, so callers take a fresh one per scan (nothing in a scan allocates).
   */
  vectors(): VectorView {
    if (this.disposed) throw new EngineError('hnsw index is disposed');
    if (this.view.data.buffer !== this.wasm.heap().buffer) this.view = this.heapView();
    return this.view;
  }

  private heapView(): VectorView {
    const heap = this.wasm.heap();
    return {
      data: new Float32Array(heap.buffer, heap.byteOffset, heap.byteLength >>> 2),
      offset: (this.level0 + this.layout.offsetData) / 4,
      stride: this.layout.sizePerElement / 4,
      dim: this.dim,
      count: this.count,
      normalized: this.metric === 'cosine',
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const s = this.scratch;
    for (const ptr of [s.query, s.counts, s.labels.ptr, s.distances.ptr, s.bits.ptr, s.rows.ptr]) this.wasm.free(ptr);
    this.wasm.x.shoal_destroy(this.handle);
    this.handle = 0;
  }
}

/**
 * WASM heap bytes an index of `count` rows needs: hnswlib's level-0 block per row
 * (links + vector + label) plus upper-level links (1/m of rows on average, 2·m links
 * each) and a 64-byte allowance for per-row bookkeeping (label map, visited list, locks).
 * Measured on MNIST 60k × 784: 192.6 MB used by the index, 192.3 MB estimated. Each index
 * also holds ~1.6 MB whatever its size (hnswlib's 65 536 label-operation locks).
 */
export function estimateHnswHeapBytes(count: number, dim: number, m: number): number {
  const level0 = 4 + 2 * m * 4 + dim * 4 + 4;
  const upper = (4 + m * 4) / Math.max(Math.log(m), 1);
  return Math.ceil(count * (level0 + upper + 64));
}

/**
 * Largest index one shard may need. Several shards share the process's one 4 GiB WASM
 * heap (a warm searcher caches many), so one shard gets at most a quarter of it (1 GiB).
 * Loading copies nothing else into the heap (no IDBFS/MEMFS copy): heap ≈ Σ indexes.
 */
export const MAX_SHARD_HEAP_BYTES = SHOAL_WASM_HEAP_LIMIT_BYTES / 4;

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
        `an hnsw shard of ${count} × ${dim} (m=${params.m}) needs ~${need} bytes of WASM heap; ` +
          `the limit per shard is ${MAX_SHARD_HEAP_BYTES} — split it into smaller shards`,
        { field: 'count', details: { need, limit: MAX_SHARD_HEAP_BYTES } },
      );
    }
    // An empty shard has no graph (and no index bytes).
    if (count === 0) return { bytes: new Uint8Array(0), params };
    const wasm = await loadShoalWasm();
    const handle = wasm.x.shoal_create(SPACE[input.metric], dim, count, params.m, params.efConstruction, params.seed);
    if (handle === 0) throw wasm.failure(`hnsw build of ${count} × ${dim} failed`);
    let batch = 0;
    let out = 0;
    try {
      batch = wasm.alloc(BUILD_BATCH_ROWS * dim * 4, 'hnsw build batch');
      // Rows go to the heap in small batches; a big build takes tens of seconds, and yielding
      // every ~50 ms keeps the process responsive (the local runtime serves HTTP from the
      // same event loop) at no measurable cost.
      let slice = performance.now();
      for (let row = 0; row < count; row += BUILD_BATCH_ROWS) {
        const n = Math.min(BUILD_BATCH_ROWS, count - row);
        wasm.f32(batch, n * dim).set(vectors.subarray(row * dim, (row + n) * dim));
        if (wasm.x.shoal_add(handle, batch, n, row) !== n) throw wasm.failure(`hnsw build of ${count} × ${dim} failed`);
        if (performance.now() - slice > BUILD_YIELD_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          slice = performance.now();
        }
      }
      // hnswlib's saveIndex layout, assembled in JS: header and link lists from the C API, level 0
      // (nearly all the bytes) copied straight from the index, so the heap never holds it twice.
      const metaSize = wasm.x.shoal_meta_size(handle);
      if (metaSize < 0) throw wasm.failure('hnsw save failed');
      out = wasm.alloc(metaSize, 'hnsw save');
      if (wasm.x.shoal_save_meta(handle, out) !== metaSize) throw wasm.failure('hnsw save failed');
      const level0 = wasm.x.shoal_level0(handle) >>> 0;
      const level0Bytes = wasm.x.shoal_level0_bytes(handle);
      const heap = wasm.heap();
      const bytes = new Uint8Array(metaSize + level0Bytes);
      bytes.set(heap.subarray(out, out + HEADER_BYTES), 0);
      bytes.set(heap.subarray(level0, level0 + level0Bytes), HEADER_BYTES);
      bytes.set(heap.subarray(out + HEADER_BYTES, out + metaSize), HEADER_BYTES + level0Bytes);
      return { bytes, params };
    } finally {
      wasm.free(batch);
      wasm.free(out);
      wasm.x.shoal_destroy(handle);
    }
  },

  async load(bytes, info) {
    const params = resolveHnswParams(info.params);
    if (info.count === 0) {
      if (bytes.byteLength !== 0) throw new CorruptDataError('an empty hnsw shard must have no index bytes');
      return emptyIndex(info.dim, info.metric);
    }
    const layout = parseLayout(bytes, info.dim, info.count);
    const wasm = await loadShoalWasm();
    if (wasm.x.shoal_header_bytes() !== HEADER_BYTES)
      throw new EngineError('the hnsw WASM module has another header size');
    // Header + link lists go in first; level 0 is then copied once, straight into its place.
    const level0Bytes = layout.count * layout.sizePerElement;
    const metaSize = bytes.byteLength - level0Bytes;
    const meta = wasm.alloc(metaSize, 'hnsw load');
    let handle = 0;
    try {
      const heap = wasm.heap();
      heap.set(bytes.subarray(0, HEADER_BYTES), meta);
      heap.set(bytes.subarray(HEADER_BYTES + level0Bytes), meta + HEADER_BYTES);
      handle = wasm.x.shoal_load_meta(SPACE[info.metric], info.dim, meta, metaSize, info.count);
      if (handle === 0) throw wasm.failure('hnsw load failed');
    } finally {
      wasm.free(meta);
    }
    wasm.heap().set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + level0Bytes), wasm.x.shoal_level0(handle) >>> 0);
    if (wasm.x.shoal_load_finish(handle) !== 0) {
      const err = wasm.failure('hnsw load failed');
      wasm.x.shoal_destroy(handle);
      throw err;
    }
    try {
      const count = wasm.x.shoal_count(handle);
      if (count !== info.count) {
        throw new CorruptDataError(`hnsw index holds ${count} rows, the shard says ${info.count}`);
      }
      return new HnswIndex(wasm, handle, info.dim, info.metric, info.count, params.efSearch, layout);
    } catch (err) {
      wasm.x.shoal_destroy(handle);
      throw err;
    }
  },
};
