/**
 * The contract between the HTTP layer (`shared/api`, `functions/api`) and the core. The
 * API layer validates and normalises requests into these shapes (ids as strings,
 * vectors as Float32Array, filters parsed into the AST) and shapes the results as JSON;
 * the core (`shared/core.ts`) implements it on the storage adapters.
 */
import type { FilterNode } from './filter/ast.js';
import type { EmbeddingBinding, LinePromotion, Manifest } from './storage/types.js';
import type { Metadata, Metric } from './types.js';
import type {
  AliasTarget,
  CompletedUpload as CompletedModelUpload,
  EmbeddingRequest,
  TokenizerSpec,
  Evaluation,
  ExperimentResults,
  ExperimentSummary,
  FeedbackEvent,
  IndexSpec,
  LineView,
  ModelAliasTarget,
  ModelVersion,
  MultipartUpload as MultipartModelUpload,
  PointerMove,
  SingleUpload as SingleModelUpload,
  StartExperimentInput,
  UploadRequest as ModelUploadRequest,
  TuneJob,
} from './service-types.js';

export interface CreateCollectionInput {
  name: string;
  /** Required unless `embedding` is set (then it defaults to the model version's). */
  dimension?: number;
  metric?: Metric;
  index?: Partial<IndexSpec>;
  /** Quality gate for aliases (0–1). */
  minRecall?: number;
  /** Bind the collection to an embedding-model version (dimension and metric must match it). */
  model?: { name: string; version: number };
  /** Run an ONNX model version on raw inputs (docs/models.md); dimension and metric default to the model's. */
  embedding?: EmbeddingRequest;
}

export interface CollectionStats {
  /** Live vectors (indexed and pending, minus deletes). */
  count: number;
  /** Rows covered by the current index version. */
  indexed: number;
  /** Writes (upserts and deletes) newer than the index watermark. */
  pending: number;
  shards: number;
  /** IVF partitions of the current version (partitioned versions only). */
  partitions?: number;
  /** Current index version (0 before the first build). */
  version: number;
  watermark: number;
  /** Present (false) when `count` is an upper bound: the tail's ids could not all be checked in time. */
  countExact?: false;
}

export interface CollectionInfo {
  name: string;
  dimension: number;
  metric: Metric;
  index: IndexSpec;
  createdAt: string;
  stats?: CollectionStats;
  minRecall?: number;
  model?: { name: string; version: number };
  embedding?: EmbeddingBinding;
  /** Set when the collection was reached through an alias. */
  alias?: { name: string; version?: number; revision: number };
  /** The serving index line, when it is not `main` (a candidate was promoted). */
  indexLine?: string;
  /** Candidate index lines being built beside the serving one. */
  candidates?: string[];
}

export interface VectorInput {
  id: string;
  values: Float32Array;
  metadata?: Metadata;
  /** The raw model input the values were embedded from (`StoredRecord.input`), when Shoal embedded them. */
  inputRef?: string;
}

/** A raw model input: a tensor model's values, or a text model's string. */
export type RawInput = Float32Array | string;

/** A row for a collection with an embedding function: its raw model input instead of values. */
export interface InputRow {
  id: string;
  /** Numbers for a tensor model, a string for a text model (one with a tokenizer). */
  input: RawInput;
  metadata?: Metadata;
}

export interface VectorOutput {
  id: string;
  values?: number[];
  metadata?: Metadata;
}

/** `GET .../vectors`: one page of a collection's live vectors in a stable order. */
export interface ListVectorsInput {
  /** 1–1000. */
  limit: number;
  /** The previous page's `nextCursor`. */
  cursor?: string;
  filter?: FilterNode;
  includeValues: boolean;
  includeMetadata: boolean;
}

export interface ListVectorsOutput {
  vectors: VectorOutput[];
  /** Null only once the listing reached the end. */
  nextCursor: string | null;
}

/** `PATCH .../vectors/{id}`: top-level metadata keys to set; a key set to null is removed. */
export type MetadataPatch = Metadata;

export interface SearchInput {
  /** Query vectors; empty when `inputs` are sent instead. */
  queries: Float32Array[];
  /** Raw model inputs, embedded by the searched collection's embedding function (per arm through an alias). */
  inputs?: RawInput[];
  k: number;
  filter?: FilterNode;
  ef?: number;
  /** Partitions probed on a partitioned version (default: the line's tuned value, else defaultNprobe). */
  nprobe?: number;
  consistency: 'strong' | 'eventual';
  includeMetadata: boolean;
  includeValues: boolean;
  /** Through an alias with a split experiment: the key whose hash picks the arm (same key, same arm). */
  stickyKey?: string;
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
  servedBy: {
    collection: string;
    version: number;
    line?: string;
    alias?: string;
    arm?: 'champion' | 'challenger';
    experiment?: string;
  };
  /** Set on every search through an alias; feedback (`POST /v1/feedback`) refers to it. */
  queryId?: string;
  /** What the search touched: shards searched of the version's, and partitions probed when partitioned. */
  stats: SearchStats;
}

export interface SearchStats {
  /** Distinct shards searched for the request (all queries). */
  shardsSearched: number;
  shardsTotal: number;
  /** Partitions probed per query, averaged over the request's queries (partitioned versions only). */
  partitionsProbed?: number;
  partitionsTotal?: number;
  /** The nprobe asked for (or defaulted); `partitionsProbed` exceeds it when a filter made the planner probe more. */
  nprobe?: number;
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
  /** Why nothing was built: up-to-date, waiting-for-more, lost-race, planned (a build plan's workers have it), busy. */
  reason?: string;
  /** The candidate line this request created (a build with new index settings). */
  candidate?: LineView;
  /** What the same build did for each candidate line (in-process builds). */
  candidates?: Array<Omit<BuildOutput, 'candidates' | 'candidate'> & { line?: string }>;
}

/** `POST .../index`: without `index`, rebuild the serving line now; with it, start a candidate line. */
export interface BuildRequest {
  index?: Partial<IndexSpec>;
  /** The candidate's name (default: derived from its settings). */
  candidate?: string;
}

export interface UpsertOptions {
  /** The model version that produced the vectors; must equal the collection's binding. */
  modelVersion?: { name: string; version: number };
}

export interface ShoalService {
  createCollection(input: CreateCollectionInput): Promise<CollectionInfo>;
  listCollections(): Promise<CollectionInfo[]>;
  getCollection(name: string): Promise<CollectionInfo>;
  deleteCollection(name: string): Promise<void>;

  upsert(collection: string, vectors: VectorInput[], options?: UpsertOptions): Promise<{ upserted: number }>;
  /** Upserts raw inputs into a collection with an embedding function: embedded, kept in S3, written as vectors. */
  upsertInputs(collection: string, rows: InputRow[]): Promise<{ upserted: number }>;
  getVectors(collection: string, ids: string[]): Promise<VectorOutput[]>;
  deleteVectors(collection: string, selector: { ids: string[] } | { filter: FilterNode }): Promise<{ deleted: number }>;
  /** A page of live vectors in the order of their last write (docs/architecture.md §4.2). */
  listVectors(collection: string, input: ListVectorsInput): Promise<ListVectorsOutput>;
  /**
   * Merges `patch` into a live vector's metadata and writes the row again (values unchanged) through the
   * write path; NotFoundError for an absent or deleted id, ConflictError when concurrent writes keep winning.
   */
  patchVector(collection: string, id: string, patch: MetadataPatch): Promise<{ upserted: number }>;

  search(collection: string, input: SearchInput): Promise<SearchOutput>;

  /** Requests a build now (ignoring the batching policy), or starts a candidate line; poll versions for the result. */
  buildIndex(collection: string, request?: BuildRequest, caller?: Caller): Promise<BuildOutput>;
  listVersions(collection: string): Promise<Manifest[]>;
  /** The serving line and the candidate lines (heads, lag, newest evaluation), and the last 20 promotions. */
  listLines(collection: string): Promise<{ serving: LineView; candidates: LineView[]; promotions: LinePromotion[] }>;
  getCandidate(collection: string, line: string): Promise<LineView>;
  /** Stops building a candidate line (its versions stay readable until collected; pinned ones are kept). */
  deleteCandidate(collection: string, line: string): Promise<void>;
  /**
   * Makes a candidate line the serving one in one conditional write (quality gate as for aliases:
   * its newest evaluated version must reach `minRecall` unless forced). The previous serving line
   * becomes a candidate, so promoting it back reverses the switch.
   */
  promoteCandidate(
    collection: string,
    line: string,
    input: { force?: boolean; reason?: string },
    caller?: Caller,
  ): Promise<PromoteOutput>;
}

export interface TuneInput {
  targetRecall: number;
  k: number;
  /** Held-out queries sampled from the version (20–2000, default 100): more = a steadier recall, more time. */
  sample?: number;
  /** The caller's own queries instead of `sample` (20–2000; tune jobs: at most TUNE_JOB_MAX_QUERY_FLOATS). */
  queries?: Float32Array[];
  /** Run as a tune job on the index-builder function (202 with the job) instead of inside the request. */
  async?: boolean;
  /**
   * Also sweep m × efConstruction on a sample of the version's rows (trial graphs built in
   * memory); `candidate` starts a candidate line with the recommendation (true = default name).
   */
  graph?: { sample?: number; candidate?: boolean | string };
}

export interface PromoteOutput {
  collection: string;
  serving: LineView;
  previous: string;
  forced: boolean;
  reason?: string;
}

// ---------------------------------------------------------------------------------------
// Lifecycle (docs/architecture.md §8): aliases, evaluation and quality gates, the model registry.
// ---------------------------------------------------------------------------------------

/** Who makes a change: the API key's id, or `key:<sha256 prefix>` of the bearer token. */
export interface Caller {
  actor: string;
}

export interface PutAliasInput {
  collection: string;
  version?: number;
  /** Follow this index line (e.g. a candidate) instead of the serving line; exclusive with `version`. */
  line?: string;
  /** The revision the caller last saw; a different current revision is a 409 CONFLICT. 0 = must not exist. */
  expectedRevision?: number;
  reason?: string;
  /** Override the target collection's quality gate. */
  force?: boolean;
}

export interface AliasView {
  name: string;
  collection: string;
  /** Pinned index version, or null for "latest". */
  version: number | null;
  /** The index line followed, when not the collection's serving line. */
  line?: string;
  revision: number;
  createdAt: string;
  updatedAt: string;
  /** The running experiment on this alias, or null. */
  experiment: ExperimentSummary | null;
}

export interface EvaluateInput {
  queries?: Float32Array[];
  sample: number;
  k: number;
  ef?: number;
  nprobe?: number;
}

export interface RegisterModelInput {
  dimension: number;
  metric: Metric;
  framework?: string;
  /** `onnx`: Shoal validates the artifact at commit and can run it as an embedding function. */
  format?: 'onnx';
  /** A text model's tokenizer (with `format: "onnx"`): its raw inputs are then strings. */
  tokenizer?: TokenizerSpec;
  description?: string;
  params?: Record<string, unknown>;
  metrics?: Record<string, number>;
  tags?: Record<string, string>;
  /** Artifact bytes sent inline (base64 in JSON, ≤ 4 MB); larger ones go straight to S3 (presigned). */
  artifact?: Uint8Array;
}

export interface ModelComparison {
  name: string;
  a: number;
  b: number;
  dimension: { a: number; b: number } | null;
  metric: { a: Metric; b: Metric } | null;
  params: Record<string, { a: unknown; b: unknown }>;
  metrics: Record<string, { a: number | null; b: number | null; delta: number | null }>;
  tags: Record<string, { a: string | null; b: string | null }>;
}

export interface LifecycleService {
  putAlias(name: string, input: PutAliasInput, caller: Caller): Promise<{ alias: AliasView; created: boolean }>;
  listAliases(): Promise<AliasView[]>;
  getAlias(name: string): Promise<AliasView>;
  deleteAlias(name: string, caller: Caller, expectedRevision?: number): Promise<void>;
  /** Newest first. */
  aliasHistory(name: string): Promise<PointerMove<AliasTarget>[]>;
  rollbackAlias(
    name: string,
    input: { reason?: string; expectedRevision?: number },
    caller: Caller,
  ): Promise<AliasView>;

  evaluateVersion(collection: string, version: number, input: EvaluateInput, caller: Caller): Promise<Evaluation>;
  /** Synchronous: refused (422 ASYNC_REQUIRED) when the version is too large for the API's time. */
  tuneVersion(collection: string, version: number, input: TuneInput, caller: Caller): Promise<Evaluation>;
  /** Creates a queued tune job and asks the index-builder function to run it. */
  startTuneJob(collection: string, version: number, input: TuneInput, caller: Caller): Promise<TuneJob>;
  getTuneJob(collection: string, jobId: string): Promise<TuneJob>;
  /** The index-builder function's entry for `tune` messages (idempotent for finished jobs). */
  runTuneJob(collection: string, jobId: string, opts?: { deadline?: number }): Promise<TuneJob | undefined>;
  updateCollection(name: string, patch: { minRecall?: number | null }): Promise<CollectionInfo>;

  registerModelVersion(
    name: string,
    input: RegisterModelInput,
    caller: Caller,
  ): Promise<{ model: ModelVersion; upload: Record<string, unknown> }>;
  uploadModelArtifact(name: string, version: number, bytes: Uint8Array): Promise<ModelVersion>;
  /** Presigned URL(s) for a pending version's artifact: one PUT, or multipart parts (`parts`). */
  requestModelUpload(
    name: string,
    version: number,
    input: ModelUploadRequest,
  ): Promise<SingleModelUpload | MultipartModelUpload>;
  abortModelUpload(name: string, version: number, uploadId: string): Promise<{ aborted: true; uploadId: string }>;
  /**
   * Completes the multipart upload `multipart` first when given; verifies the sha256 by streaming; freezes the
   * artifact.
   */
  /** `ready` when verified in the call; `verifying` (HTTP 202) when the builder function hashes a large artifact. */
  commitModelVersion(
    name: string,
    version: number,
    sha256: string,
    multipart?: CompletedModelUpload,
  ): Promise<ModelVersion>;
  /** Hashes a `verifying` version's artifact and makes it ready (or pending with the reason). */
  verifyModelArtifact(name: string, version: number): Promise<ModelVersion | undefined>;
  listModels(): Promise<Array<{ name: string; versions: number; latest: number | null }>>;
  getModel(name: string): Promise<{
    name: string;
    versions: ModelVersion[];
    aliases: Array<{ name: string; version: number; revision: number }>;
  }>;
  getModelVersion(name: string, version: number): Promise<ModelVersion>;
  compareModelVersions(name: string, a: number, b: number): Promise<ModelComparison>;
  putModelAlias(
    name: string,
    alias: string,
    input: { version: number; expectedRevision?: number; reason?: string },
    caller: Caller,
  ): Promise<{ alias: { name: string; model: string; version: number; revision: number }; created: boolean }>;
  getModelAlias(
    name: string,
    alias: string,
  ): Promise<{ name: string; model: string; version: number; revision: number }>;
  modelAliasHistory(name: string, alias: string): Promise<PointerMove<ModelAliasTarget>[]>;

  startExperiment(alias: string, input: StartExperimentInput, caller: Caller): Promise<ExperimentResults>;
  /** The alias's running (or last) experiment with per-arm results; checks the guardrails. */
  getExperiment(alias: string): Promise<ExperimentResults>;
  promoteExperiment(
    alias: string,
    input: { reason?: string; force?: boolean },
    caller: Caller,
  ): Promise<ExperimentResults>;
  abortExperiment(alias: string, input: { reason?: string }, caller: Caller): Promise<ExperimentResults>;
  feedback(input: {
    queryId: string;
    id: string;
    event: FeedbackEvent;
  }): Promise<{ attributed: boolean; experiment?: string; alias?: string; arm?: 'champion' | 'challenger' }>;
}
