/**
 * Waiting for the index builder: polls the collection's stats (`GET /v1/collections/{name}`) until no id is
 * pending, i.e. the index watermark covers every acknowledged write.
 */
import { ShoalTimeoutError } from './errors.js';
import { sleep } from './retry.js';
import type { Collection, CollectionStats } from './types.js';

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
