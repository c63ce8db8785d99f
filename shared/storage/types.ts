/**
 * The storage contracts of the data path (DESIGN §3–§4). DynamoDB is the source of truth
 * for rows (RecordStore) and for collection metadata, sequence numbers and index
 * manifests (Catalog); S3 holds immutable objects (ObjectStore). Implementations:
 * `dynamo-catalog.ts`, `dynamo-records.ts`, `s3-objects.ts`.
 */
import type { EngineName, EngineParams } from '../engine/types.js';
import type { Metadata, Metric } from '../types.js';

export interface IndexSettings {
  engine: EngineName;
  /** Engine parameters (hnsw: m, efConstruction, efSearch, seed). */
  params: EngineParams;
}

export interface CollectionMeta {
  name: string;
  dimension: number;
  metric: Metric;
  index: IndexSettings;
  /** ISO-8601. */
  createdAt: string;
  /** Monotonic; bumped only by create (a re-created collection gets a new generation, so stale objects never mix in). */
  generation: number;
  /** Quality gate: an alias may point at a version of this collection only if its evaluated recall is ≥ this. */
  minRecall?: number;
  /** The embedding model version the vectors come from (lifecycle, DESIGN §6). */
  model?: { name: string; version: number };
}

/** One row as stored in the Records table (one item per id). */
export interface StoredRecord {
  collection: string;
  id: string;
  /** Sequence number of the write that produced this item (upsert or delete). */
  seq: number;
  /** Absent on tombstones. */
  vector?: Float32Array;
  metadata?: Metadata;
  /** True when this item records a delete. */
  deleted: boolean;
}

/** A block of sequence numbers [first, last] reserved by one write request. */
export interface SeqLease {
  first: number;
  last: number;
  /** Opaque token that identifies the lease for release(). */
  token: string;
  /** Epoch ms after which the builder may ignore this lease. */
  expiresAt: number;
}

export interface ShardRef {
  /** Content-addressed id (sha256 of the shard bytes, hex, first 32 chars). */
  id: string;
  /** S3 key: shards/<collection>/<generation>/<id>.shard */
  key: string;
  bytes: number;
  /** Rows in the shard (including rows later marked deleted). */
  count: number;
  /** Rows not deleted. */
  live: number;
  engine: EngineName;
  /** sha256 hex of the object. */
  sha256: string;
  minSeq: number;
  maxSeq: number;
  /** Deletion bitmap for this shard in this version, if any rows are gone. */
  deletes?: { key: string; count: number; sha256: string };
}

export interface Manifest {
  collection: string;
  generation: number;
  version: number;
  /** Version this one was derived from (0 for the first). */
  parent: number;
  /** Every write with seq ≤ watermark is reflected in the shards. */
  watermark: number;
  engine: EngineName;
  params: EngineParams;
  shards: ShardRef[];
  createdAt: string;
  /** Code that built it: package version (+ git sha when known). */
  codeVersion: string;
  /** The embedding model version the indexed vectors come from (lineage), when the collection is bound to one. */
  model?: { name: string; version: number };
  stats: { rows: number; liveRows: number; bytes: number; buildMs: number; kind: 'initial' | 'delta' | 'compaction' | 'deletes' };
}

export interface Catalog {
  createCollection(meta: Omit<CollectionMeta, 'generation' | 'createdAt'>): Promise<CollectionMeta>;
  /** Throws NotFoundError. */
  getCollection(name: string): Promise<CollectionMeta>;
  listCollections(): Promise<CollectionMeta[]>;
  /** Removes the collection's catalog items (meta, counter, manifests). Throws NotFoundError. */
  deleteCollection(name: string): Promise<void>;

  /** Reserves n consecutive seqs (atomic counter) and registers them as in flight. */
  leaseSeqs(collection: string, n: number, leaseMs: number): Promise<SeqLease>;
  /** Marks a lease done (its records are durable). Returns false if the lease had already expired and been dropped. */
  releaseSeqs(collection: string, lease: SeqLease): Promise<boolean>;
  /**
   * The highest seq below which every allocated write is durable:
   * (lowest unexpired in-flight lease first) − 1, or the last allocated seq when none is in flight.
   */
  stableSeq(collection: string): Promise<number>;

  /** One conditional put. Returns false (and writes nothing) when that version already exists. */
  commitManifest(manifest: Manifest): Promise<boolean>;
  /** Latest committed manifest, strongly consistent; undefined before the first build. */
  latestManifest(collection: string): Promise<Manifest | undefined>;
  getManifest(collection: string, version: number): Promise<Manifest>;
  /** Newest first. */
  listManifests(collection: string, limit?: number): Promise<Manifest[]>;
}

export interface RecordStore {
  /** Writes items (BatchWriteItem, retrying UnprocessedItems with backoff until all are written). */
  put(records: StoredRecord[]): Promise<void>;
  /** Strongly consistent; missing ids are absent from the result. */
  get(collection: string, ids: string[]): Promise<Map<string, StoredRecord>>;
  /** All items with seq > afterSeq (and ≤ upToSeq if given), ascending by seq, via the bySeq GSI. */
  tail(collection: string, afterSeq: number, upToSeq?: number): AsyncIterable<StoredRecord[]>;
  /** Every item of a collection (for delete-by-filter and collection deletion). */
  scan(collection: string): AsyncIterable<StoredRecord[]>;
  /** Removes items physically, only where their seq is still the given one (conditional). */
  purge(collection: string, items: Array<{ id: string; seq: number }>): Promise<void>;
}

export interface ObjectStore {
  /** Writes once: an existing key is left untouched (immutable objects). */
  putImmutable(key: string, bytes: Uint8Array): Promise<void>;
  /** Throws NotFoundError when absent. */
  get(key: string): Promise<Uint8Array>;
  list(prefix: string): AsyncIterable<Array<{ key: string; size: number; lastModified: Date }>>;
  delete(keys: string[]): Promise<void>;
}
