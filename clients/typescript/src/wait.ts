/**
 * Waiting for the index builder: polls the collection's stats (`GET /v1/collections/{name}`) until no id is
 * pending, i.e. the index watermark covers every acknowledged write; and polls a tune job
 * (`GET /v1/collections/{name}/tune-jobs/{jobId}`) until it ends.
 */
import { ShoalTimeoutError } from './errors.js';
import { sleep } from './retry.js';
import type { Collection, CollectionStats, TuneJob } from './types.js';

/** What `waitForIndex` needs of a collection handle. */
export interface StatsSource {
  readonly name: string;
  info(options?: { signal?: AbortSignal }): Promise<Collection>;
}

export interface IndexProgress {
  stats: CollectionStats;
  /** `pending` when the wait began (the denominator of a progress bar). */
  initialPending: number;
  elapsedMs: number;
}

export interface WaitForIndexOptions {
  /** Default 10 minutes. */
  timeoutMs?: number;
  /** Poll period, default 1 000 ms. */
  pollMs?: number;
  /** Also wait until the index version is at least this (e.g. one past the version before a rebuild). */
  minVersion?: number;
  onProgress?: (progress: IndexProgress) => void;
  signal?: AbortSignal;
}

/** Resolves to the stats once `pending` is 0 (and `version` ≥ `minVersion`); ShoalTimeoutError after `timeoutMs`. */
export async function waitForIndex(
  collection: StatsSource,
  options: WaitForIndexOptions = {},
): Promise<CollectionStats> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const pollMs = options.pollMs ?? 1000;
  const started = Date.now();
  let initialPending: number | undefined;
  for (;;) {
    const info = await collection.info({ signal: options.signal });
    const stats = info.stats;
    if (!stats) throw new TypeError(`GET /v1/collections/${collection.name} answered without stats`);
    initialPending ??= stats.pending;
    const elapsedMs = Date.now() - started;
    options.onProgress?.({ stats, initialPending, elapsedMs });
    if (stats.pending === 0 && stats.version >= (options.minVersion ?? 0)) return stats;
    if (elapsedMs + pollMs > timeoutMs) {
      throw new ShoalTimeoutError(
        `${collection.name}: ${stats.pending} ids still pending after ${Math.round(elapsedMs / 1000)} s ` +
          `(index version ${stats.version})`,
      );
    }
    await sleep(pollMs, options.signal);
  }
}

/** What `waitForTune` needs of a collection handle. */
export interface TuneJobSource {
  readonly name: string;
  tuneJob(jobId: string, options?: { signal?: AbortSignal }): Promise<TuneJob>;
}

export interface WaitForTuneOptions {
  /** Default 15 minutes (the index-builder function's timeout). */
  timeoutMs?: number;
  /** Poll period, default 1 000 ms (the job's progress moves at most once a second). */
  intervalMs?: number;
  onProgress?: (job: TuneJob) => void;
  signal?: AbortSignal;
}

/**
 * Resolves to the tune job once it ended: `succeeded` (with `evaluation`) or `failed` (with `error`: check
 * `status`). ShoalTimeoutError after `timeoutMs`.
 */
export async function waitForTune(
  collection: TuneJobSource,
  jobId: string,
  options: WaitForTuneOptions = {},
): Promise<TuneJob> {
  const timeoutMs = options.timeoutMs ?? 900_000;
  const intervalMs = options.intervalMs ?? 1000;
  const started = Date.now();
  for (;;) {
    const job = await collection.tuneJob(jobId, { signal: options.signal });
    options.onProgress?.(job);
    if (job.status === 'succeeded' || job.status === 'failed') return job;
    const elapsedMs = Date.now() - started;
    if (elapsedMs + intervalMs > timeoutMs) {
      throw new ShoalTimeoutError(
        `${collection.name}: tune job ${jobId} still ${job.status} after ${Math.round(elapsedMs / 1000)} s ` +
          `(${job.progress.measured} sweep rows measured)`,
      );
    }
    await sleep(intervalMs, options.signal);
  }
}
