import { exactTopK } from '../engine/distance.js';
import { getEngine } from '../engine/registry.js';
import type { EngineName, EngineParams, LoadedIndex } from '../engine/types.js';
import { ValidationError } from '../errors.js';
import type { FilterNode } from '../filter/ast.js';
import { compileFilter } from '../filter/compile.js';
import type { Hit, Metadata, Metric, RowHit } from '../types.js';
import { decodeColumns, encodeColumns, type ColumnSet } from './columns.js';
import { decodeShard, encodeShard } from './format.js';

/**
 * Filtered-search planning knobs, calibrated by `npm run bench:filter-plan` (each plan
 * forced per selectivity on SIFT 128-d, GloVe 50-d and MNIST 784-d) and checked by
 * `npm run bench:engine`:
 * - `GRAPH_ROWS_PER_EF` (default 20): a filtered HNSW query with selectivity s costs
 *   about as much as an exact scan of GRAPH_ROWS_PER_EF · ef / s rows. Measured with both
 *   plans in the WASM (the allowed-rows bitmap read by the graph walk, the exact scan by
 *   the engine's SIMD kernels): ~20 on MNIST (between the sweep's steps at 13 and 29), 17
 *   or more on SIFT, above 28 on GloVe, where a graph hop's bookkeeping outweighs its
 *   distances; the default is MNIST's, the lowest. (It was 5 while the exact scan ran in
 *   JS, several times slower.) Exact search wins below that many matching rows. Raise it
 *   to prefer the exact plan (perfect recall, more CPU on big shards); lower it to prefer
 *   the graph.
 * - `EXACT_MIN_ROWS` (default 1000): below this many matches a scan is always chosen.
 * - `MAX_FILTERED_EF` (default 1024): ceiling for the raised ef of selective graph queries.
 */
export const FILTER_PLAN = { GRAPH_ROWS_PER_EF: 20, EXACT_MIN_ROWS: 1000, MAX_FILTERED_EF: 1024 };

export interface ShardBuildInput {
  engine: EngineName;
  dim: number;
  metric: Metric;
  ids: readonly string[];
  /** ids.length × dim, row-major. */
  vectors: Float32Array;
  seqs: ArrayLike<number>;
  metadata?: ReadonlyArray<Metadata | undefined>;
  /** Metadata fields to store as filterable columns (all fields when undefined). */
  fields?: readonly string[];
  params?: EngineParams;
  meta?: Record<string, string | number | boolean>;
}

/** Builds one shard file: engine index + ids + seqs + filterable columns, checksummed. */
export async function buildShard(input: ShardBuildInput): Promise<Uint8Array> {
  const count = input.ids.length;
  if (input.seqs.length !== count) throw new ValidationError('seqs must have one entry per id', { field: 'seqs' });
  if (input.metadata && input.metadata.length !== count) {
    throw new ValidationError('metadata must have one entry per id', { field: 'metadata' });
  }
  const engine = getEngine(input.engine);
  const { bytes, params } = await engine.build({
    dim: input.dim,
    metric: input.metric,
    count,
    vectors: input.vectors,
    params: input.params,
  });
  return encodeShard({
    engine: input.engine,
    dim: input.dim,
    metric: input.metric,
    count,
    params,
    index: bytes,
    ids: [...input.ids],
    seqs: Float64Array.from(input.seqs),
    columns: encodeColumns(input.metadata ?? new Array<Metadata | undefined>(count).fill(undefined), input.fields),
    meta: input.meta,
  });
}

export interface ShardSearchOptions {
  k: number;
  ef?: number;
  filter?: FilterNode;
  /** Rows deleted or superseded since the shard was built (bit r set = row r is gone). */
  deleted?: Uint8Array;
}

/** How a filtered query was answered; returned for tests, benchmarks and explain output. */
export interface ShardSearchPlan {
  kind: 'graph' | 'exact' | 'filtered-graph' | 'graph-then-exact' | 'empty';
  matches: number;
  ef?: number;
}

function isDeleted(bits: Uint8Array | undefined, row: number): boolean {
  return bits !== undefined && (bits[row >>> 3] & (1 << (row & 7))) !== 0;
}

/** A loaded shard: the engine index plus the tables that turn rows into ids. */
export class Shard {
  readonly engine: EngineName;
  readonly dim: number;
  readonly metric: Metric;
  readonly count: number;
  readonly params: EngineParams;
  readonly byteLength: number;
  readonly meta: Record<string, string | number | boolean>;
  lastPlan: ShardSearchPlan = { kind: 'graph', matches: 0 };

  private constructor(
    private readonly index: LoadedIndex,
    readonly ids: readonly string[],
    readonly seqs: Float64Array,
    readonly columns: ColumnSet,
    header: {
      engine: EngineName;
      dim: number;
      metric: Metric;
      count: number;
      params: EngineParams;
      meta?: Record<string, string | number | boolean>;
    },
    byteLength: number,
  ) {
    this.engine = header.engine;
    this.dim = header.dim;
    this.metric = header.metric;
    this.count = header.count;
    this.params = header.params;
    this.meta = header.meta ?? {};
    this.byteLength = byteLength;
  }

  /** Decodes and verifies a shard file and loads its engine. Corrupt bytes throw typed errors. */
  static async open(bytes: Uint8Array): Promise<Shard> {
    const c = decodeShard(bytes);
    const index = await getEngine(c.engine).load(c.index, {
      dim: c.dim,
      metric: c.metric,
      count: c.count,
      params: c.params,
    });
    // Copies of the small sections, so nothing keeps the file's buffer alive: the engine holds
    // its index in its own memory (hnsw: the WASM heap), and the file bytes can be collected.
    return new Shard(index, c.ids, c.seqs.slice(), decodeColumns(c.columns.slice()), c, bytes.byteLength);
  }

  /** Rows that pass the filter and are not deleted, or undefined when every row passes. */
  matchingRows(filter: FilterNode | undefined, deleted: Uint8Array | undefined): Int32Array | undefined {
    if (!filter && !deleted) return undefined;
    const test = filter ? compileFilter(filter, (ref) => this.columns.getter(ref)) : undefined;
    const rows = new Int32Array(this.count);
    let n = 0;
    for (let row = 0; row < this.count; row++) {
      if (isDeleted(deleted, row)) continue;
      if (test && !test(row)) continue;
      rows[n++] = row;
    }
    return rows.subarray(0, n);
  }

  search(query: Float32Array, options: ShardSearchOptions): Hit[] {
    return this.searchBatch([query], options)[0];
  }

  /** Searches several queries with one filter evaluation. */
  searchBatch(queries: readonly Float32Array[], options: ShardSearchOptions): Hit[][] {
    for (const q of queries) {
      if (q.length !== this.dim)
        throw new ValidationError(`query has ${q.length} dimensions, the shard has ${this.dim}`, { field: 'vector' });
    }
    const rows = this.matchingRows(options.filter, options.deleted);
    const mask: { allowed?: Uint8Array } = {};
    return queries.map((q) => this.toHits(this.searchRows(q, options, rows, mask)));
  }

  private searchRows(
    query: Float32Array,
    options: ShardSearchOptions,
    rows: Int32Array | undefined,
    mask: { allowed?: Uint8Array },
  ): RowHit[] {
    const { k } = options;
    const ef = Math.max(options.ef ?? this.params.efSearch ?? 64, k);
    if (rows === undefined) {
      this.lastPlan = { kind: 'graph', matches: this.count, ef };
      return this.index.search(query, { k, ef });
    }
    const matches = rows.length;
    if (matches === 0) {
      this.lastPlan = { kind: 'empty', matches };
      return [];
    }
    if (matches === this.count) {
      this.lastPlan = { kind: 'graph', matches, ef };
      return this.index.search(query, { k, ef });
    }
    const selectivity = matches / this.count;
    const exact =
      this.engine === 'flat' ||
      matches <= FILTER_PLAN.EXACT_MIN_ROWS ||
      matches <= (FILTER_PLAN.GRAPH_ROWS_PER_EF * ef) / selectivity;
    if (exact) {
      this.lastPlan = { kind: 'exact', matches };
      return this.exactRows(query, k, rows);
    }
    // Selective filters leave fewer matching neighbours per hop; a wider beam keeps recall.
    const filteredEf = Math.min(Math.max(ef, Math.ceil(ef / Math.sqrt(selectivity))), FILTER_PLAN.MAX_FILTERED_EF);
    // One bitmap per batch (bit r = row r matches), read by the engine itself: the hnsw engine
    // checks it inside the WASM, never calling back into JS per candidate.
    let allowed = mask.allowed;
    if (!allowed) {
      allowed = mask.allowed = new Uint8Array((this.count + 7) >>> 3);
      for (let i = 0; i < matches; i++) allowed[rows[i] >>> 3] |= 1 << (rows[i] & 7);
    }
    const hits = this.index.search(query, { k, ef: filteredEf, allowedBits: allowed });
    if (hits.length >= Math.min(k, matches)) {
      this.lastPlan = { kind: 'filtered-graph', matches, ef: filteredEf };
      return hits;
    }
    // The graph could not reach k matches (disconnected by the filter): keep the promise exactly.
    this.lastPlan = { kind: 'graph-then-exact', matches, ef: filteredEf };
    return this.exactRows(query, k, rows);
  }

  /** The engine's own exact scan (the hnsw engine's runs in the WASM, SIMD), else a JS scan of its vectors. */
  private exactRows(query: Float32Array, k: number, rows: Int32Array): RowHit[] {
    if (this.index.exact) return this.index.exact(query, k, rows);
    return exactTopK(this.index.vectors(), this.metric, query, k, { rows });
  }

  private toHits(rowHits: RowHit[]): Hit[] {
    return rowHits.map((h) => ({ id: this.ids[h.row], score: h.score, seq: this.seqs[h.row] }));
  }

  private rowIndex?: Map<string, number>;

  /** Row holding an id, if any (the map is built on first use: only writers and the tail need it). */
  rowOf(id: string): number | undefined {
    if (!this.rowIndex) {
      this.rowIndex = new Map();
      for (let row = 0; row < this.ids.length; row++) this.rowIndex.set(this.ids[row], row);
    }
    return this.rowIndex.get(id);
  }

  /** The stored vector of a row (normalized for cosine hnsw shards). */
  vectorOf(row: number): Float32Array {
    const v = this.index.vectors();
    const start = v.offset + row * v.stride;
    return v.data.subarray(start, start + v.dim);
  }

  /** Metadata of the filterable fields of a row (full metadata lives in the records table). */
  metadataOf(row: number): Metadata {
    return this.columns.row(row);
  }

  dispose(): void {
    this.index.dispose();
  }
}
