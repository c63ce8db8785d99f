/**
 * Import jobs: the record, its state machine and the store contract (docs/imports.md).
 *
 *   queued ──claim──► running ──finish──► succeeded | partial | failed
 *                       │  ▲
 *              release ─┘  └─ claim (next invocation, from the checkpoint)
 *   queued | running ──fail (unreadable file, poison message, a limit)──► failed
 *   queued | running ──cancel (DELETE …/imports/{jobId})──► cancelled
 *   queued | running, no live lease, quiet ──requeue (sweeper, re-POST)──► same state, a new message
 *
 * A job is identified by (collection, collection generation, bucket, key, ETag): the same object
 * imported twice, or the same S3 event delivered twice, lands on the same job (one conditional
 * put). A claim is a lease (`leaseToken`, `leaseUntil`): every progress write is conditional on
 * the token, so two invocations never run one job at once, and a crashed invocation's lease simply
 * expires. `heartbeatAt` moves with every claim, save, release and requeue: the sweeper's requeue
 * is conditional on the heartbeat it saw, so two sweepers (or a sweeper and a re-POST) send one
 * message per quiet period, never two.
 */
import { createHash } from 'node:crypto';
import type { Checkpoint, ImportFormat } from './types.js';

export const IMPORT_STATES = ['queued', 'running', 'succeeded', 'partial', 'failed', 'cancelled'] as const;
export type ImportState = (typeof IMPORT_STATES)[number];
export const TERMINAL_STATES: readonly ImportState[] = ['succeeded', 'partial', 'failed', 'cancelled'];

/** Why a job ended `failed` or `cancelled` (stable codes, listed in docs/imports.md). */
export const IMPORT_END_REASONS = [
  'CANCELLED',
  'ROW_LIMIT',
  'TIME_LIMIT',
  'REJECT_RATIO',
  'ALL_REJECTED',
  'UNSUPPORTED_FILE',
  'UNREADABLE_FILE',
  'OBJECT_CHANGED',
  'COLLECTION_GONE',
  'GAVE_UP',
] as const;
export type ImportEndReason = (typeof IMPORT_END_REASONS)[number];

/**
 * Per-job limits, fixed when the job is created (request fields of `POST …/imports`, else the
 * configured defaults). Exceeding one ends the job `failed` with its reason code; rows imported
 * before stay.
 */
export interface ImportLimits {
  /**
   * Rows read (valid and rejected) before the job fails with `ROW_LIMIT`. Default 50 000 000: far
   * above any sane single file, low enough that a gzip bomb of tiny rows stops in bounded time.
   */
  maxRows: number;
  /**
   * Wall time from the first claim before the job fails with `TIME_LIMIT`. Default 6 h: a
   * 50 M-row file at ~5 000 rows/s takes under 3 h; a longer job is stuck on something.
   */
  maxDurationSeconds: number;
  /**
   * The job fails with `REJECT_RATIO` once more than this fraction of the rows read so far were
   * rejected (checked from `rejectRatioMinRows` rows on). Default 0.5: a file that is mostly
   * wrong (another dimension, another format) stops early instead of filling the report; 1 = never.
   */
  maxRejectRatio: number;
  /** Rows read before the reject ratio is checked (default 1 000: fewer give a noisy ratio). */
  rejectRatioMinRows: number;
}

export const DEFAULT_IMPORT_LIMITS: Readonly<ImportLimits> = {
  maxRows: 50_000_000,
  maxDurationSeconds: 6 * 3600,
  maxRejectRatio: 0.5,
  rejectRatioMinRows: 1000,
};

export interface ImportProgress {
  rowsRead: number;
  rowsWritten: number;
  rowsRejected: number;
  bytesRead: number;
  checkpoint: Checkpoint;
  /** Committed report part keys, in order (rejects of the rows before `checkpoint`). */
  reportParts: string[];
}

export interface ImportJob extends ImportProgress {
  jobId: string;
  collection: string;
  generation: number;
  bucket: string;
  key: string;
  etag: string;
  size: number;
  /** Undefined when the extension is not a supported format (the job is failed at creation). */
  format?: ImportFormat;
  state: ImportState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
  /** Set when the job ended `failed` or `cancelled`. */
  reason?: ImportEndReason;
  /** The final report object (`reports/imports/<jobId>.jsonl`), when rows were rejected. */
  report?: string;
  /** Invocations that claimed this job. */
  invocations: number;
  /** Absent on jobs created before limits existed: the runner applies the configured defaults. */
  limits?: ImportLimits;
  leaseToken?: string;
  /** Epoch ms. */
  leaseUntil?: number;
  /** Epoch ms of the last claim, save, release or requeue. */
  heartbeatAt?: number;
  /** Times the job was re-announced by the sweeper or a re-POST. */
  requeues?: number;
}

/** The job as the API shows it. */
export interface ImportJobView {
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
  reason: ImportEndReason | null;
  report: string | null;
  limits: ImportLimits;
  requeues: number;
}

/** Deterministic job id: sha256 of (collection, generation, bucket, key, ETag), 24 hex chars. */
export function jobIdFor(o: {
  collection: string;
  generation: number;
  bucket: string;
  key: string;
  etag: string;
}): string {
  return createHash('sha256')
    .update(JSON.stringify([o.collection, o.generation, o.bucket, o.key, o.etag]))
    .digest('hex')
    .slice(0, 24);
}

export function emptyProgress(): ImportProgress {
  return { rowsRead: 0, rowsWritten: 0, rowsRejected: 0, bytesRead: 0, checkpoint: { rows: 0 }, reportParts: [] };
}

/** The identity of an import: one object version (bucket, key, ETag) into one collection generation. */
export interface ImportSource {
  collection: string;
  generation: number;
  bucket: string;
  key: string;
  etag: string;
}

/** A new job, `queued`, nothing read yet; its id derives from its source (one job per object version). */
export function newImportJob(
  source: ImportSource,
  fields: { size: number; format?: ImportFormat; createdAt: number; limits?: ImportLimits },
): ImportJob {
  const job: ImportJob = {
    ...source,
    ...emptyProgress(),
    jobId: jobIdFor(source),
    size: fields.size,
    state: 'queued',
    createdAt: new Date(fields.createdAt).toISOString(),
    invocations: 0,
  };
  if (fields.format) job.format = fields.format;
  if (fields.limits) job.limits = fields.limits;
  return job;
}

export function toView(
  job: ImportJob,
  reportUri?: (key: string) => string,
  defaults: Readonly<ImportLimits> = DEFAULT_IMPORT_LIMITS,
): ImportJobView {
  const done = job.state === 'succeeded' || job.state === 'partial';
  const percent = done ? 100 : job.size > 0 ? Math.min(99.9, Math.floor((job.bytesRead / job.size) * 1000) / 10) : 0;
  return {
    jobId: job.jobId,
    collection: job.collection,
    uri: `s3://${job.bucket}/${job.key}`,
    format: job.format ?? null,
    state: job.state,
    rowsRead: job.rowsRead,
    rowsWritten: job.rowsWritten,
    rowsRejected: job.rowsRejected,
    bytesRead: job.bytesRead,
    bytesTotal: job.size,
    percent,
    createdAt: job.createdAt,
    startedAt: job.startedAt ?? null,
    finishedAt: job.finishedAt ?? null,
    error: job.error ?? null,
    reason: job.reason ?? null,
    report: job.report ? (reportUri ? reportUri(job.report) : job.report) : null,
    limits: { ...defaults, ...job.limits },
    requeues: job.requeues ?? 0,
  };
}

export interface FinishInput {
  state: 'succeeded' | 'partial' | 'failed';
  error?: string;
  reason?: ImportEndReason;
  report?: string;
  progress?: ImportProgress;
}

/**
 * How long a job without a lease may stay quiet before the sweeper re-announces it (default 300 s,
 * `SHOAL_IMPORT_SWEEP_STALE_S`). Lower recovers a lost continuation sooner but may duplicate a
 * message still waiting in the queue behind busy import slots (harmless: the duplicate's claim
 * fails and it is dropped). A job whose lease expired is re-announced on the next tick regardless.
 */
export const DEFAULT_SWEEP_STALE_MS = 300_000;

/** The `error` of a cancelled job. */
export const CANCELLED_MESSAGE = 'cancelled (rows imported before the cancel stay)';

/** What `cancel` found: the job it cancelled, the job that had already ended, or nothing. */
export type CancelOutcome =
  | { outcome: 'cancelled'; job: ImportJob }
  | { outcome: 'ended'; job: ImportJob }
  | { outcome: 'missing' };

export interface ImportJobStore {
  /** One conditional put: `created` is false (and the existing job returned) when the job already exists. */
  create(job: ImportJob): Promise<{ job: ImportJob; created: boolean }>;
  get(collection: string, jobId: string): Promise<ImportJob | undefined>;
  /** Newest first (by createdAt). */
  list(collection: string, limit?: number): Promise<ImportJob[]>;
  /** Every queued or running job of a collection (any generation), for the sweeper. */
  listActive(collection: string): Promise<ImportJob[]>;
  /**
   * Takes the lease: succeeds when the job is queued or running with no live lease (or this
   * token's). Sets state running, startedAt (first time), heartbeatAt, bumps invocations. Undefined
   * when the job is terminal or another invocation holds a live lease.
   */
  claim(
    collection: string,
    jobId: string,
    token: string,
    leaseUntil: number,
    now: number,
  ): Promise<ImportJob | undefined>;
  /** Saves progress, extends the lease, moves the heartbeat; false when the lease was lost. */
  save(
    collection: string,
    jobId: string,
    token: string,
    progress: ImportProgress,
    leaseUntil: number,
    now: number,
  ): Promise<boolean>;
  /**
   * Saves progress and drops the lease (the continuation claims it next), moves the heartbeat;
   * false when the lease was lost.
   */
  release(collection: string, jobId: string, token: string, progress: ImportProgress, now: number): Promise<boolean>;
  /**
   * Ends the job. With a token: only while holding the lease of a running job. Without: only while
   * not terminal (poison messages, unreadable files found before a claim). False when the condition failed.
   */
  finish(
    collection: string,
    jobId: string,
    token: string | undefined,
    input: FinishInput,
    now: number,
  ): Promise<boolean>;
  /**
   * Ends a queued or running job as `cancelled` (reason `CANCELLED`). A lease is kept, so the
   * invocation holding it can `settle` its last counters; nothing ever claims a cancelled job.
   */
  cancel(collection: string, jobId: string, now: number): Promise<CancelOutcome>;
  /** The last progress of an invocation whose job was cancelled under it (only with its token); drops the lease. */
  settle(collection: string, jobId: string, token: string, progress: ImportProgress): Promise<boolean>;
  /**
   * Marks a quiet job for a new message: only while queued or running with no live lease
   * (`leaseUntil` absent or before `now`) and with the heartbeat the caller saw (`undefined`: none).
   * Drops an expired lease (its invocation, if still alive, loses its next save), sets the heartbeat
   * to `now`, counts `requeues`. The caller sends the message only when this returns true.
   */
  requeue(collection: string, jobId: string, seenHeartbeat: number | undefined, now: number): Promise<boolean>;
}

/** In-memory store with the same conditions (unit tests, benchmarks). */
export class MemoryImportJobStore implements ImportJobStore {
  readonly jobs = new Map<string, ImportJob>();
  private k(c: string, id: string): string {
    return `${c}\u0000${id}`;
  }
  private copy(j: ImportJob): ImportJob {
    return structuredClone(j);
  }
  async create(job: ImportJob) {
    const hit = this.jobs.get(this.k(job.collection, job.jobId));
    if (hit) return { job: this.copy(hit), created: false };
    this.jobs.set(this.k(job.collection, job.jobId), this.copy(job));
    return { job: this.copy(job), created: true };
  }
  async get(collection: string, jobId: string) {
    const j = this.jobs.get(this.k(collection, jobId));
    return j && this.copy(j);
  }
  async list(collection: string, limit = 100) {
    return [...this.jobs.values()]
      .filter((j) => j.collection === collection)
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
      .slice(0, limit)
      .map((j) => this.copy(j));
  }
  async listActive(collection: string) {
    return [...this.jobs.values()]
      .filter((j) => j.collection === collection && !TERMINAL_STATES.includes(j.state))
      .map((j) => this.copy(j));
  }
  async claim(collection: string, jobId: string, token: string, leaseUntil: number, now: number) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j || TERMINAL_STATES.includes(j.state)) return undefined;
    if (j.leaseUntil !== undefined && j.leaseUntil >= now && j.leaseToken !== token) return undefined;
    j.state = 'running';
    j.leaseToken = token;
    j.leaseUntil = leaseUntil;
    j.heartbeatAt = now;
    j.startedAt ??= new Date(now).toISOString();
    j.invocations++;
    return this.copy(j);
  }
  async save(
    collection: string,
    jobId: string,
    token: string,
    progress: ImportProgress,
    leaseUntil: number,
    now: number,
  ) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j || j.leaseToken !== token || j.state !== 'running') return false;
    Object.assign(j, structuredClone(progress), { leaseUntil, heartbeatAt: now });
    return true;
  }
  async release(collection: string, jobId: string, token: string, progress: ImportProgress, now: number) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j || j.leaseToken !== token || j.state !== 'running') return false;
    Object.assign(j, structuredClone(progress), { heartbeatAt: now });
    delete j.leaseToken;
    delete j.leaseUntil;
    return true;
  }
  async finish(collection: string, jobId: string, token: string | undefined, input: FinishInput, now: number) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j) return false;
    if (token !== undefined ? j.leaseToken !== token || j.state !== 'running' : TERMINAL_STATES.includes(j.state))
      return false;
    if (input.progress) Object.assign(j, structuredClone(input.progress));
    j.state = input.state;
    j.finishedAt = new Date(now).toISOString();
    if (input.error !== undefined) j.error = input.error;
    if (input.reason !== undefined) j.reason = input.reason;
    if (input.report !== undefined) j.report = input.report;
    delete j.leaseToken;
    delete j.leaseUntil;
    return true;
  }
  async cancel(collection: string, jobId: string, now: number): Promise<CancelOutcome> {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j) return { outcome: 'missing' };
    if (TERMINAL_STATES.includes(j.state)) return { outcome: 'ended', job: this.copy(j) };
    j.state = 'cancelled';
    j.reason = 'CANCELLED';
    j.error = CANCELLED_MESSAGE;
    j.finishedAt = new Date(now).toISOString();
    return { outcome: 'cancelled', job: this.copy(j) };
  }
  async settle(collection: string, jobId: string, token: string, progress: ImportProgress) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j || j.leaseToken !== token || j.state !== 'cancelled') return false;
    Object.assign(j, structuredClone(progress));
    delete j.leaseToken;
    delete j.leaseUntil;
    return true;
  }
  async requeue(collection: string, jobId: string, seenHeartbeat: number | undefined, now: number) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j || TERMINAL_STATES.includes(j.state)) return false;
    if (j.leaseUntil !== undefined && j.leaseUntil >= now) return false;
    if (j.heartbeatAt !== seenHeartbeat) return false;
    delete j.leaseToken;
    delete j.leaseUntil;
    j.heartbeatAt = now;
    j.requeues = (j.requeues ?? 0) + 1;
    return true;
  }
}
