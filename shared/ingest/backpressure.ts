/**
 * The cap on a collection's unindexed tail (docs/architecture.md §7.2). Strong searches scan the tail
 * exactly, so a tail that grows without bound (a bulk load faster than the builder) would make
 * them slower and slower, and finally run into the function timeout. Above the cap, upserts are
 * refused with 429 BACKPRESSURE (the builder is woken) and imports pause; both resume once the
 * builder has caught up.
 *
 * The estimate is seq-based — stable seq − the serving head's watermark, × dimension × 4 bytes — so
 * rewrites and deletes count as rows: it errs towards refusing early, never late. It is cached per
 * collection for `ttlMs` (two reads per check otherwise); over the cap, each 429 costs no read.
 */
import { currentManifest } from '../collections.js';
import { BackpressureError } from '../errors.js';
import { collectionKey } from '../storage/keys.js';
import type { Catalog, CollectionMeta } from '../storage/types.js';

/** How long a tail estimate is reused (default 1 s): longer = fewer catalog reads, a later 429. */
export const TAIL_ESTIMATE_TTL_MS = 1_000;
/**
 * Default cap on unindexed rows (100,000): on AWS a strong read fetches them in ~1–2 s (1,000 BatchGets,
 * 8 in flight), well inside its 10 s budget. Higher = fewer 429s in bulk loads, slower strong reads.
 */
export const DEFAULT_TAIL_CAP_ROWS = 100_000;
/** `Retry-After` of a BACKPRESSURE answer (seconds): about one delta build of a full tail. */
export const BACKPRESSURE_RETRY_AFTER_S = 5;

export class TailCap {
  private readonly estimates = new Map<string, { until: number; pendingSeqs: number }>();

  constructor(
    private readonly catalog: Catalog,
    /** Cap in bytes of vector data; 0 = none. */
    readonly capBytes: number,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = TAIL_ESTIMATE_TTL_MS,
    /**
     * Cap in rows (default DEFAULT_TAIL_CAP_ROWS): reading the tail costs per item (BatchGets of 100), so
     * low-dimensional vectors need a bound that bytes alone do not give. 0 = none.
     */
    readonly capRows = DEFAULT_TAIL_CAP_ROWS,
  ) {}

  /** Estimated writes (rows) not yet indexed by the serving line. */
  async pendingRows(meta: CollectionMeta): Promise<number> {
    const t = this.now();
    const key = collectionKey(meta);
    let hit = this.estimates.get(key);
    if (!hit || hit.until <= t) {
      const [stable, manifest] = await Promise.all([
        this.catalog.stableSeq(meta.name),
        currentManifest(this.catalog, meta),
      ]);
      hit = { until: t + this.ttlMs, pendingSeqs: Math.max(0, stable - (manifest?.watermark ?? 0)) };
      if (this.estimates.size > 10_000) this.estimates.clear();
      this.estimates.set(key, hit);
    }
    return hit.pendingSeqs;
  }

  /** Whether the tail is over either cap; the rows and bytes it has. */
  private async state(meta: CollectionMeta): Promise<{ over: boolean; rows: number; bytes: number }> {
    const rows = await this.pendingRows(meta);
    const bytes = rows * meta.dimension * 4;
    const over = (this.capBytes > 0 && bytes > this.capBytes) || (this.capRows > 0 && rows > this.capRows);
    return { over, rows, bytes };
  }

  async over(meta: CollectionMeta): Promise<boolean> {
    return (await this.state(meta)).over;
  }

  /** Throws BackpressureError when the collection's tail is over a cap. */
  async check(meta: CollectionMeta): Promise<void> {
    const { over, rows, bytes } = await this.state(meta);
    if (!over) return;
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    throw new BackpressureError(
      `collection "${meta.name}" has ${rows} writes (${mib(bytes)} MiB) not indexed yet (caps: ${this.capRows} rows, ` +
        `${mib(this.capBytes)} MiB); the builder is catching up: retry after ${BACKPRESSURE_RETRY_AFTER_S} s`,
      BACKPRESSURE_RETRY_AFTER_S,
      { details: { pendingRows: rows, pendingBytes: bytes, capRows: this.capRows, capBytes: this.capBytes } },
    );
  }
}
