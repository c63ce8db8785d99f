/**
 * Request and response shapes of the Shoal HTTP API v1, written from docs/api.md and the server's schemas.
 * Every type the SDK exposes lives in this one file so that it can later be generated from the OpenAPI
 * document without touching the rest of the package; the package never imports the server's code.
 */

export type Metric = 'cosine' | 'l2' | 'ip';
export type Engine = 'hnsw' | 'flat';
export type Role = 'read' | 'write' | 'admin';
export type Consistency = 'strong' | 'eventual';

/** A JSON value as metadata holds it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Metadata = Record<string, JsonValue>;

/**
 * A filter: a Milvus-style expression (`lang == "en" and year >= 2021`) or a JSON filter object
 * (`{"year": {"$lt": 2022}}`).
 */
export type Filter = string | Record<string, unknown>;

export interface IndexSpec {
  engine?: Engine;
  m?: number;
  efConstruction?: number;
  efSearch?: number;
  seed?: number;
  partitions?: number;
  nprobe?: number;
}

export interface ModelRef {
  name: string;
  version: number;
}

// --- Collections ----------------------------------------------------------------------

export interface CreateCollectionInput {
  name: string;
  dimension: number;
  metric: Metric;
  index?: IndexSpec;
  minRecall?: number;
  model?: ModelRef;
}

export interface CollectionStats {
  /** Live vectors (indexed and pending, minus deletes). */
  count: number;
  /** Live rows in the current index version. */
  indexed: number;
  /** Distinct ids whose newest write is newer than the index watermark. */
  pending: number;
  shards: number;
  partitions?: number;
  /** 0 before the first build. */
  version: number;
  /** Every write with seq ≤ watermark is indexed. */
  watermark: number;
}

export interface Collection {
  name: string;
  dimension: number;
  metric: Metric;
  index: IndexSpec & { engine: Engine };
  createdAt: string;
  /** Present on `GET /v1/collections/{name}`. */
  stats?: CollectionStats;
  minRecall?: number;
  model?: ModelRef;
  alias?: { name: string; version?: number; revision: number };
  indexLine?: string;
  candidates?: string[];
}

// --- Vectors --------------------------------------------------------------------------

export interface VectorInput {
  /** Strings of 1–512 UTF-8 bytes, or non-negative safe integers (kept as their decimal string). */
  id: string | number;
  values: ArrayLike<number>;
  metadata?: Metadata;
}

export interface Vector {
  id: string;
  values?: number[];
  metadata?: Metadata;
}

export interface UpsertOptions {
  /** The model version that produced the vectors; must equal the collection's binding. */
  modelVersion?: ModelRef;
}

export interface UpsertResult {
  upserted: number;
}

export type DeleteSelector = { ids: Array<string | number> } | { filter: Filter };

export interface DeleteResult {
  deleted: number;
}

export type Include = 'metadata' | 'values';

interface SearchOptionsBase {
  /** 1–1000, default 10. */
  k?: number;
  filter?: Filter;
  ef?: number;
  nprobe?: number;
  /** `strong` (default) also reads the writes not yet indexed. */
  consistency?: Consistency;
  include?: Include[];
  /** Through an alias with a split experiment: the same key always gets the same arm. */
  stickyKey?: string;
}

export interface SearchInput extends SearchOptionsBase {
  vector: ArrayLike<number>;
}

export interface SearchManyInput extends SearchOptionsBase {
  /** Up to 100 queries. */
  vectors: ArrayLike<number>[];
}

export interface SearchHit {
  id: string;
  score: number;
  metadata?: Metadata;
  values?: number[];
}

export interface ServedBy {
  collection: string;
  version: number;
  line?: string;
  alias?: string;
  arm?: 'champion' | 'challenger';
  experiment?: string;
}

export interface SearchStats {
  shardsSearched: number;
  shardsTotal: number;
  partitionsProbed?: number;
  partitionsTotal?: number;
  nprobe?: number;
}

export interface SearchResult<R = SearchHit[]> {
  /** Best first; for `searchMany` one list per query. */
  results: R;
  servedBy: ServedBy;
  /** Set on every search through an alias; `feedback()` refers to it. */
  queryId?: string;
  stats: SearchStats;
}

export interface ListVectorsOptions {
  /** Page size, 1–1000 (the server's default is 100). */
  limit?: number;
  cursor?: string;
  filter?: Filter;
  include?: Include[];
}

export interface VectorPage {
  vectors: Vector[];
  nextCursor: string | null;
}

// --- Index builds, versions, candidate lines ------------------------------------------

export interface BuildRequest {
  /** New settings start a candidate index line beside the serving one. */
  index?: IndexSpec;
  candidate?: string;
}

export interface LineHead {
  version: number;
  watermark: number;
  liveRows: number;
  shards: number;
  bytes: number;
  createdAt: string;
  parent: number;
}

export interface LineView {
  line: string;
  serving: boolean;
  index: IndexSpec & { engine: Engine };
  createdAt?: string;
  createdBy?: string;
  head: LineHead | null;
  lagSeq: number;
  evaluation?: { version: number; recall: number; k: number; ef?: number; latencyMs: { p50: number; p95: number } };
}

export interface BuildResult {
  version: number;
  built?: boolean;
  queued?: boolean;
  kind?: BuildKind;
  shards: number;
  watermark: number;
  reason?: string;
  candidate?: LineView;
}

export type BuildKind = 'initial' | 'delta' | 'compaction' | 'deletes' | 'candidate';

export interface ShardRef {
  key: string;
  sha256?: string;
  rows?: number;
  liveRows?: number;
  [field: string]: unknown;
}

export interface Manifest {
  collection: string;
  version: number;
  line?: string;
  parent: number;
  watermark: number;
  engine: Engine;
  params: Record<string, unknown>;
  shards: ShardRef[];
  createdAt: string;
  codeVersion: string;
  model?: ModelRef;
  stats: { rows: number; liveRows: number; bytes: number; buildMs: number; kind: BuildKind };
  evaluation?: Evaluation;
  [field: string]: unknown;
}

export interface LinePromotion {
  rev: number;
  from: string;
  to: string;
  version: number;
  at: string;
  by: string;
  reason?: string;
  forced?: boolean;
}

export interface CandidateList {
  serving: LineView;
  candidates: LineView[];
  promotions: LinePromotion[];
}

export interface PromoteCandidateResult {
  collection: string;
  serving: LineView;
  previous: string;
  forced: boolean;
  reason?: string;
}

export interface EvaluateInput {
  queries?: ArrayLike<number>[];
  sample?: number;
  k?: number;
  ef?: number;
  nprobe?: number;
}

export interface TuneInput {
  targetRecall: number;
  k?: number;
  graph?: { sample?: number; candidate?: boolean | string };
}

export interface Evaluation {
  collection: string;
  version: number;
  k: number;
  ef?: number;
  nprobe?: number;
  queries: number;
  source: 'sample' | 'supplied';
  recall: number;
  latencyMs: { p50: number; p95: number; mean: number };
  rows: number;
  evaluatedAt: string;
  by?: string;
  tuning?: {
    targetRecall: number;
    k: number;
    chosenEf?: number;
    chosenNprobe?: number;
    table: Array<{ ef: number; nprobe?: number; recall: number; p50: number; p95: number }>;
    graph?: Record<string, unknown>;
  };
  [field: string]: unknown;
}

// --- Imports --------------------------------------------------------------------------

export type ImportState = 'queued' | 'running' | 'succeeded' | 'partial' | 'failed' | 'cancelled';
export type ImportFormat = 'jsonl' | 'jsonl.gz' | 'csv' | 'csv.gz' | 'parquet' | 'npy';

export interface ImportLimits {
  maxRows: number;
  maxDurationSeconds: number;
  maxRejectRatio: number;
  rejectRatioMinRows: number;
}

export interface CreateImportInput {
  uri: string;
  maxRows?: number;
  maxDurationSeconds?: number;
  maxRejectRatio?: number;
}

export interface ImportJob {
  jobId: string;
  collection: string;
  uri: string;
  format: ImportFormat | null;
  state: ImportState;
  rowsRead: number;
  rowsWritten: number;
  rowsRejected: number;
  bytesRead: number;
  bytesTotal: number;
  percent: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  reason: string | null;
  report: string | null;
  limits: ImportLimits;
  requeues: number;
}

export interface ImportReject {
  /** 1-based physical line (text formats). */
  line?: number;
  /** 0-based row (Parquet, .npy). */
  row?: number;
  id?: string;
  code: string;
  reason: string;
}

export interface RejectPage {
  rejects: ImportReject[];
  nextCursor: string | null;
  rowsRejected: number;
  /** Rejects kept in the report (at most 100 000 per job; `rowsRejected` counts them all). */
  reported: number;
}

export interface UploadRequestInput {
  filename: string;
  contentType?: string;
}

export interface ImportUpload {
  uploadUrl: string;
  method: 'PUT';
  /** Headers the PUT must carry. */
  headers: Record<string, string>;
  /** What to pass to `POST .../imports`. */
  uri: string;
  expiresAt: string;
}

// --- Aliases and experiments ----------------------------------------------------------

export interface AliasTarget {
  collection: string;
  version?: number;
  line?: string;
}

export interface PutAliasInput extends AliasTarget {
  expectedRevision?: number;
  reason?: string;
  force?: boolean;
}

export interface ExperimentSummary {
  id: string;
  mode: ExperimentMode;
  weight: number;
  state: ExperimentState;
  champion: AliasTarget;
  challenger: AliasTarget;
  createdAt: string;
}

export interface Alias {
  name: string;
  collection: string;
  /** Pinned version, or null for the latest. */
  version: number | null;
  line?: string;
  revision: number;
  createdAt: string;
  updatedAt: string;
  experiment: ExperimentSummary | null;
}

export type MoveAction = 'create' | 'move' | 'rollback' | 'promote';

export interface AliasMove<T = AliasTarget> {
  revision: number;
  at: string;
  by: string;
  action: MoveAction;
  from: T | null;
  to: T;
  reason?: string;
  forced?: boolean;
}

export type ExperimentMode = 'split' | 'shadow';
export type ExperimentState = 'running' | 'promoted' | 'aborted';
export type Verdict = 'challenger' | 'champion' | 'inconclusive';

export interface Guardrails {
  maxErrorRateDelta: number;
  maxP95Ratio: number;
  minSamples: number;
}

export interface StartExperimentInput {
  challenger: AliasTarget;
  mode: ExperimentMode;
  weight?: number;
  overlapSample?: number;
  tau2?: number;
  guardrails?: Partial<Guardrails>;
}

export interface Experiment extends ExperimentSummary {
  alias: string;
  guardrails: Guardrails;
  overlapSample: number;
  tau2?: number;
  createdBy: string;
  endedAt?: string;
  endedBy?: string;
  reason?: string;
}

export interface Proportion {
  successes: number;
  trials: number;
  rate: number | null;
  /** Wilson 95 % interval. */
  ci95: [number, number] | null;
}

export interface ArmResult {
  target: AliasTarget;
  requests: number;
  errors: number;
  errorRate: number | null;
  latencyMs: { p50: number | null; p95: number | null; mean: number | null };
  overlapAtK: { mean: number | null; samples: number };
  clicks: number;
  converts: number;
  clickRate: Proportion;
  convertRate: Proportion;
}

export interface RateTest {
  difference: number | null;
  fixedHorizon: { z: number; p: number; validity: string } | null;
  sequential: { p: number; ci95: [number, number]; tau2: number; minTrials: number };
  significant: boolean;
  verdict: Verdict;
}

export interface ExperimentResults {
  experiment: Experiment;
  arms: { champion: ArmResult; challenger: ArmResult };
  overlapAtK: { mean: number | null; samples: number };
  /** Null in shadow mode. */
  tests: { click: RateTest | null; convert: RateTest | null };
}

export type FeedbackEvent = 'click' | 'convert';

export interface FeedbackInput {
  queryId: string;
  id: string;
  event: FeedbackEvent;
}

export type FeedbackResult =
  | { attributed: true; experiment: string; alias: string; arm: 'champion' | 'challenger' }
  | { attributed: false };

// --- Models ---------------------------------------------------------------------------

export interface RegisterModelInput {
  dimension: number;
  metric: Metric;
  framework?: string;
  description?: string;
  params?: Record<string, unknown>;
  metrics?: Record<string, number>;
  tags?: Record<string, string>;
  /** Inline artifact, base64 (≤ 4 MB); larger artifacts go to the presigned URL. */
  artifact?: string;
}

export interface ModelVersion {
  name: string;
  version: number;
  state: 'pending' | 'verifying' | 'ready';
  dimension: number;
  metric: Metric;
  framework?: string;
  description?: string;
  params: Record<string, unknown>;
  metrics: Record<string, number>;
  tags: Record<string, string>;
  artifact: { key: string; sha256?: string; bytes?: number };
  createdAt: string;
  createdBy: string;
  committedAt?: string;
  verification?: { sha256: string; bytes: number; requestedAt: string; error?: string; finishedAt?: string };
}

export interface SingleUpload {
  method: 'PUT';
  url: string;
  expiresAt: string;
  headers: Record<string, string>;
  maxBytes: number;
}

export interface MultipartUpload {
  method: 'PUT';
  uploadId: string;
  parts: Array<{ partNumber: number; url: string }>;
  expiresAt: string;
  headers: Record<string, string>;
  minPartBytes: number;
  maxBytes: number;
}

export interface RegisteredModel {
  model: ModelVersion;
  upload: SingleUpload & {
    uploaded: boolean;
    paths: { upload: string; commit: string; inline: string };
    maxInlineBytes: number;
  };
}

export interface ModelUploadInput {
  parts?: number;
  firstPart?: number;
  uploadId?: string;
  expiresIn?: number;
}

export interface CommitModelInput {
  sha256: string;
  uploadId?: string;
  parts?: Array<{ partNumber: number; etag: string }>;
}

export interface Model {
  name: string;
  versions: ModelVersion[];
  [field: string]: unknown;
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

export interface ModelAlias {
  name: string;
  model: string;
  version: number;
  revision: number;
  [field: string]: unknown;
}

// --- Keys and health ------------------------------------------------------------------

export interface RateLimit {
  perSecond: number;
  burst?: number;
}

export interface CreateKeyInput {
  name: string;
  role: Role;
  collections?: string[];
  /** ISO 8601, in the future. */
  expiresAt?: string;
  rateLimit?: RateLimit;
}

export interface ApiKey {
  id: string;
  name: string;
  role: Role;
  collections?: string[];
  createdBy: string;
  createdAt: string;
  expiresAt?: string;
  rateLimit?: RateLimit;
  lastUsedAt?: string;
}

export interface CreatedKey extends ApiKey {
  /** The secret (`shoal_…`), shown this once. */
  key: string;
}

export interface Health {
  status: 'ok';
  version: string;
  local?: { s3Endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string };
}

/** The error body every API error has. */
export interface ApiErrorBody {
  error: { code: string; message: string; field?: string; details?: Record<string, unknown> };
}
