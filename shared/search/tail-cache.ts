import { TailBudgetError } from '../errors.js';
import type { Catalog, CollectionMeta, RecordStore, SeqState, StoredRecord } from '../storage/types.js';
import type { NewestWrites } from './merge.js';
import { norm } from '../engine/distance.js';
import type { Metric } from '../types.js';
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
  /** Cosine only: 1/‖row‖ per row, so a scan does not recompute every row's norm for every query. */
  invNorms?: Float32Array;
}

export function packTail(records: readonly StoredRecord[], dim: number, metric?: Metric): PackedTail {
  const live = records.filter((r) => !r.deleted && r.vector);
  const data = new Float32Array(live.length * dim);
  live.forEach((r, i) => data.set(r.vector!, i * dim));
  if (metric !== 'cosine') return { live, data };
  const invNorms = new Float32Array(live.length);
  for (let i = 0; i < live.length; i++) {
    const n = norm(data, i * dim, dim);
    invNorms[i] = n > 0 ? 1 / n : 0;
  }
  return { live, data, invNorms };
}

/**
 * One state of a collection's tail, shared by every search that sees that state: what a strong
 * search derives from the tail is computed once per state, not once per request.
 */
export interface TailSnapshot {
  records: StoredRecord[];
  /** The newest write per id (every record, tombstones included). */
  newest: NewestWrites;
  /** Packed on first use. */
  packed(): PackedTail;
}

export function tailSnapshot(records: StoredRecord[], dim: number, metric?: Metric): TailSnapshot {
  const newest = new Map<string, { seq: number; deleted: boolean }>();
  for (const r of records) {
    const n = newest.get(r.id);
    if (!n || n.seq < r.seq) newest.set(r.id, { seq: r.seq, deleted: r.deleted });
  }
  let packed: PackedTail | undefined;
  return { records, newest, packed: () => (packed ??= packTail(records, dim, metric)) };
}

/**
 * How far a read that just finished has seen every write: to `stable`, or — when write leases hold it
 * back — to the first write lease whose records it does not hold yet (each id at or above its seq), at
 * most the stable seq plain leases allow. Every other seq up to there was logged before the counter item
 * was read, and the log was read after it. So a steady strong read stays one round trip while an
 * acknowledged write's lease waits to be settled.
 */
function resolvedUpTo(state: SeqState, entry: Entry): number {
  const { stable, pending, stableBesideWrites } = state;
  if (!pending?.length || stableBesideWrites === undefined) return stable;
  let upTo = stableBesideWrites;
  for (const p of pending) {
    const landed = p.ids.every((id, i) => (entry.records.get(id)?.seq ?? -1) >= p.first + i);
    if (!landed) upTo = Math.min(upTo, p.first - 1);
  }
  return Math.max(stable, upTo);
}

interface Entry {
  watermark: number;
  /** The current state's snapshot; dropped whenever a read changes the records. */
  snapshot?: TailSnapshot;
  /** Every write with seq ≤ readUpTo was durable when the tail was last read past it. */
  readUpTo: number;
  records: Map<string, StoredRecord>;
}

/**
 * The unindexed tail of each collection, kept between strong searches so each one reads
 * only what is new instead of the whole tail.
 *
 * Why it is still strong: `catalog.seqState` (read *before* the tail query) gives a stable seq S
 * at or below which every allocated write was already durable. After a read that started past
 * S, no write with seq ≤ S can appear later, so the next read can start at S. Writes above S
 * seen by a read stay cached but are read again until they fall below a later stable point. A
 * write acknowledged before a search released its lease, so it is either ≤ the previous S (seen
 * then) or > it (read now). An id rewritten since is replaced (same id, higher seq); a new index
 * version (watermark) resets the entry. When no seq above the read point has been allocated at
 * all (the same read's `allocated`), there is nothing to read and the log is not queried: a
 * steady tail costs one GetItem per search instead of a Query of every log partition.
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
   * The tail after `watermark`. The snapshot is immutable: a concurrent search that moves to a
   * newer index version starts a new entry and cannot swap this search's tail for one that belongs
   * to another watermark, and a later read that adds rows makes a new snapshot.
   */
  async read(
    meta: CollectionMeta,
    watermark: number,
    deadline?: TailDeadline,
    /** The seq counter, when the caller read it alongside the meta item (after the request began). */
    prefetched?: Promise<SeqState | undefined>,
  ): Promise<TailSnapshot> {
    const ck = collectionKey(meta);
    let entry = this.entries.get(ck);
    if (!entry || entry.watermark !== watermark) {
      entry = { watermark, readUpTo: watermark, records: new Map() };
    }
    this.entries.delete(ck);
    this.entries.set(ck, entry);
    if (this.entries.size > this.maxCollections) this.entries.delete(this.entries.keys().next().value as string);

    const state = (await prefetched) ?? (await this.catalog.seqState(meta.name));
    const { stable, allocated, pending = [] } = state;
    if (allocated > entry.readUpTo) {
      let through = entry.readUpTo;
      const current = entry;
      try {
        const batches = this.records.tail(ck, entry.readUpTo, undefined, (seq) => (through = seq), pending);
        for await (const batch of batches) {
          for (const r of batch) {
            const known = entry.records.get(r.id);
            if (!known || known.seq < r.seq) {
              entry.records.set(r.id, r);
              entry.snapshot = undefined;
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
      entry.readUpTo = Math.max(entry.readUpTo, resolvedUpTo(state, entry));
    }
    return (entry.snapshot ??= tailSnapshot([...entry.records.values()], meta.dimension, meta.metric));
  }
}
