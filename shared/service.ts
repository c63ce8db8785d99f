/**
 * The contract between the HTTP layer (`shared/api`, `functions/api`) and the core. The
 * API layer validates and normalises requests into these shapes (ids as strings,
 * vectors as Float32Array, filters parsed into the AST) and shapes the results as JSON;
 * the core (`shared/core.ts`) implements it on the storage adapters.
 */
import type { FilterNode } from './filter/ast.js';
import type { EngineName } from './engine/types.js';
import type { Manifest } from './storage/types.js';
import type { Metadata, Metric } from './types.js';

/** Index settings as the API shows them: the engine plus its parameters, flat. */
export interface IndexSpec {
  engine: EngineName;
  m?: number;
  efConstruction?: number;
  efSearch?: number;
  seed?: number;
}

export interface CreateCollectionInput {
  name: string;
  dimension: number;
  metric: Metric;
  index?: Partial<IndexSpec>;
}

export interface CollectionStats {
  /** Live vectors (indexed and pending, minus deletes). */
  count: number;
  /** Rows covered by the current index version. */
  indexed: number;
  /** Writes (upserts and deletes) newer than the index watermark. */
  pending: number;
  shards: number;
  /** Current index version (0 before the first build). */
  version: number;
  watermark: number;
}

export interface CollectionInfo {
  name: string;
  dimension: number;
  metric: Metric;
  index: IndexSpec;
  createdAt: string;
  stats?: CollectionStats;
}

export interface VectorInput {
  id: string;
  values: Float32Array;
  metadata?: Metadata;
}

export interface VectorOutput {
  id: string;
  values?: number[];
  metadata?: Metadata;
}

export interface SearchInput {
  queries: Float32Array[];
  k: number;
  filter?: FilterNode;
  ef?: number;
  consistency: 'strong' | 'eventual';
  includeMetadata: boolean;
  includeValues: boolean;
}

export interface SearchHitOutput {
  id: string;
  score: number;
  metadata?: Metadata;
  values?: number[];
}

export interface SearchOutput {
  /** One list per query, best first. */
  results: SearchHitOutput[][];
  servedBy: { collection: string; version: number };
}

export interface BuildOutput {
  /** Version committed by this call, or the current one when there was nothing to do or the build was queued. */
  version: number;
  built: boolean;
  /** True when the build was handed to the index-builder function (the API's case: builds outlive an HTTP request). */
  queued?: boolean;
  kind?: Manifest['stats']['kind'];
  shards: number;
  watermark: number;
}

export interface ShoalService {
  createCollection(input: CreateCollectionInput): Promise<CollectionInfo>;
  listCollections(): Promise<CollectionInfo[]>;
  getCollection(name: string): Promise<CollectionInfo>;
  deleteCollection(name: string): Promise<void>;

  upsert(collection: string, vectors: VectorInput[]): Promise<{ upserted: number }>;
  getVectors(collection: string, ids: string[]): Promise<VectorOutput[]>;
  deleteVectors(collection: string, selector: { ids: string[] } | { filter: FilterNode }): Promise<{ deleted: number }>;

  search(collection: string, input: SearchInput): Promise<SearchOutput>;

  /** Requests a build now (ignoring the batching policy); poll versions for the result. */
  buildIndex(collection: string): Promise<BuildOutput>;
  listVersions(collection: string): Promise<Manifest[]>;
}
