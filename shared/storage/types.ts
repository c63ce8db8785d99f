/**
 * The storage contracts of the data path (docs/architecture.md §3–4). DynamoDB is the source of truth
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

/**
 * Index versions form lines: each line is one sequence of manifests built with one engine +
 * params, each version derived from the previous one of its line. The collection's `index`
 * names the serving line; candidate lines are built from the same writes by the same builder
 * runs (so they track new data) but serve only when promoted or pinned by an alias.
 */
export const MAIN_LINE = 'main';

export interface CandidateLine extends IndexSettings {
  /** ISO-8601. */
  createdAt: string;
  createdBy?: string;
}

/**
 * A collection's embedding function: the model version it runs (an alias is resolved at creation and
 * recorded, never followed: vectors of two versions must not mix) and the tensors it feeds and reads.
 */
export interface EmbeddingBinding {
  model: string;
  version: number;
  /** The model alias the version was resolved from, for the record. */
  alias?: string;
  input: string;
  output: string;
  /** Values per raw input row (text models: tokens per text). */
  inputLength: number;
  /** Text models: the raw inputs are strings, tokenized into `input` (ids) and `mask` (attention) tensors. */
  text?: { mask?: string };
}

export interface CollectionMeta {
  name: string;
  dimension: number;
  metric: Metric;
  /** The serving line's settings; `line` absent = MAIN_LINE. */
  index: IndexSettings & { line?: string };
  /**
   * Candidate lines by name (docs/architecture.md §8.5): tracked by the builder, served only when promoted or
   * pinned.
   */
  candidates?: Record<string, CandidateLine>;
  /** ISO-8601. */
  createdAt: string;
  /**
   * Monotonic; bumped only by create (a re-created collection gets a new generation, so stale objects never
   * mix in).
   */
  generation: number;
  /** Quality gate: an alias may point at a version of this collection only if its evaluated recall is ≥ this. */
  minRecall?: number;
  /** The embedding model version the vectors come from (lifecycle, docs/architecture.md §8.2). */
  model?: { name: string; version: number };
  /** The collection's embedding function (docs/architecture.md §8.9): Shoal runs `model` on raw inputs. */
  embedding?: EmbeddingBinding;
  /**
   * Head version of each built line, set by the builder after its commit (docs/architecture.md §7.6): a
   * reader fetches that manifest by number (cached: versions are immutable) instead of querying for the
   * newest. Never ahead of the committed head; behind it only between a commit and this update (or
   * after a crash between them, until the next builder run), and the write log and tombstones are
   * kept back to the watermark it names, so a reader on it still sees every write.
   */
  heads?: Record<string, number>;
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
  /** Where the row's raw model input is kept (`<sha256>/<row>` of an `inputs/` object), if it came as one. */
  input?: string;
}

/** A block of sequence numbers [first, last] reserved by one write request. */
export interface SeqLease {
  first: number;
  last: number;
  /** Opaque token that identifies the lease for release(). */
  token: string;
  /**
   * Epoch ms after which the builder may ignore a plain lease, or settle a write lease without checking
   * its records (its writer acknowledges only well before it).
   */
  expiresAt: number;
  /**
   * A write lease (`leaseSeqs(…, ids)`): the id each seq writes, first to last, kept in the counter item
   * itself, so the lease is its own write-log entry while in flight (docs/architecture.md §6.1).
   */
  ids?: string[];
}

/** A write lease still in the counter item: in flight, or written and not yet moved to the log. */
export type PendingWrite = Pick<SeqLease, 'token' | 'first' | 'expiresAt'> & Required<Pick<SeqLease, 'ids'>>;

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
  /** The IVF partition the shard's rows belong to (partitioned versions only; docs/architecture.md §5.6). */
  partition?: number;
}

/** The centroid table of a partitioned version: an immutable S3 object of `count` × `dim` float32. */
export interface PartitionTable {
  count: number;
  dim: number;
  key: string;
  sha256: string;
  /** Live rows per partition at the layout (re)train: the fair share splits and merges are measured against. */
  fairShare: number;
  /**
   * Rows laid out by the last (re)train; splits and merges keep it. A re-layout is due at RELAYOUT_GROWTH× of it.
   * Absent on tables written before it existed: fairShare × count stands in (which splits inflate).
   */
  layoutRows?: number;
}

export interface Manifest {
  collection: string;
  generation: number;
  version: number;
  /** The line this version belongs to; absent = MAIN_LINE (manifests written before lines existed). */
  line?: string;
  /** Version this one was derived from (0 for the first): the previous version of its line, or for a
   * candidate line's first version the serving version whose rows it was rebuilt from. */
  parent: number;
  /** Every write with seq ≤ watermark is reflected in the shards. */
  watermark: number;
  engine: EngineName;
  params: EngineParams;
  shards: ShardRef[];
  /** Set when the version is partitioned (IVF): its centroids; each shard carries its `partition`. */
  partitions?: PartitionTable;
  createdAt: string;
  /** Code that built it: package version (+ git sha when known). */
  codeVersion: string;
  /** The embedding model version the indexed vectors come from (lineage), when the collection is bound to one. */
  model?: { name: string; version: number };
  stats: {
    rows: number;
    liveRows: number;
    bytes: number;
    buildMs: number;
    kind: 'initial' | 'delta' | 'compaction' | 'deletes' | 'candidate';
  };
}

/** A collection's seq counter as one read saw it (Catalog.seqState). */
export interface SeqState {
  /** Every write at or below it is durable (see Catalog.stableSeq). */
  stable: number;
  /** The last seq allocated (0 before the first write); stable ≤ allocated. */
  allocated: number;
  /**
   * Write leases still in the counter item (none: absent). A reader resolves their seqs through the ids
   * they name; the log has no entries for them until they are settled (Catalog.settleWrites).
   */
  pending?: PendingWrite[];
  /**
   * The stable seq if every pending write lease had landed (plain leases alone block it; absent when
   * there are no pending write leases): a reader holding those leases' records has read up to here.
   */
  stableBesideWrites?: number;
}

export interface Catalog {
  createCollection(meta: Omit<CollectionMeta, 'generation' | 'createdAt'>): Promise<CollectionMeta>;
  /** Throws NotFoundError. */
  getCollection(name: string): Promise<CollectionMeta>;
  listCollections(): Promise<CollectionMeta[]>;
  /**
   * Removes every item of the collection's catalog partition (meta, counter, manifests,
   * promotions, and what other stores keep there: evaluations, import jobs). Throws NotFoundError.
   */
  deleteCollection(name: string): Promise<void>;
  /**
   * Sets collection settings (quality gate, a line's default efSearch) on its meta item, only
   * while it is still `generation` (NotFoundError otherwise).
   */
  updateCollectionSettings(
    collection: string,
    generation: number,
    settings: { minRecall?: number | null; efSearch?: number; nprobe?: number; candidate?: string },
  ): Promise<void>;

  /**
   * Reserves n consecutive seqs (atomic counter) and registers them as in flight. With `ids` (one per
   * seq), a write lease: the counter item names what each seq writes until the lease is settled, and it
   * blocks the stable seq until settled (settleWrites), expired or not, so a write acknowledged without
   * its log entries can never be indexed past.
   */
  leaseSeqs(collection: string, n: number, leaseMs: number, ids?: string[]): Promise<SeqLease>;
  /**
   * Settles write leases: writes their log entries (through `log`), then removes them from the counter
   * item. A lease is settled when every id it names has a record at or above its seq (durable), or when
   * it expired (its writer no longer acknowledges it; the log entries are written anyway, and a reader
   * keeps only records whose seq is in range). `only` settles just that lease (its writer, after the
   * records landed: no record check). Returns how many were settled.
   */
  settleWrites(collection: string, log: WriteLog, only?: SeqLease): Promise<number>;
  /** Marks a lease done (its records are durable). Returns false if the lease had already expired and been dropped. */
  releaseSeqs(collection: string, lease: SeqLease): Promise<boolean>;
  /**
   * The highest seq below which every allocated write is durable:
   * (lowest unexpired in-flight lease first) − 1, or the last allocated seq when none is in flight.
   */
  stableSeq(collection: string): Promise<number>;
  /**
   * stableSeq and the last allocated seq from one read. No write above `allocated` existed when
   * it was read, so a reader that already read every seq up to it has nothing new to read.
   */
  seqState(collection: string): Promise<SeqState>;

  /** One conditional put. Returns false (and writes nothing) when that version already exists. */
  commitManifest(manifest: Manifest): Promise<boolean>;
  /**
   * Moves the meta item's head pointer of `line` forward to `version` (never back), while the collection
   * is still `generation`. False when it was already there or past it, or the generation moved.
   */
  setHead(collection: string, generation: number, line: string, version: number): Promise<boolean>;
  /**
   * Manifest `version` of this generation of the collection, from a per-process cache when it was read
   * before (manifests never change once committed); undefined when absent or of another generation.
   */
  manifestAt(collection: string, generation: number, version: number): Promise<Manifest | undefined>;
  /**
   * Latest committed manifest, strongly consistent; undefined before the first build. With
   * `line`, the latest of that line (versions of all lines share one number sequence), read
   * newest first in pages of `pageSize` items (default 8; the number of interleaving lines is
   * the right size: one read in the common case).
   */
  latestManifest(collection: string, line?: string, pageSize?: number): Promise<Manifest | undefined>;
  /**
   * Changes the collection's lines with one conditional update of its meta item: adds a
   * candidate, removes one, or promotes one (its settings become `index`; the previously
   * serving line becomes a candidate, so a promotion can be reversed the same way). Fails
   * with ConflictError when the collection's serving line or generation moved meanwhile.
   */
  updateLines(collection: string, change: LineChange): Promise<CollectionMeta>;
  /** Promotions of the collection's current generation, newest first (never one that did not happen). */
  listPromotions(collection: string, limit?: number): Promise<LinePromotion[]>;
  getManifest(collection: string, version: number): Promise<Manifest>;
  /** Newest first. */
  listManifests(collection: string, limit?: number): Promise<Manifest[]>;
}

export type LineChange =
  | { op: 'add'; generation: number; line: string; settings: CandidateLine; maxCandidates: number }
  | { op: 'remove'; generation: number; line: string }
  | {
      op: 'promote';
      generation: number;
      line: string;
      expectedServing: string;
      at: string;
      by?: string;
      version: number;
      forced: boolean;
      reason?: string;
    };

/** One switch of a collection's serving line (who, when, from, to, why), newest first in listings. */
export interface LinePromotion {
  /** The collection's `linesRev` after the switch (orders promotions). */
  rev: number;
  generation: number;
  from: string;
  to: string;
  /** The promoted line's head version at the switch. */
  version: number;
  at: string;
  by?: string;
  reason?: string;
  forced: boolean;
}

/** The write log of one collection key, as settleWrites needs it. */
export interface WriteLog {
  /** Log entries (seq → id), idempotent. */
  append(entries: Array<{ seq: number; id: string }>): Promise<void>;
  /** The current seq of each id (absent: no record). */
  seqs(ids: string[]): Promise<Map<string, number>>;
}

export interface RecordStore {
  /**
   * Writes items (BatchWriteItem, retrying UnprocessedItems with backoff until all are written): the log
   * entries first, then the records. With `logged: false` only the records: their seqs are named by a
   * write lease (Catalog.leaseSeqs with ids) until it is settled.
   */
  put(records: StoredRecord[], options?: { logged?: boolean }): Promise<void>;
  /** This store's write log of a collection key (Catalog.settleWrites). */
  writeLog(collection: string): WriteLog;
  /** Strongly consistent; missing ids are absent from the result. */
  get(collection: string, ids: string[]): Promise<Map<string, StoredRecord>>;
  /**
   * Strongly consistent: the current record of every id written with seq > afterSeq (and
   * ≤ upToSeq if given; then records rewritten above upToSeq are left to a later tail), in
   * batches ascending by seq. Sees every write acknowledged before the call (the write log,
   * never the eventually consistent GSI: docs/architecture.md §6.1). `progress(seq)`, called before
   * each batch is yielded, says every log entry with seq ≤ `seq` found by the read is resolved once that
   * batch has been consumed: a reader that stops early can resume there (TailCache keeps such progress).
   */
  tail(
    collection: string,
    afterSeq: number,
    upToSeq?: number,
    progress?: (seq: number) => void,
    /** Write leases not yet in the log (SeqState.pending): their seqs are read as if logged. */
    pending?: readonly PendingWrite[],
  ): AsyncIterable<StoredRecord[]>;
  /**
   * Every item of a collection (for delete-by-filter); an id may come more than once and
   * an item may be stale, so callers re-read what they act on with `get`.
   */
  scan(collection: string, pending?: readonly PendingWrite[]): AsyncIterable<StoredRecord[]>;
  /**
   * Lets the write log go below `bound` (the lowest watermark of every index line), after a
   * grace period that lets in-flight readers of older manifests finish. Returns entries deleted.
   */
  trimLog(collection: string, bound: number): Promise<number>;
  /** Removes items physically, only where their seq is still the given one (conditional). */
  purge(collection: string, items: Array<{ id: string; seq: number }>): Promise<void>;
  /**
   * One page of the collection's items in bySeq GSI order (seq ascending), tombstones included, at most
   * `limit` items from one Query; `next` is where the following page starts (absent at the end). Reads
   * the GSI, so eventually consistent on AWS (docs/architecture.md §4.2). `values` / `metadata` false
   * leave those attributes out of the read (a live record then has no `vector`).
   */
  list(collection: string, options: RecordListOptions): Promise<RecordPage>;
  /**
   * Writes one record (log entry first, like `put`) only if the stored record still has seq
   * `expectedSeq`: a read-modify-write that loses to a concurrent write returns false and changes nothing
   * visible (its log entry names a seq no record has, which readers skip).
   */
  putIfSeq(record: StoredRecord, expectedSeq: number): Promise<boolean>;
}

/** Where a listing stands: the last item of the previous page (its GSI key). */
export interface RecordPosition {
  seq: number;
  id: string;
}

export interface RecordListOptions {
  after?: RecordPosition;
  /** Items read by the Query (1–1000). */
  limit: number;
  values: boolean;
  metadata: boolean;
  /** Also read each row's raw-input reference (`StoredRecord.input`). */
  inputs?: boolean;
}

export interface RecordPage {
  records: StoredRecord[];
  next?: RecordPosition;
}

export interface ObjectStore {
  /** Writes once: an existing key is left untouched (immutable objects). */
  putImmutable(key: string, bytes: Uint8Array): Promise<void>;
  /**
   * Throws NotFoundError when absent. With the object's `size` (known for shards), a large object may be
   * read as parallel ranged GETs.
   */
  get(key: string, size?: number): Promise<Uint8Array>;
  /**
   * sha256 (hex) and size of an object, read as a stream in constant memory (model artifacts
   * can be GBs), plus the ETag of the object version that was read. Throws NotFoundError when absent.
   */
  hash(key: string): Promise<{ sha256: string; bytes: number; etag: string }>;
  list(prefix: string): AsyncIterable<Array<{ key: string; size: number; lastModified: Date }>>;
  delete(keys: string[]): Promise<void>;
}

/** One uploaded part of a multipart upload, as the client reports it (ETag from the part's PUT response). */
export interface UploadedPart {
  partNumber: number;
  etag: string;
}

/**
 * Uploads that bypass the API (docs/architecture.md §8.1, model artifacts): presigned requests the client sends
 * straight to S3, and the server-side steps around them. Implemented by S3ObjectStore.
 */
export interface DirectUploads {
  /** Size and ETag of an object without reading it. NotFoundError when absent. */
  head(key: string): Promise<{ bytes: number; etag: string }>;
  /** A presigned single PUT of `key`, valid for `expiresInSeconds`. */
  presignPut(key: string, expiresInSeconds: number): Promise<string>;
  /** Starts a multipart upload of `key`; returns its upload id. */
  createMultipart(key: string): Promise<string>;
  /** A presigned UploadPart of part `partNumber` (1–10000) of the upload. */
  presignPart(key: string, uploadId: string, partNumber: number, expiresInSeconds: number): Promise<string>;
  /**
   * Assembles the parts. Unknown or finished upload → NotFoundError (`uploadId`); parts S3
   * refuses (wrong ETag, order, a non-last part under 5 MiB) → ValidationError (`parts`).
   */
  completeMultipart(key: string, uploadId: string, parts: UploadedPart[]): Promise<void>;
  /** Drops the upload and its parts. Unknown upload → NotFoundError (`uploadId`). */
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /**
   * Server-side copy (≤ 5 GiB, S3's single-copy limit) that only happens while `from` still has
   * ETag `ifMatch`; ConflictError when it changed meanwhile, NotFoundError when it is gone.
   */
  copyIfMatch(from: string, to: string, ifMatch: string): Promise<void>;
}
