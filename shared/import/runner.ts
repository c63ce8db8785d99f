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
 * checkpoint, so nothing is counted twice).
 */
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../errors.js';
import { upsertVectors, type IngestDeps } from '../ingest/ingest.js';
import { logger } from '../log.js';
import type { VectorInput } from '../service.js';
import type { Catalog, CollectionMeta, ObjectStore } from '../storage/types.js';
import { openReader } from './formats/index.js';
import type { ImportJob, ImportJobStore, ImportProgress } from './job.js';
import { assembleReport, MAX_REPORTED_REJECTS, rejectEntry, writePart, type RejectEntry } from './report.js';
import { importReportPartKey } from '../storage/keys.js';
import { ObjectChangedError, UnreadableFileError, type ByteSource } from './types.js';

/** The job's collection is gone (deleted, or re-created under a new generation): the job fails, nothing retries. */
class CollectionGoneError extends Error {}

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
  enqueue(message: ImportJobMessage): Promise<void>;
  now?: () => number;
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
    await deps.jobs.release(collection, jobId, token, saved).catch(() => undefined);
    throw err;
  }
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
  const fail = async (error: string, progress?: ImportProgress): Promise<{ outcome: RunOutcome; job?: ImportJob }> => {
    await deps.jobs.finish(collection, jobId, token, { state: 'failed', error, progress }, now());
    return { outcome: 'finished', job: await deps.jobs.get(collection, jobId) };
  };

  // The collection may be deleted (or deleted and re-created) before or while the job runs: checked at
  // the start and before every batch, so at most the batches already in flight land under the old
  // generation (one GetItem per batch).
  const ownCollection = async (phase: 'start' | 'batch'): Promise<CollectionMeta> => {
    const name = JSON.stringify(collection);
    let current;
    try {
      current = await deps.catalog.getCollection(collection);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      throw new CollectionGoneError(
        phase === 'start' ? `collection ${name} does not exist` : `collection ${name} was deleted during the import`,
      );
    }
    if (current.generation !== job.generation) {
      throw new CollectionGoneError(
        `collection ${name} was deleted and re-created ` +
          (phase === 'start' ? 'after the job was created' : 'during the import'),
      );
    }
    return current;
  };

  let meta: CollectionMeta;
  try {
    meta = await ownCollection('start');
  } catch (err) {
    if (err instanceof CollectionGoneError) return fail(err.message);
    throw err;
  }
  if (!job.format)
    return fail(`unsupported file type: ${job.key} (supported: .jsonl, .jsonl.gz, .csv, .csv.gz, .parquet, .npy)`);

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
  let batch: VectorInput[] = [];
  let batchIds = new Set<string>();
  const inFlight: Array<Promise<number>> = [];
  let written = 0; // rows durable since the last save
  let read = 0;
  let rejected = 0;
  let pos = { checkpoint: progress.checkpoint, bytesRead: progress.bytesRead };
  let segmentStart = progress.checkpoint.rows;

  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    await ownCollection('batch');
    const vectors = batch;
    batch = [];
    batchIds = new Set();
    inFlight.push(upsertVectors(ingest, meta, vectors));
    if (inFlight.length >= concurrency) written += await inFlight.shift()!;
  };
  const drain = async (): Promise<void> => {
    await flush();
    const results = await Promise.allSettled(inFlight.splice(0));
    for (const r of results) {
      if (r.status === 'rejected') throw r.reason;
      written += r.value;
    }
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

  let source: ByteSource;
  let ids: Awaited<ReturnType<ImportDeps['findSidecar']>>;
  let lastSave = now();
  let outOfTime = false;
  try {
    source = await deps.openSource(job);
    ids = job.format === 'npy' ? await deps.findSidecar(job) : undefined;
    const from = progress.checkpoint.rows > 0 ? progress.checkpoint : undefined;
    const reader = openReader(job.format, source, { dimension: meta.dimension, from, ids });
    for await (const row of reader) {
      read++;
      if (row.error || !row.values || row.id === undefined) {
        rejected++;
        // The first MAX_REPORTED_REJECTS rejects of the job are reported; the count covers all.
        if (progress.rowsRejected + rejected <= MAX_REPORTED_REJECTS) rejects.push(rejectEntry(job.format, row));
      } else {
        // A repeated id inside one batch would fail the batch: the later row must win, so flush first.
        if (batchIds.has(row.id)) await flush();
        batch.push(
          row.metadata
            ? { id: row.id, values: row.values, metadata: row.metadata }
            : { id: row.id, values: row.values },
        );
        batchIds.add(row.id);
        if (batch.length >= batchRows) await flush();
      }
      pos = { checkpoint: row.next, bytesRead: row.bytesRead };
      if (read % 64 === 0 || batch.length === 0) {
        const t = now();
        if (t >= opts.deadline) {
          outOfTime = true;
          break;
        }
        if (t - lastSave >= checkpointEveryMs) {
          await commitSegment();
          if (!(await deps.jobs.save(collection, jobId, token, progress, opts.deadline + LEASE_GRACE_MS))) {
            return { outcome: 'skipped', job: await deps.jobs.get(collection, jobId) };
          }
          Object.assign(saved, structuredClone(progress));
          lastSave = now();
        }
      }
    }
  } catch (err) {
    // Let in-flight writes settle (they are valid rows) before deciding.
    await Promise.allSettled(inFlight.splice(0));
    if (err instanceof UnreadableFileError || err instanceof ObjectChangedError || err instanceof CollectionGoneError) {
      return fail(err.message, progress);
    }
    throw err;
  }

  await commitSegment();
  if (outOfTime) {
    if (!(await deps.jobs.release(collection, jobId, token, progress)))
      return { outcome: 'skipped', job: await deps.jobs.get(collection, jobId) };
    await deps.ingest.wake(collection).catch(() => undefined);
    await deps.enqueue({ type: 'continue', collection, jobId });
    return { outcome: 'continued', job: await deps.jobs.get(collection, jobId) };
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
  await deps.jobs.finish(collection, jobId, token, { state, error, report, progress }, now());
  try {
    await deps.ingest.wake(collection);
  } catch (err) {
    logger.warn('builder wake-up failed (the scheduled tick will catch up)', { collection, error: err as Error });
  }
  return { outcome: 'finished', job: await deps.jobs.get(collection, jobId) };
}
