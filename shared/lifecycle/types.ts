/**
 * Lifecycle (docs/architecture.md §8) storage contract: aliases with revisions and move history, evaluation
 * results of index versions, the model registry and model aliases, experiments. The shapes the
 * API also sees (targets, moves, evaluations, model versions, experiments) are in
 * `service-types.ts`; this module adds what only storage holds. Implemented on the Catalog table
 * by `storage/dynamo-lifecycle.ts`.
 */
import type { SequentialState } from './experiment-stats.js';
import type {
  AliasTarget,
  Arm,
  Evaluation,
  Experiment,
  FeedbackEvent,
  ModelAliasTarget,
  ModelVersion,
  ModelVersionState,
  PointerMove,
  PointerTarget,
  TuneJob,
} from '../service-types.js';

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
  /**
   * Counts a feedback event on the query (atomic ADD); undefined for an unknown or expired queryId. `first`:
   * the query's first event of this kind.
   */
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

  // --- tune jobs (asynchronous tunes, run by the index-builder function) ---
  /** Conditional put (the job must not exist); the item expires after ttlSeconds (DynamoDB TTL `ttl`). */
  createTuneJob(job: TuneJob, ttlSeconds: number): Promise<void>;
  getTuneJob(collection: string, jobId: string): Promise<TuneJob | undefined>;
  /**
   * Replaces the job while it exists and is not finished (`succeeded` / `failed`), keeping its TTL. False
   * (writing nothing) when it is gone or already finished: a finished job never changes again.
   */
  updateTuneJob(job: TuneJob, ttlSeconds: number): Promise<boolean>;
  /** A job's supplied queries (float32, row-major), its own item with the job's TTL; written before the job. */
  putTuneQueries(job: TuneJob, data: Float32Array, ttlSeconds: number): Promise<void>;
  getTuneQueries(collection: string, jobId: string): Promise<Float32Array | undefined>;
  deleteTuneQueries(collection: string, jobId: string): Promise<void>;

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
