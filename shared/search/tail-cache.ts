import { TailBudgetError } from '../errors.js';
import type { Catalog, CollectionMeta, RecordStore, StoredRecord } from '../storage/types.js';
import { collectionKey } from '../storage/keys.js';

/** When a strong read must be done reading its tail (docs/architecture.md §7.2). */
export interface TailDeadline {
  at: number;
  budgetMs: number;
  now: () => number;
}

/** Throws TailBudgetError once the deadline has passed (checked between batches of the tail read). */
export function checkTailDeadline(deadline: TailDeadline | undefined, meta: CollectionMeta, rowsRead: number): void {
  if (!deadline || deadline.now() <= deadline.at) return;
  throw new TailBudgetError(
    `collection "${meta.name}": the writes not indexed yet could not be read within ${deadline.budgetMs} ms ` +
      `(${rowsRead} read so far); retry once the builder caught up, or search with consistency "eventual"`,
    { details: { budgetMs: deadline.budgetMs, rowsRead } },
  );
}

/** The live (non-deleted) tail rows packed row-major, for exact scans without per-query copying. */
export interface PackedTail {
  live: StoredRecord[];
  data: Float32Array;
}

export function packTail(records: readonly StoredRecord[], dim: number): PackedTail {
  const live = records.filter((r) => !r.deleted && r.vector);
  const data = new Float32Array(live.length * dim);
  live.forEach((r, i) => data.set(r.vector!, i * dim));
  return { live, data };
}

export interface TailSnapshot {
  records: StoredRecord[];
  /** Packed once per tail state and shared by the searches that see that state. */
  packed(): PackedTail;
}

interface Entry {
  watermark: number;
  /** Packed once per tail state; dropped whenever a read changes the records. */
  packed?: PackedTail;
  /** Every write with seq ≤ readUpTo was durable when the tail was last read past it. */
  readUpTo: number;
  records: Map<string, StoredRecord>;
}

/**
 * The unindexed tail of each collection, kept between strong searches so each one reads
 * only what is new instead of the whole tail.
 *
 * Why it is still strong: `catalog.stableSeq` (read *before* the tail query) is a seq at
 * or below which every allocated write was already durable. After a read that started
 * past stable S, no write with seq ≤ S can appear later, so the next read can start at S.
 * Writes above S seen by a read stay cached but are read again until they fall below a
 * later stable point. A write acknowledged before a search released its lease, so it is
 * either ≤ the previous S (seen then) or > it (read now). An id rewritten since is
 * replaced (same id, higher seq); a new index version (watermark) resets the entry.
 */
export class TailCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly catalog: Catalog,
    private readonly records: RecordStore,
    /** Collections tracked at most (LRU); each holds at most its unindexed tail. */
    private readonly maxCollections = 64,
  ) {}

  /**
   * The tail after `watermark`, plus its packed live rows. The snapshot keeps its own entry:
   * a concurrent search that moves to a newer index version starts a new entry and cannot
   * swap this search's tail for one that belongs to another watermark.
   */
  async read(meta: CollectionMeta, watermark: number, deadline?: TailDeadline): Promise<TailSnapshot> {
    const ck = collectionKey(meta);
    let entry = this.entries.get(ck);
    if (!entry || entry.watermark !== watermark) {
      entry = { watermark, readUpTo: watermark, records: new Map() };
    }
    this.entries.delete(ck);
    this.entries.set(ck, entry);
    if (this.entries.size > this.maxCollections) this.entries.delete(this.entries.keys().next().value as string);

    const stable = await this.catalog.stableSeq(meta.name);
    let through = entry.readUpTo;
    const current = entry;
    try {
      for await (const batch of this.records.tail(ck, entry.readUpTo, undefined, (seq) => (through = seq))) {
        for (const r of batch) {
          const known = entry.records.get(r.id);
          if (!known || known.seq < r.seq) {
            entry.records.set(r.id, r);
            entry.packed = undefined;
          }
        }
        checkTailDeadline(deadline, meta, entry.records.size);
      }
    } catch (err) {
      // A read cut short (the strong-read budget) keeps its progress: every write ≤ min(through, stable)
      // was durable and in the log when it was read, so the retry starts there instead of from scratch.
      current.readUpTo = Math.max(current.readUpTo, Math.min(through, stable));
      throw err;
    }
    entry.readUpTo = Math.max(entry.readUpTo, stable);
    const own = entry;
    return {
      records: [...own.records.values()],
      packed: () => (own.packed ??= packTail([...own.records.values()], meta.dimension)),
    };
  }
}
