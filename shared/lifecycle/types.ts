/**
 * Lifecycle (DESIGN §6) data shapes and the storage contract behind them: aliases with
 * revisions and move history, evaluation results of index versions, the model registry
 * and model aliases. Implemented on the Catalog table by `storage/dynamo-lifecycle.ts`.
 */
import type { Metric } from '../types.js';
import type { Arm, Guardrails, SequentialState } from './experiment-stats.js';

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

/**
 * A named pointer with optimistic concurrency: `revision` is bumped by every move (one
 * conditional write on the previous revision). `incarnation` distinguishes a re-created
 * alias from a deleted one of the same name, so old history items never show up again.
 */
export interface Pointer<T extends PointerTarget = PointerTarget> {
  name: string;
  target: T;
  revision: number;
  incarnation: string;
  createdAt: string;
  updatedAt: string;
  /** The move that produced `revision` (written atomically with it). */
  lastMove: PointerMove<T>;
}

export type Alias = Pointer<AliasTarget>;
export type ModelAlias = Pointer<ModelAliasTarget>;

/** Recall/latency of one index version, stored next to (not inside) its immutable manifest. */
import type { GraphTrial } from './evaluation.js';

export interface Evaluation {
  collection: string;
  generation: number;
  version: number;
  k: number;
  /** efSearch used (absent = the version's default). */
  ef?: number;
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
    table: Array<{ ef: number; recall: number; p50: number; p95: number }>;
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

export type ExperimentMode = 'split' | 'shadow';
export type ExperimentState = 'running' | 'promoted' | 'aborted';

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

/** Per-arm counters of an experiment (one item per arm, updated with atomic ADD). */
export interface ArmCounters {
  requests: number;
  errors: number;
  /** Latency histogram of successful requests (see experiment-stats LAT_*). */
  latency: number[];
  latencySumMs: number;
  overlapSum: number;
  overlapN: number;
  clicks: number;
  clickedQueries: number;
  converts: number;
  convertedQueries: number;
}

/** One measurement recorded on an arm. */
export interface ArmDelta {
  requests?: number;
  errors?: number;
  latencyMs?: number;
  overlap?: number;
}

export interface QueryAttribution {
  queryId: string;
  alias: string;
  experimentId: string;
  arm: Arm;
}

export type FeedbackEvent = 'click' | 'convert';

export interface LifecycleStore {
  // --- experiments ---
  /** The alias's current (running) or last experiment. */
  getExperiment(alias: string): Promise<Experiment | undefined>;
  /** One conditional put: only when the alias has no running experiment. False otherwise. */
  startExperiment(exp: Experiment): Promise<boolean>;
  /** Replaces the experiment item, only while it is still experiment `exp.id` and running. False otherwise. */
  endExperiment(exp: Experiment): Promise<boolean>;
  /** Atomic ADD of one measurement to an arm's counter item; returns the arm's counters after it. */
  recordArm(experimentId: string, arm: Arm, delta: ArmDelta): Promise<ArmCounters>;
  getArms(experimentId: string): Promise<Record<Arm, ArmCounters>>;
  /** queryId → arm (expires after ttlSeconds, DynamoDB TTL attribute `ttl`). */
  putQuery(q: QueryAttribution, ttlSeconds: number): Promise<void>;
  /** Counts a feedback event on the query (atomic ADD); undefined for an unknown or expired queryId. `first`: the query's first event of this kind. */
  recordQueryFeedback(
    queryId: string,
    event: FeedbackEvent,
  ): Promise<{ attribution: QueryAttribution; first: boolean } | undefined>;
  /** Atomic ADD of a feedback event to an arm; returns the arm's counters after it. */
  addArmFeedback(experimentId: string, arm: Arm, event: FeedbackEvent, first: boolean): Promise<ArmCounters>;
  /** The sequential tests' running state per metric (absent before the first look). */
  getSequential(experimentId: string): Promise<Partial<Record<FeedbackEvent, SequentialState>>>;
  /**
   * Tightens a metric's stored state to at least `state` (p = min, lo = max, hi = min) with
   * conditional writes, retrying on a concurrent tightening; returns the stored state after it.
   */
  tightenSequential(experimentId: string, metric: FeedbackEvent, state: SequentialState): Promise<SequentialState>;

  // --- aliases (collection aliases use kind 'alias', model aliases kind 'model:<name>') ---
  getPointer(kind: string, name: string): Promise<Pointer | undefined>;
  listPointers(kind: string): Promise<Pointer[]>;
  /**
   * One conditional write: creates the pointer when `expectedRevision` is 0 (it must not
   * exist), else moves it only if its revision is still `expectedRevision`. Returns false
   * (writing nothing) when the condition fails.
   */
  writePointer(kind: string, next: Pointer, expectedRevision: number): Promise<boolean>;
  /** Records a move that happened (idempotent put of the history item of that revision). */
  putHistory(kind: string, name: string, incarnation: string, move: PointerMove): Promise<void>;
  /** Moves of this incarnation with revision ≤ maxRevision, newest first. */
  listHistory(kind: string, name: string, incarnation: string, maxRevision: number): Promise<PointerMove[]>;
  /** Deletes the pointer if its revision is still `expectedRevision`; false otherwise. */
  deletePointer(kind: string, name: string, expectedRevision: number): Promise<boolean>;

  // --- evaluations ---
  putEvaluation(evaluation: Evaluation): Promise<void>;
  getEvaluation(collection: string, version: number): Promise<Evaluation | undefined>;
  listEvaluations(collection: string): Promise<Evaluation[]>;
  /** Sets collection settings on its META item, only while it is still `generation`. */
  updateCollectionSettings(
    collection: string,
    generation: number,
    settings: { minRecall?: number | null; efSearch?: number; candidate?: string },
  ): Promise<void>;

  // --- models ---
  /** Atomic counter: the next version number of a model. */
  nextModelVersion(name: string): Promise<number>;
  /** Conditional put (the version must not exist). */
  putModelVersion(mv: ModelVersion): Promise<void>;
  getModelVersion(name: string, version: number): Promise<ModelVersion | undefined>;
  listModelVersions(name: string): Promise<ModelVersion[]>;
  listModels(): Promise<string[]>;
  /** Replaces a version conditional on its stored state being one of `from`. False when it was not. */
  transitionModelVersion(mv: ModelVersion, from: ModelVersionState[]): Promise<boolean>;
}
