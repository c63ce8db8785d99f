import { collectionKey } from '../ingest/ingest.js';
import type { Catalog, CollectionMeta, RecordStore, StoredRecord } from '../storage/types.js';

interface Entry {
  watermark: number;
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

  async read(meta: CollectionMeta, watermark: number): Promise<StoredRecord[]> {
    const ck = collectionKey(meta);
    let entry = this.entries.get(ck);
    if (!entry || entry.watermark !== watermark) {
      entry = { watermark, readUpTo: watermark, records: new Map() };
    }
    this.entries.delete(ck);
    this.entries.set(ck, entry);
    if (this.entries.size > this.maxCollections) this.entries.delete(this.entries.keys().next().value as string);

    const stable = await this.catalog.stableSeq(meta.name);
    for await (const batch of this.records.tail(ck, entry.readUpTo)) {
      for (const r of batch) {
        const known = entry.records.get(r.id);
        if (!known || known.seq < r.seq) entry.records.set(r.id, r);
      }
    }
    entry.readUpTo = Math.max(entry.readUpTo, stable);
    return [...entry.records.values()];
  }
}
