/**
 * The data shapes of the service contract (`service.ts`): what the HTTP layer sends into the
 * core and gets back, and what the lifecycle stores persist of it. They live here, below every
 * implementation, so the contract never imports the modules that implement it: lifecycle,
 * indexing, search and storage import these types, never the other way round
 * (`test/unit/architecture.test.ts` keeps it so).
 */
import type { EngineName } from './engine/types.js';
import type { UploadedPart } from './storage/types.js';
import type { Metric } from './types.js';

// --- Index lines -----------------------------------------------------------------------

/** Index settings as the API shows them: the engine plus its parameters, flat. */
export interface IndexSpec {
  engine: EngineName;
  m?: number;
  efConstruction?: number;
  efSearch?: number;
  seed?: number;
  /** IVF partitions, forced (docs/architecture.md §5.6); absent = automatic by size. */
  partitions?: number;
  /** Partitions a search probes by default (tuning sets it). */
  nprobe?: number;
}

export interface LineView {
  line: string;
  serving: boolean;
  index: IndexSpec;
  createdAt?: string;
  createdBy?: string;
  /** The line's newest version; null until the builder has built it. */
  head: {
    version: number;
    watermark: number;
    liveRows: number;
    shards: number;
    bytes: number;
    createdAt: string;
    parent: number;
  } | null;
  /** Acknowledged writes the head does not cover yet (stable seq − watermark). */
  lagSeq: number;
  /** The newest evaluation of a version of this line (what promotion's quality gate reads). */
  evaluation?: { version: number; recall: number; k: number; ef?: number; latencyMs: { p50: number; p95: number } };
}

// --- Aliases and their move history ----------------------------------------------------

/** Where an alias points: a collection, optionally pinned to one index version. */
export interface AliasTarget {
  collection: string;
  /** Pinned index version (a snapshot); absent = the collection's latest version on every request. */
  version?: number;
  /**
   * Follow an index line of the collection instead of its serving line: that line's newest
   * version on every request (a candidate that keeps tracking writes). Exclusive with `version`.
   */
  line?: string;
}

/** Where a model alias points. */
export interface ModelAliasTarget {
  model: string;
  version: number;
}

export type PointerTarget = AliasTarget | ModelAliasTarget;

export type MoveAction = 'create' | 'move' | 'rollback' | 'promote';

/** One recorded move of an alias (or model alias). */
export interface PointerMove<T extends PointerTarget = PointerTarget> {
  /** The alias revision this move produced (1 for the creation). */
  revision: number;
  /** ISO-8601. */
  at: string;
  /** Key id of the caller (or `key:<sha256 prefix>` of the bearer token). */
  by: string;
  action: MoveAction;
  from: T | null;
  to: T;
  reason?: string;
  /** True when a quality gate was overridden with `force`. */
  forced?: boolean;
}

// --- Evaluation of index versions ------------------------------------------------------

/** Recall/latency of one index version, stored next to (not inside) its immutable manifest. */
export interface Evaluation {
  collection: string;
  generation: number;
  version: number;
  k: number;
  /** efSearch used (absent = the version's default). */
  ef?: number;
  /** Partitions probed per query (partitioned versions). */
  nprobe?: number;
  queries: number;
  source: 'sample' | 'supplied';
  /** Mean recall@k against exact search over the same rows. */
  recall: number;
  latencyMs: { p50: number; p95: number; mean: number };
  /** Live rows the version holds (the exact search's corpus). */
  rows: number;
  evaluatedAt: string;
  by?: string;
  /** Auto-tuning sweep (efSearch → recall/latency), when one ran. */
  tuning?: {
    targetRecall: number;
    k: number;
    chosenEf?: number;
    /** Partitioned versions: the nprobe chosen with chosenEf (the table then holds (nprobe, ef) pairs). */
    chosenNprobe?: number;
    table: Array<{ ef: number; nprobe?: number; recall: number; p50: number; p95: number }>;
    /** The m × efConstruction sweep on a sample (`graph` tuning), when one ran. */
    graph?: {
      sample: number;
      queries: number;
      table: GraphTrial[];
      recommendation: { m: number; efConstruction: number; efSearch: number };
      /** The candidate line started with the recommendation, when asked for. */
      candidate?: string;
    };
  };
}

/** What an asynchronous tune job runs: the tune request as validated, without `async`. */
export interface TuneJobInput {
  targetRecall: number;
  k: number;
  /** Held-out queries sampled from the version (default 100); with `queries`, how many were supplied. */
  sample: number;
  /** True when the caller supplied the queries (kept beside the job, read by the worker). */
  queries?: boolean;
  graph?: { sample?: number; candidate?: boolean | string };
}

export type TuneJobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/**
 * An asynchronous tune (`POST …/tune {async: true}`, docs/architecture.md §8.7), run by the index-builder
 * function; kept 7 days (DynamoDB TTL).
 */
export interface TuneJob {
  id: string;
  collection: string;
  version: number;
  status: TuneJobStatus;
  createdAt: string;
  updatedAt: string;
  /** Rows of the sweep table measured so far; `of`: the most the sweep can measure (it stops at the target). */
  progress: { measured: number; of?: number };
  input: TuneJobInput;
  /** Who asked (the evaluation's `by`). */
  by?: string;
  /** Once `succeeded`: the stored evaluation, as the synchronous tune answers it. */
  evaluation?: Evaluation;
  /** Once `failed`: the typed error's code and message. */
  error?: { code: string; message: string };
}

export interface GraphTrial {
  m: number;
  efConstruction: number;
  /** Cheapest efSearch of TUNE_EFS that met the target on the sample (or the largest tried). */
  ef: number;
  recall: number;
  p50: number;
  p95: number;
  buildMs: number;
  bytesPerVector: number;
  meetsTarget: boolean;
  /**
   * efSearch × m: the distance computations a query makes on the bottom layer, the search work
   * that latency follows. Deterministic, so the front and the choice do not flip with timer
   * noise on sample-sized indexes (whose sub-millisecond p50s are reported but not compared).
   */
  searchCost: number;
  /** No other trial has both higher-or-equal recall and lower-or-equal search cost (and is better in one). */
  pareto: boolean;
}

// --- Model registry --------------------------------------------------------------------

/** What `embedding` at collection creation asks for. */
export interface EmbeddingRequest {
  model: string;
  version?: number;
  alias?: string;
  /** Names of the tensors to feed and read (required only when the model has several). */
  input?: string;
  output?: string;
}

/**
 * A WordPiece tokenizer shipped with a model version (docs/models.md): the version then takes text as its raw
 * input. Defaults: `lowercase` true, `unknown` "[UNK]", `pad` "[PAD]", `continuation` "##"; `cls`/`sep`
 * frame the tokens when set. Every named token must be in `vocab` (ids are vocabulary positions).
 */
export interface TokenizerSpec {
  type: 'wordpiece';
  vocab: string[];
  /** Tokens fed per text (cut or padded to it); the model's id input takes this many. */
  maxLength: number;
  lowercase?: boolean;
  unknown?: string;
  pad?: string;
  cls?: string;
  sep?: string;
  continuation?: string;
}

/** Element types of model tensors Shoal recognises (ONNX TensorProto.DataType names). */
export type ModelDtype = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'string' | 'bool' | 'float16' | 'float64';

/** One graph input or output: a dimension is a number, or a symbol (`"batch"`) when left free. */
export interface ModelTensorInfo {
  name: string;
  dtype: ModelDtype | 'unknown';
  shape: Array<number | string>;
}

/** What a model takes and gives, read from the artifact at commit (shared/models/onnx.ts). */
export interface ModelSignature {
  irVersion: number;
  opsets: Array<{ domain: string; version: number }>;
  producer?: string;
  inputs: ModelTensorInfo[];
  outputs: ModelTensorInfo[];
  /** Operator types used by the graph (sorted, distinct): what a runtime must support. */
  ops: string[];
  /** Parameters stored in the graph (initializers): a rough size of the model. */
  parameters: number;
}

/**
 * pending (artifact may be uploaded) → ready (verified, immutable). Artifacts too large to hash
 * inside an API request go pending → verifying (hashed by the builder function) → ready, or
 * back to pending with `verification.error` when the bytes do not match.
 */
export type ModelVersionState = 'pending' | 'verifying' | 'ready';

export interface ModelVersion {
  name: string;
  version: number;
  state: ModelVersionState;
  dimension: number;
  metric: Metric;
  framework?: string;
  /**
   * The artifact's format when Shoal can run it: `onnx` makes the version usable as a collection's
   * embedding function (docs/models.md). Checked at commit: the model must load, and its signature is stored.
   */
  format?: 'onnx';
  /** Inputs and outputs of an `onnx` version, read at commit. */
  signature?: ModelSignature;
  /** Text models: how a string becomes the model's token ids (docs/models.md). */
  tokenizer?: TokenizerSpec;
  description?: string;
  params: Record<string, unknown>;
  metrics: Record<string, number>;
  tags: Record<string, string>;
  artifact: { key: string; sha256?: string; bytes?: number };
  createdAt: string;
  createdBy: string;
  committedAt?: string;
  /** The last asynchronous verification: what was asked for, and why it failed when it did. */
  verification?: { sha256: string; bytes: number; requestedAt: string; error?: string; finishedAt?: string };
}

/** `POST .../versions/{v}/upload`: nothing = one PUT; `parts` = multipart (new, or more URLs for `uploadId`). */
export interface UploadRequest {
  parts?: number;
  firstPart?: number;
  uploadId?: string;
  expiresIn?: number;
}

export interface SingleUpload {
  method: 'PUT';
  url: string;
  expiresAt: string;
  /** Headers the request must carry: none (only `host` is signed; any content-type is accepted). */
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

/** A multipart upload to complete at commit: its id and the ETag of every part. */
export interface CompletedUpload {
  uploadId: string;
  parts: UploadedPart[];
}

// --- Experiments (champion/challenger on an alias) -------------------------------------

export type Arm = 'champion' | 'challenger';

export type ExperimentMode = 'split' | 'shadow';

export type ExperimentState = 'running' | 'promoted' | 'aborted';

export interface Guardrails {
  maxErrorRateDelta: number;
  maxP95Ratio: number;
  minSamples: number;
}

/** A champion/challenger experiment on an alias (at most one running per alias). */
export interface Experiment {
  id: string;
  alias: string;
  mode: ExperimentMode;
  /** Percent of traffic to the challenger in split mode (1–99). */
  weight: number;
  /** The alias's target when the experiment started. */
  champion: AliasTarget;
  challenger: AliasTarget;
  guardrails: Guardrails;
  /** Split mode: fraction of requests on which the other arm also runs, to measure overlap@k. */
  overlapSample: number;
  /**
   * Mixing variance of the sequential test, fixed at start (absent on experiments started before
   * it was settable = DEFAULT_MSPRT_TAU2): changing it mid-run would void the running minimum.
   */
  tau2?: number;
  state: ExperimentState;
  createdAt: string;
  createdBy: string;
  endedAt?: string;
  endedBy?: string;
  /** Why it ended (promotion, abort, guardrail). */
  reason?: string;
}

export type FeedbackEvent = 'click' | 'convert';

export interface StartExperimentInput {
  challenger: AliasTarget;
  mode: ExperimentMode;
  weight?: number;
  guardrails?: Partial<Guardrails>;
  /** Split mode only (0–1, default 0.1). */
  overlapSample?: number;
  /** Split mode only: the sequential test's mixing variance (default DEFAULT_MSPRT_TAU2; see its trade-off). */
  tau2?: number;
}

export interface ExperimentSummary {
  id: string;
  mode: ExperimentMode;
  weight: number;
  state: Experiment['state'];
  champion: AliasTarget;
  challenger: AliasTarget;
  createdAt: string;
}

export interface Proportion {
  successes: number;
  trials: number;
  /** successes / trials; null without trials. */
  rate: number | null;
  /** Wilson score interval at 95 %; null without trials. */
  ci95: [number, number] | null;
}

export interface ZTest {
  /** Positive when the second proportion (the challenger's) is higher. */
  z: number;
  /** Two-sided p-value. */
  p: number;
}

export type Verdict = 'challenger' | 'champion' | 'inconclusive';

export interface ArmResult {
  target: AliasTarget;
  requests: number;
  errors: number;
  errorRate: number | null;
  latencyMs: { p50: number | null; p95: number | null; mean: number | null };
  /** overlap@k with the other arm, over the requests where both ran. */
  overlapAtK: { mean: number | null; samples: number };
  clicks: number;
  converts: number;
  /** Share of served requests with ≥ 1 click / conversion, Wilson 95 % interval. */
  clickRate: Proportion;
  convertRate: Proportion;
}

/** Challenger vs champion on one feedback rate (split mode only). */
export interface RateTest {
  /** Challenger rate − champion rate (null until both arms have trials). */
  difference: number | null;
  /** Pooled two-proportion z-test (z > 0: challenger higher). Valid for ONE look at a pre-planned sample size only. */
  fixedHorizon: (ZTest & { validity: string }) | null;
  /**
   * Always-valid mSPRT: `p` is the running minimum of 1/Λ over every look so far (never
   * increases), `ci95` the running intersection of the 95 % intervals for the difference.
   * Reading it at any time, as often as wished, and stopping once p ≤ 0.05 keeps the
   * false-positive rate ≤ 5 %.
   */
  sequential: { p: number; ci95: [number, number]; tau2: number; minTrials: number };
  /** From the sequential test only: p ≤ 0.05. */
  significant: boolean;
  /** From the sequential test only: the arm with the higher rate once significant. */
  verdict: Verdict;
}

export interface ExperimentResults {
  experiment: Experiment;
  arms: Record<Arm, ArmResult>;
  /** Challenger vs champion (mean over every request where both arms ran). */
  overlapAtK: { mean: number | null; samples: number };
  /** Click and conversion rate tests; null in shadow mode (the challenger never serves). */
  tests: { click: RateTest | null; convert: RateTest | null };
}
