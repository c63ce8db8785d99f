/**
 * Runs one import job for at most a time budget (docs/imports.md):
 *
 *   claim (lease) → open the object at the job's checkpoint → read rows → valid rows go through
 *   THE write path (`upsertVectors`: seq lease, records, builder wake-up) in batches, a few in
 *   flight; rejects are buffered → every `checkpointEveryMs`: drain the writes, write the rejects
 *   as a report part, save progress + checkpoint (extends the lease) → at the deadline: the same,
 *   then release the lease and enqueue a continuation message → at the end: assemble the report,
 *   finish as succeeded / partial / failed.
 *
 * A crash loses at most the rows after the last checkpoint; they are read and written again by the
 * next invocation (upserts are idempotent per id; counters and report parts come from the
 * checkpoint, so nothing is counted twice). A crash also loses the continuation message: the
 * sweeper (`sweeper.ts`) re-announces the job once its lease expires.
 *
 * Before every batch the runner reads the collection and the job (two GetItems in parallel): a
 * deleted collection fails the job, a cancelled job stops the run (in-flight writes land and are
 * counted, the unsent batch is dropped), a lost lease (requeued by the sweeper) stops it silently.
 * Per-job limits (`ImportLimits`: rows, wall time, reject ratio) end the job `failed` with a reason.
 */
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../errors.js';
import type { TailCap } from '../ingest/backpressure.js';
import { upsertVectors, type IngestDeps } from '../ingest/ingest.js';
import { logger } from '../log.js';
import type { InputRow, VectorInput } from '../service.js';
import type { Catalog, CollectionMeta, ObjectStore } from '../storage/types.js';
import { openReader } from './formats/index.js';
import {
  DEFAULT_IMPORT_LIMITS,
  type ImportEndReason,
  type ImportJob,
  type ImportJobStore,
  type ImportLimits,
  type ImportProgress,
} from './job.js';
import { assembleReport, MAX_REPORTED_REJECTS, rejectEntry, writePart, type RejectEntry } from './report.js';
import { importReportPartKey } from '../storage/keys.js';
import { ObjectChangedError, UnreadableFileError, type ByteSource } from './types.js';

/** The job's collection is gone (deleted, or re-created under a new generation): the job fails, nothing retries. */
class CollectionGoneError extends Error {}

/** The job was cancelled, or another invocation owns it now (the sweeper requeued it after its lease expired). */
class JobStoppedError extends Error {
  constructor(readonly why: 'cancelled' | 'lease-lost') {
    super(why);
  }
}

/** Messages on the import queue besides S3 event notifications. */
export interface ImportJobMessage {
  type: 'import' | 'continue';
  collection: string;
  jobId: string;
}

export interface ImportDeps {
  jobs: ImportJobStore;
  catalog: Catalog;
  ingest: IngestDeps;
  /** Shoal's bucket (reports). */
  objects: ObjectStore;
  /** The job's object, pinned to its ETag. */
  openSource(job: ImportJob): Promise<ByteSource>;
  /** An .npy job's ids sidecar, if one exists. */
  findSidecar(job: ImportJob): Promise<{ source: ByteSource; kind: 'txt' | 'jsonl' } | undefined>;
  enqueue(message: ImportJobMessage, options?: { delaySeconds?: number }): Promise<void>;
  /** The unindexed-tail cap: over it the job pauses (checkpoint, continue after PAUSE_DELAY_S). */
  tailCap?: TailCap;
  now?: () => number;
  /** Limits of jobs that carry none (created before limits existed). Default `DEFAULT_IMPORT_LIMITS`. */
  limits?: ImportLimits;
  /**
   * Embeds a batch's raw inputs with the collection's embedding function and keeps them (docs/models.md):
   * vectors and raw-input references, in order. Absent: raw rows are embedded nowhere (the job fails them).
   */
  embedInputs?: (meta: CollectionMeta, rows: InputRow[]) => Promise<VectorInput[]>;
  /** Rows per upsert call (default 500). */
  batchRows?: number;
  /** Upsert calls in flight (default 4). */
  concurrency?: number;
  /** Progress is saved at least this often (default 10 s). */
  checkpointEveryMs?: number;
  /** Minimum gap between builder wake-ups during a job (default 5 s); one more is sent at the end. */
  wakeEveryMs?: number;
}

export type RunOutcome = 'finished' | 'continued' | 'skipped';

/**
 * How long an import pauses when its collection's tail is over the cap (default 15 s, the continuation's
 * SQS delay): long enough for a delta build to make room, short enough that a job does not idle much.
 */
export const PAUSE_DELAY_S = 15;

/** Extra lease time past the invocation's deadline: covers the final drain and release. */
export const LEASE_GRACE_MS = 60_000;

export async function runImportJob(
  deps: ImportDeps,
  collection: string,
  jobId: string,
  opts: { deadline: number },
): Promise<{ outcome: RunOutcome; job?: ImportJob }> {
  const now = deps.now ?? Date.now;
  const token = randomUUID();
  const claimed = await deps.jobs.claim(collection, jobId, token, opts.deadline + LEASE_GRACE_MS, now());
  if (!claimed) return { outcome: 'skipped', job: await deps.jobs.get(collection, jobId) };
  const saved: ImportProgress = {
    rowsRead: claimed.rowsRead,
    rowsWritten: claimed.rowsWritten,
    rowsRejected: claimed.rowsRejected,
    bytesRead: claimed.bytesRead,
    checkpoint: claimed.checkpoint,
    reportParts: [...claimed.reportParts],
  };
  try {
    return await runClaimed(deps, claimed, token, saved, opts.deadline);
  } catch (err) {
    // A failure the queue will retry: give the lease back (progress as of the last saved
    // checkpoint), so the redelivered message can claim the job at once.
    await deps.jobs.release(collection, jobId, token, saved, now()).catch(() => undefined);
    throw err;
  }
}

/** A limit that ended the job, with its message. */
interface LimitHit {
  reason: Extract<ImportEndReason, 'ROW_LIMIT' | 'TIME_LIMIT' | 'REJECT_RATIO'>;
  error: string;
}

async function runClaimed(
  deps: ImportDeps,
  job: ImportJob,
  token: string,
  saved: ImportProgress,
  deadline: number,
): Promise<{ outcome: RunOutcome; job?: ImportJob }> {
  const now = deps.now ?? Date.now;
  const { collection, jobId } = job;
  const opts = { deadline };
  const limits: ImportLimits = { ...DEFAULT_IMPORT_LIMITS, ...deps.limits, ...job.limits };
  const startedMs = job.startedAt ? Date.parse(job.startedAt) : now();
  const current = async () => ({ job: await deps.jobs.get(collection, jobId) });
  const fail = async (
    reason: ImportEndReason,
    error: string,
    progress?: ImportProgress,
    report?: string,
  ): Promise<{ outcome: RunOutcome; job?: ImportJob }> => {
    if (
      !(await deps.jobs.finish(collection, jobId, token, { state: 'failed', error, reason, progress, report }, now()))
    ) {
      // Cancelled meanwhile (the cancel stands; its counters are settled) or no longer ours.
      const j = await deps.jobs.get(collection, jobId);
      if (j?.state === 'cancelled' && j.leaseToken === token)
        await deps.jobs.settle(collection, jobId, token, progress ?? saved);
    }
    return { outcome: 'finished', ...(await current()) };
  };
  const timeLimit = (): LimitHit | undefined =>
    now() - startedMs > limits.maxDurationSeconds * 1000
      ? {
          reason: 'TIME_LIMIT',
          error:
            `the job ran longer than its limit of ${limits.maxDurationSeconds} s (maxDurationSeconds); ` +
            'rows imported before stay',
        }
      : undefined;

  // The collection may be deleted (or deleted and re-created) before or while the job runs: checked at
  // the start and before every batch, so at most the batches already in flight land under the old
  // generation (one GetItem per batch).
  const ownCollection = async (phase: 'start' | 'batch'): Promise<CollectionMeta> => {
    const name = JSON.stringify(collection);
    let found;
    try {
      found = await deps.catalog.getCollection(collection);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      throw new CollectionGoneError(
        phase === 'start' ? `collection ${name} does not exist` : `collection ${name} was deleted during the import`,
      );
    }
    if (found.generation !== job.generation) {
      throw new CollectionGoneError(
        `collection ${name} was deleted and re-created ` +
          (phase === 'start' ? 'after the job was created' : 'during the import'),
      );
    }
    return found;
  };
  /** Before every batch: the collection is ours still, and so is the job (not cancelled, lease not taken). */
  const ownJob = async (): Promise<void> => {
    const [, j] = await Promise.all([ownCollection('batch'), deps.jobs.get(collection, jobId)]);
    if (j?.state === 'cancelled') throw new JobStoppedError('cancelled');
    if (!j || j.state !== 'running' || j.leaseToken !== token) throw new JobStoppedError('lease-lost');
  };

  let meta: CollectionMeta;
  try {
    meta = await ownCollection('start');
  } catch (err) {
    if (err instanceof CollectionGoneError) return fail('COLLECTION_GONE', err.message);
    throw err;
  }
  if (!job.format)
    return fail(
      'UNSUPPORTED_FILE',
      `unsupported file type: ${job.key} (supported: .jsonl, .jsonl.gz, .csv, .csv.gz, .parquet, .npy)`,
    );

  // `progress` is what has been saved (or is about to be); `saved` mirrors each successful save.
  const progress: ImportProgress = structuredClone(saved);
  const batchRows = deps.batchRows ?? 500;
  const concurrency = deps.concurrency ?? 4;
  const checkpointEveryMs = deps.checkpointEveryMs ?? 10_000;
  const wakeEveryMs = deps.wakeEveryMs ?? 5_000;
  let lastWake = 0;
  const ingest: IngestDeps = {
    catalog: deps.ingest.catalog,
    records: deps.ingest.records,
    wake: async (c) => {
      if (now() - lastWake < wakeEveryMs) return;
      lastWake = now();
      await deps.ingest.wake(c);
    },
  };

  // Pending state since the last saved checkpoint.
  let rejects: RejectEntry[] = [];
  // The next batch, by id: a repeated id replaces the earlier row in place (the later row wins, as
  // it would in file order), so a file of one id repeated stays one growing batch, not one write per row.
  let batch = new Map<string, VectorInput & { raw?: true }>();
  let superseded = 0; // rows of `batch` replaced by a later row with the same id (count as written)
  // Ids of the batches in flight: a row repeating one waits for them, so its write gets the later seq.
  let inFlightIds = new Set<string>();
  const inFlight: Array<Promise<number>> = [];
  let written = 0; // rows durable since the last save
  let read = 0;
  let rejected = 0;
  let pos = { checkpoint: progress.checkpoint, bytesRead: progress.bytesRead };
  let segmentStart = progress.checkpoint.rows;

  const settleInFlight = async (): Promise<void> => {
    const results = await Promise.allSettled(inFlight.splice(0));
    inFlightIds = new Set();
    for (const r of results) {
      if (r.status === 'rejected') throw r.reason;
      written += r.value;
    }
  };
  /** Raw-input rows of a batch embedded in one call (the batching a model wants); value rows as they are. */
  const embedRaw = async (rows: Array<VectorInput & { raw?: true }>): Promise<VectorInput[]> => {
    const raw = rows.filter((r) => r.raw);
    if (!raw.length) return rows;
    if (!deps.embedInputs) throw new Error('raw inputs reached an import without a model runtime');
    const embedded = await deps.embedInputs(
      meta,
      raw.map((r) => ({ id: r.id, input: r.values, ...(r.metadata ? { metadata: r.metadata } : {}) })),
    );
    const byId = new Map(embedded.map((v) => [v.id, v]));
    return rows.map(({ raw: _raw, ...r }) => byId.get(r.id) ?? r);
  };
  const flush = async (): Promise<void> => {
    if (!batch.size) return;
    await ownJob();
    const vectors = [...batch.values()];
    const extra = superseded;
    batch = new Map();
    superseded = 0;
    for (const v of vectors) inFlightIds.add(v.id);
    inFlight.push(
      embedRaw(vectors)
        .then((ready) => upsertVectors(ingest, meta, ready))
        .then((n) => n + extra),
    );
    if (inFlight.length >= concurrency) written += await inFlight.shift()!;
  };
  const drain = async (): Promise<void> => {
    await flush();
    await settleInFlight();
  };
  /** Drains, writes the rejects part, folds the segment into `progress`. */
  const commitSegment = async (): Promise<void> => {
    await drain();
    if (rejects.length) {
      const key = importReportPartKey(jobId, segmentStart, token);
      await writePart(deps.objects, key, rejects);
      progress.reportParts.push(key);
      rejects = [];
    }
    progress.rowsRead += read;
    progress.rowsWritten += written;
    progress.rowsRejected += rejected;
    progress.checkpoint = pos.checkpoint;
    progress.bytesRead = pos.bytesRead;
    read = written = rejected = 0;
    segmentStart = pos.checkpoint.rows;
  };
  /**
   * A save or release was refused: the job was cancelled under this invocation (then its last
   * counters are settled) or another invocation owns it now.
   */
  const stopped = async (): Promise<{ outcome: RunOutcome; job?: ImportJob }> => {
    const j = await deps.jobs.get(collection, jobId);
    if (j?.state === 'cancelled' && j.leaseToken === token) {
      await deps.jobs.settle(collection, jobId, token, progress);
      return { outcome: 'finished', ...(await current()) };
    }
    return { outcome: 'skipped', job: j };
  };
  /**
   * The run was stopped by a throw: a cancel or a lost lease (seen before a batch), the collection
   * gone, the file unreadable or changed. Anything else is rethrown (the queue retries the message).
   */
  const ended = async (err: unknown): Promise<{ outcome: RunOutcome; job?: ImportJob }> => {
    if (err instanceof JobStoppedError) {
      // The unsent batch is dropped (not read, as far as the counters go); in-flight writes land and count.
      read -= batch.size + superseded;
      batch = new Map();
      superseded = 0;
      for (const r of await Promise.allSettled(inFlight.splice(0))) if (r.status === 'fulfilled') written += r.value;
      if (err.why === 'lease-lost') return { outcome: 'skipped', ...(await current()) };
      progress.rowsRead += read;
      progress.rowsWritten += written;
      progress.rowsRejected += rejected;
      read = written = rejected = 0;
      await deps.jobs.settle(collection, jobId, token, progress);
      await deps.ingest.wake(collection).catch(() => undefined);
      return { outcome: 'finished', ...(await current()) };
    }
    // Let in-flight writes settle (they are valid rows) before deciding.
    await Promise.allSettled(inFlight.splice(0));
    if (err instanceof CollectionGoneError) return fail('COLLECTION_GONE', err.message, progress);
    if (err instanceof UnreadableFileError) return fail('UNREADABLE_FILE', err.message, progress);
    if (err instanceof ObjectChangedError) return fail('OBJECT_CHANGED', err.message, progress);
    throw err;
  };
  /** Ends the job `failed` for a limit: what was read so far is committed and reported first. */
  const endWith = async (hit: LimitHit): Promise<{ outcome: RunOutcome; job?: ImportJob }> => {
    try {
      await commitSegment();
    } catch (err) {
      return ended(err);
    }
    const report = progress.reportParts.length
      ? await assembleReport(deps.objects, jobId, progress.reportParts)
      : undefined;
    const out = await fail(hit.reason, hit.error, progress, report);
    await deps.ingest.wake(collection).catch(() => undefined);
    return out;
  };

  const lateAtStart = timeLimit();
  if (lateAtStart) return endWith(lateAtStart);

  let source: ByteSource;
  let ids: Awaited<ReturnType<ImportDeps['findSidecar']>>;
  let lastSave = now();
  let outOfTime = false;
  let paused = false;
  let limitHit: LimitHit | undefined;
  try {
    source = await deps.openSource(job);
    ids = job.format === 'npy' ? await deps.findSidecar(job) : undefined;
    const from = progress.checkpoint.rows > 0 ? progress.checkpoint : undefined;
    const reader = openReader(job.format, source, {
      dimension: meta.dimension,
      ...(meta.embedding ? { inputLength: meta.embedding.inputLength } : {}),
      from,
      ids,
    });
    for await (const row of reader) {
      if (progress.rowsRead + read >= limits.maxRows) {
        limitHit = {
          reason: 'ROW_LIMIT',
          error:
            `the file has more than ${limits.maxRows} rows (maxRows); the job stopped there, ` +
            'rows imported before stay',
        };
        break;
      }
      read++;
      if (row.error || !row.values || row.id === undefined) {
        rejected++;
        // The first MAX_REPORTED_REJECTS rejects of the job are reported; the count covers all.
        if (progress.rowsRejected + rejected <= MAX_REPORTED_REJECTS) rejects.push(rejectEntry(job.format, row));
      } else {
        const repeat = batch.has(row.id);
        if (!repeat && inFlightIds.has(row.id)) await settleInFlight();
        if (repeat) superseded++;
        batch.set(row.id, {
          id: row.id,
          values: row.values,
          ...(row.metadata ? { metadata: row.metadata } : {}),
          ...(row.raw ? { raw: true } : {}),
        });
        if (batch.size >= batchRows) await flush();
      }
      pos = { checkpoint: row.next, bytesRead: row.bytesRead };
      const total = progress.rowsRead + read;
      const rejectedTotal = progress.rowsRejected + rejected;
      if (total >= limits.rejectRatioMinRows && rejectedTotal > limits.maxRejectRatio * total) {
        limitHit = {
          reason: 'REJECT_RATIO',
          error:
            `${rejectedTotal} of the first ${total} rows were rejected, more than maxRejectRatio ` +
            `${limits.maxRejectRatio} (see the report); rows imported before stay`,
        };
        break;
      }
      if (read % 64 === 0 || batch.size === 0) {
        limitHit = timeLimit();
        if (limitHit) break;
        const t = now();
        if (t >= opts.deadline) {
          outOfTime = true;
          break;
        }
        // Backpressure: the builder is behind. Checkpoint and come back later instead of growing the tail.
        if (deps.tailCap && (await deps.tailCap.over(meta))) {
          outOfTime = true;
          paused = true;
          break;
        }
        if (t - lastSave >= checkpointEveryMs) {
          await commitSegment();
          if (!(await deps.jobs.save(collection, jobId, token, progress, opts.deadline + LEASE_GRACE_MS, now()))) {
            return stopped();
          }
          Object.assign(saved, structuredClone(progress));
          lastSave = now();
        }
      }
    }
  } catch (err) {
    return ended(err);
  }

  if (limitHit) return endWith(limitHit);
  try {
    await commitSegment();
  } catch (err) {
    return ended(err);
  }
  if (outOfTime) {
    if (!(await deps.jobs.release(collection, jobId, token, progress, now()))) return stopped();
    await deps.ingest.wake(collection).catch(() => undefined);
    await deps.enqueue({ type: 'continue', collection, jobId }, paused ? { delaySeconds: PAUSE_DELAY_S } : undefined);
    return { outcome: 'continued', ...(await current()) };
  }

  const report = progress.reportParts.length
    ? await assembleReport(deps.objects, jobId, progress.reportParts)
    : undefined;
  let state: 'succeeded' | 'partial' | 'failed' = 'succeeded';
  let error: string | undefined;
  if (progress.rowsRejected > 0) {
    state = progress.rowsWritten > 0 ? 'partial' : 'failed';
    error =
      state === 'failed'
        ? `all ${progress.rowsRejected} rows were rejected (see the report)`
        : `${progress.rowsRejected} of ${progress.rowsRead} rows were rejected (see the report)`;
  }
  progress.bytesRead = job.size;
  const finished = await deps.jobs.finish(
    collection,
    jobId,
    token,
    { state, error, report, progress, ...(state === 'failed' ? { reason: 'ALL_REJECTED' as const } : {}) },
    now(),
  );
  if (!finished) return stopped();
  try {
    await deps.ingest.wake(collection);
  } catch (err) {
    logger.warn('builder wake-up failed (the scheduled tick will catch up)', { collection, error: err as Error });
  }
  return { outcome: 'finished', ...(await current()) };
}
