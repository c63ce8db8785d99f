/**
 * Import jobs: the record, its state machine and the store contract (docs/imports.md).
 *
 *   queued ──claim──► running ──finish──► succeeded | partial | failed
 *                       │  ▲
 *              release ─┘  └─ claim (next invocation, from the checkpoint)
 *   queued | running ──fail (unreadable file, poison message)──► failed
 *
 * A job is identified by (collection, collection generation, bucket, key, ETag): the same object
 * imported twice, or the same S3 event delivered twice, lands on the same job (one conditional
 * put). A claim is a lease (`leaseToken`, `leaseUntil`): every progress write is conditional on
 * the token, so two invocations never run one job at once, and a crashed invocation's lease simply
 * expires.
 */
import { createHash } from 'node:crypto';
import type { Checkpoint, ImportFormat } from './types.js';

export const IMPORT_STATES = ['queued', 'running', 'succeeded', 'partial', 'failed'] as const;
export type ImportState = (typeof IMPORT_STATES)[number];
export const TERMINAL_STATES: readonly ImportState[] = ['succeeded', 'partial', 'failed'];

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
  /** The final report object (`reports/imports/<jobId>.jsonl`), when rows were rejected. */
  report?: string;
  /** Invocations that claimed this job. */
  invocations: number;
  leaseToken?: string;
  /** Epoch ms. */
  leaseUntil?: number;
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
  report: string | null;
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

export function toView(job: ImportJob, reportUri?: (key: string) => string): ImportJobView {
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
    report: job.report ? (reportUri ? reportUri(job.report) : job.report) : null,
  };
}

export interface FinishInput {
  state: 'succeeded' | 'partial' | 'failed';
  error?: string;
  report?: string;
  progress?: ImportProgress;
}

export interface ImportJobStore {
  /** One conditional put: `created` is false (and the existing job returned) when the job already exists. */
  create(job: ImportJob): Promise<{ job: ImportJob; created: boolean }>;
  get(collection: string, jobId: string): Promise<ImportJob | undefined>;
  /** Newest first (by createdAt). */
  list(collection: string, limit?: number): Promise<ImportJob[]>;
  /**
   * Takes the lease: succeeds when the job is queued or running with no live lease (or this
   * token's). Sets state running, startedAt (first time), bumps invocations. Undefined when the
   * job is terminal or another invocation holds a live lease.
   */
  claim(
    collection: string,
    jobId: string,
    token: string,
    leaseUntil: number,
    now: number,
  ): Promise<ImportJob | undefined>;
  /** Saves progress and extends the lease; false when the lease was lost. */
  save(
    collection: string,
    jobId: string,
    token: string,
    progress: ImportProgress,
    leaseUntil: number,
  ): Promise<boolean>;
  /** Saves progress and drops the lease (the continuation claims it next); false when the lease was lost. */
  release(collection: string, jobId: string, token: string, progress: ImportProgress): Promise<boolean>;
  /**
   * Ends the job. With a token: only while holding the lease. Without: only while not terminal
   * (poison messages, unreadable files found before a claim). False when the condition failed.
   */
  finish(
    collection: string,
    jobId: string,
    token: string | undefined,
    input: FinishInput,
    now: number,
  ): Promise<boolean>;
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
  async claim(collection: string, jobId: string, token: string, leaseUntil: number, now: number) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j || TERMINAL_STATES.includes(j.state)) return undefined;
    if (j.leaseUntil !== undefined && j.leaseUntil >= now && j.leaseToken !== token) return undefined;
    j.state = 'running';
    j.leaseToken = token;
    j.leaseUntil = leaseUntil;
    j.startedAt ??= new Date(now).toISOString();
    j.invocations++;
    return this.copy(j);
  }
  async save(collection: string, jobId: string, token: string, progress: ImportProgress, leaseUntil: number) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j || j.leaseToken !== token || j.state !== 'running') return false;
    Object.assign(j, structuredClone(progress), { leaseUntil });
    return true;
  }
  async release(collection: string, jobId: string, token: string, progress: ImportProgress) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j || j.leaseToken !== token || j.state !== 'running') return false;
    Object.assign(j, structuredClone(progress));
    delete j.leaseToken;
    delete j.leaseUntil;
    return true;
  }
  async finish(collection: string, jobId: string, token: string | undefined, input: FinishInput, now: number) {
    const j = this.jobs.get(this.k(collection, jobId));
    if (!j) return false;
    if (token !== undefined ? j.leaseToken !== token : TERMINAL_STATES.includes(j.state)) return false;
    if (input.progress) Object.assign(j, structuredClone(input.progress));
    j.state = input.state;
    j.finishedAt = new Date(now).toISOString();
    if (input.error !== undefined) j.error = input.error;
    if (input.report !== undefined) j.report = input.report;
    delete j.leaseToken;
    delete j.leaseUntil;
    return true;
  }
}
