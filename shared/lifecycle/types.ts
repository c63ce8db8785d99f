/**
 * Lifecycle (DESIGN §6) data shapes and the storage contract behind them: aliases with
 * revisions and move history, evaluation results of index versions, the model registry
 * and model aliases. Implemented on the Catalog table by `storage/dynamo-lifecycle.ts`.
 */
import type { Metric } from '../types.js';

/** Where an alias points: a collection, optionally pinned to one index version. */
export interface AliasTarget {
  collection: string;
  /** Pinned index version; absent = the collection's latest version on every request. */
  version?: number;
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
  tuning?: { targetRecall: number; k: number; chosenEf?: number; table: Array<{ ef: number; recall: number; p50: number; p95: number }> };
}

export type ModelVersionState = 'pending' | 'ready';

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
}

export interface LifecycleStore {
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
  updateCollectionSettings(collection: string, generation: number, settings: { minRecall?: number | null; efSearch?: number }): Promise<void>;

  // --- models ---
  /** Atomic counter: the next version number of a model. */
  nextModelVersion(name: string): Promise<number>;
  /** Conditional put (the version must not exist). */
  putModelVersion(mv: ModelVersion): Promise<void>;
  getModelVersion(name: string, version: number): Promise<ModelVersion | undefined>;
  listModelVersions(name: string): Promise<ModelVersion[]>;
  listModels(): Promise<string[]>;
  /** pending → ready, conditional on the version still being pending. False when it was not. */
  commitModelVersion(mv: ModelVersion): Promise<boolean>;
}
