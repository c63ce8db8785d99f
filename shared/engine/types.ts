import type { Metric, RowHit } from '../types.js';

export type EngineName = 'hnsw' | 'flat';
export const ENGINE_NAMES: readonly EngineName[] = ['hnsw', 'flat'];

/** Engine parameters recorded in the shard header and the manifest. */
export type EngineParams = Record<string, number>;

/** What an engine needs to build one shard's index. Rows are numbered 0..count-1 ("labels"). */
export interface BuildInput {
  dim: number;
  metric: Metric;
  count: number;
  /** count × dim float32, row-major. Never copied into JS arrays. */
  vectors: Float32Array;
  params?: EngineParams;
}

/**
 * A strided window over float32 vectors, so exact scans can read vectors wherever an
 * engine keeps them (a plain row-major array for `flat`, inside hnswlib's level-0 blocks
 * for `hnsw`) without copying.
 * Row r, component j is at `data[offset + r * stride + j]`.
 */
export interface VectorView {
  data: Float32Array;
  offset: number;
  stride: number;
  dim: number;
  count: number;
  /**
   * True when every stored vector has unit length (hnswlib stores cosine vectors
   * normalized), so cosine similarity is a plain dot product.
   */
  normalized: boolean;
}

export interface SearchOptions {
  k: number;
  /** HNSW beam width at query time; ignored by exact engines. */
  ef?: number;
  /** Only rows for which this returns true may be returned. */
  allow?: (row: number) => boolean;
  /**
   * Only rows whose bit is set may be returned (bit r of byte r>>3; at least ceil(count/8)
   * bytes). Preferred over `allow`: the hnsw engine reads it inside WASM, with no call
   * back into JS per candidate. When both are given, `allowedBits` wins.
   */
  allowedBits?: Uint8Array;
}

/** A loaded, searchable index for one shard. */
export interface LoadedIndex {
  readonly engine: EngineName;
  readonly dim: number;
  readonly metric: Metric;
  readonly count: number;
  /** Best first. Scores: cosine similarity / inner product (higher better) or squared L2 (lower better). */
  search(query: Float32Array, options: SearchOptions): RowHit[];
  /** Exact access to the stored vectors, for exact scans over small filtered subsets. */
  vectors(): VectorView;
  /**
   * Exact top k over every row, or only `rows`, computed by the engine itself (best first, ties to the lower
   * row). Engines without it are scanned by `exactTopK` over `vectors()`.
   */
  exact?(query: Float32Array, k: number, rows?: Int32Array): RowHit[];
  /** Frees engine memory (WASM heap). The index must not be used afterwards. */
  dispose(): void;
}

export interface IndexEngine {
  readonly name: EngineName;
  /** Default parameters, each documented where it is defined. */
  readonly defaultParams: EngineParams;
  /** Builds the engine's index bytes (opaque to everyone but this engine). */
  build(input: BuildInput): Promise<{ bytes: Uint8Array; params: EngineParams }>;
  /** Loads index bytes produced by `build` of the same engine. */
  load(
    bytes: Uint8Array,
    info: { dim: number; metric: Metric; count: number; params: EngineParams },
  ): Promise<LoadedIndex>;
}
