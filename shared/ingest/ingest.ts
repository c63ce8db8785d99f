import { ValidationError } from '../errors.js';
import type { FilterNode } from '../filter/ast.js';
import { matchesMetadata } from '../filter/compile.js';
import { logger } from '../log.js';
import type { VectorInput } from '../service.js';
import type { Catalog, CollectionMeta, RecordStore, SeqLease, StoredRecord } from '../storage/types.js';
import { StorageUnavailableError } from '../storage/clients.js';
import { collectionKey } from '../storage/keys.js';

/**
 * How long a write may hold its block of sequence numbers (default 5 min). The builder
 * never indexes past an unreleased lease, so a crashed writer delays indexing by at most
 * this long; a writer that outlives it re-writes under a fresh lease. Must exceed the
 * longest write (API Lambda timeout 30 s, import batches well under a minute).
 */
export const WRITE_LEASE_MS = 5 * 60_000;

/**
 * A collection's builder wake-ups are sent at most once per this window per process (default 1 s).
 * A stream of small upserts would otherwise pay an SQS round trip each (docs/architecture.md §7.6),
 * while the builder builds by its own policy (≥ 1,000 pending rows or 60 s of age) and the scheduled
 * tick catches up on whatever a skipped wake-up would have triggered. Longer = fewer sends, and a
 * write landing just after a wake-up may wait for the next one or the tick.
 */
export const WAKE_DEBOUNCE_MS = 1000;

/**
 * Small upserts (default ≤ 25 rows whose ids total ≤ 2 KiB) take a **write lease**: the counter item names
 * the id of each leased seq, so it is the write's log entry while in flight, and the write is acknowledged
 * once its records land — two round trips (meta ‖ lease, records) instead of four (… log, records,
 * release). The lease is settled afterwards (log entries, then removed from the counter item) by the writer
 * in the background, or by the builder before it reads the stable seq (docs/architecture.md §6.1). Larger
 * writes log themselves as before: their ids would crowd the 400 KB counter item, and a batch pays the two
 * extra round trips once for many rows. Larger limits = more upserts on the fast path, a bigger counter
 * item while leases are unsettled.
 */
export const WRITE_LEASE_MAX_ROWS = 25;
export const WRITE_LEASE_MAX_ID_BYTES = 2048;

/**
 * A write is acknowledged on its write lease only this long before the lease's expiry (default 60 s:
 * twice the clock skew the catalog allows between containers). The builder settles an expired write lease
 * without checking its records, so records that land later than this are settled the slow way: log
 * entries, then a release that proves the lease was still there.
 */
export const WRITE_ACK_MARGIN_MS = 60_000;

/** The ids a write lease for these upserts names (one per seq), or undefined when it takes a plain lease. */
export function writeLeaseIds(vectors: readonly { id: string }[]): string[] | undefined {
  if (vectors.length === 0 || vectors.length > WRITE_LEASE_MAX_ROWS) return undefined;
  let bytes = 0;
  for (const v of vectors) bytes += Buffer.byteLength(v.id);
  return bytes <= WRITE_LEASE_MAX_ID_BYTES ? vectors.map((v) => v.id) : undefined;
}

/** Background settlements of this process's write leases (awaited by `settled()`: shutdown and tests). */
const settling = new Set<Promise<void>>();

/** Resolves when every write lease this process acknowledged has been settled (or failed to, logged). */
export async function settled(): Promise<void> {
  while (settling.size) await Promise.all([...settling]);
}

function settleInBackground(deps: IngestDeps, meta: CollectionMeta, lease: SeqLease): void {
  const p = deps.catalog
    .settleWrites(meta.name, deps.records.writeLog(collectionKey(meta)), lease)
    .then(
      () => undefined,
      // The builder settles it before its next build: nothing is lost, indexing waits a little.
      (err: unknown) => logger.warn('settling a write lease failed; the builder will', { error: err as Error }),
    )
    .finally(() => settling.delete(p));
  settling.add(p);
}

/**
 * A lease taken before the collection is known (`leaseEarly`): the write path reads the meta item and
 * leases in parallel, one round trip for both. Settled, never rejected: a failed early lease is retried
 * by the write itself.
 */
export type EarlyLease = Promise<SeqLease | undefined>;

/** Starts leasing `n` seqs of `collection` now (a write lease with `ids`); pair with `write…` or `dropEarlyLease`. */
export function leaseEarly(catalog: Catalog, collection: string, n: number, ids?: string[]): EarlyLease {
  return catalog.leaseSeqs(collection, n, WRITE_LEASE_MS, ids).catch((err: unknown) => {
    logger.debug('early seq lease failed; the write leases again', { collection, error: err as Error });
    return undefined;
  });
}

/** Gives back an early lease whose write will not happen (bad input, unknown collection, backpressure). */
export async function dropEarlyLease(catalog: Catalog, collection: string, early: EarlyLease): Promise<void> {
  const lease = await early;
  // An unreleased lease would hold the builder back until it expires; a failed release only delays it.
  if (lease) await catalog.releaseSeqs(collection, lease).catch(() => undefined);
}

export interface IngestDeps {
  catalog: Catalog;
  records: RecordStore;
  /** Sends the builder wake-up; failures are logged, never fail the write (the tick catches up). */
  wake(collection: string): Promise<void>;
}

/**
 * Writes records under a seq lease: allocate → write → release. If the lease expired
 * before release (the builder may have moved past it), the same records are written
 * again under a fresh lease, so an acknowledged write is always at or above the index
 * watermark or inside it — never skipped.
 */
async function writeWithLease(
  deps: IngestDeps,
  meta: CollectionMeta,
  make: (seq: number, i: number) => StoredRecord,
  n: number,
  early?: EarlyLease,
  /** One id per record: take a write lease (writeLeaseIds). */
  ids?: string[],
): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const taken = attempt === 0 && early ? await early : undefined;
    const lease =
      taken ?? (await deps.catalog.leaseSeqs(meta.name, n, WRITE_LEASE_MS, attempt === 0 ? ids : undefined));
    const records = Array.from({ length: n }, (_, i) => make(lease.first + i, i));
    if (lease.ids) {
      // The lease is the log entry until settled, and it blocks the stable seq until then.
      await deps.records.put(records, { logged: false });
      if (Date.now() < lease.expiresAt - WRITE_ACK_MARGIN_MS) {
        settleInBackground(deps, meta, lease);
        return;
      }
      // Slow enough that the builder may have settled the lease as expired: log, then prove it was ours.
      await deps.records.writeLog(collectionKey(meta)).append(records.map((r) => ({ seq: r.seq, id: r.id })));
      if (await deps.catalog.releaseSeqs(meta.name, lease)) return;
      continue;
    }
    await deps.records.put(records);
    if (await deps.catalog.releaseSeqs(meta.name, lease)) return;
  }
  // Retryable: each attempt's rows are durable and the client's resend writes them once more.
  throw new StorageUnavailableError(`write to ${meta.name} could not complete within its sequence lease three times`, {
    details: { collection: meta.name },
  });
}

const lastWake = new WeakMap<IngestDeps['wake'], Map<string, number>>();

async function wake(deps: IngestDeps, name: string): Promise<void> {
  let sent = lastWake.get(deps.wake);
  if (!sent) lastWake.set(deps.wake, (sent = new Map()));
  const now = Date.now();
  if (now - (sent.get(name) ?? -Infinity) < WAKE_DEBOUNCE_MS) return;
  sent.set(name, now);
  try {
    await deps.wake(name);
  } catch (err) {
    logger.warn('builder wake-up failed (the scheduled tick will catch up)', { collection: name, error: err as Error });
  }
}

/**
 * Validates and writes upserts. With `early`, the seqs were leased while the meta item was read; the
 * lease is given back if the input is refused.
 */
export async function upsertVectors(
  deps: IngestDeps,
  meta: CollectionMeta,
  vectors: VectorInput[],
  early?: EarlyLease,
  /** The input was already validated against a meta item of the same dimension (the early lease's check). */
  prevalidated = false,
): Promise<number> {
  try {
    if (!prevalidated) validateUpserts(meta, vectors);
  } catch (err) {
    if (early) await dropEarlyLease(deps.catalog, meta.name, early);
    throw err;
  }
  if (vectors.length === 0) return 0;
  const ck = collectionKey(meta);
  await writeWithLease(
    deps,
    meta,
    (seq, i) => ({
      collection: ck,
      id: vectors[i].id,
      seq,
      vector: vectors[i].values,
      metadata: vectors[i].metadata,
      deleted: false,
      ...(vectors[i].inputRef !== undefined ? { input: vectors[i].inputRef } : {}),
    }),
    vectors.length,
    early,
    writeLeaseIds(vectors),
  );
  await wake(deps, meta.name);
  return vectors.length;
}

/**
 * Writes `row` as a new version of the stored record whose seq is `expectedSeq` (a read-modify-write:
 * PATCH of a vector's metadata), under a seq lease like any upsert. False, with nothing visible written,
 * when another write reached the record after it was read; the caller reads again. If the lease expired
 * before its release (the builder may have moved past it), the row is written again above, conditional
 * on this write being still the stored one.
 */
export async function rewriteIfUnchanged(
  deps: IngestDeps,
  meta: CollectionMeta,
  row: VectorInput,
  expectedSeq: number,
): Promise<boolean> {
  const ck = collectionKey(meta);
  let expected = expectedSeq;
  for (let attempt = 0; attempt < 3; attempt++) {
    const lease = await deps.catalog.leaseSeqs(meta.name, 1, WRITE_LEASE_MS);
    const record: StoredRecord = { collection: ck, id: row.id, seq: lease.first, vector: row.values, deleted: false };
    if (row.metadata !== undefined) record.metadata = row.metadata;
    if (row.inputRef !== undefined) record.input = row.inputRef;
    const written = await deps.records.putIfSeq(record, expected);
    const released = await deps.catalog.releaseSeqs(meta.name, lease);
    if (!written) return false;
    if (released) {
      await wake(deps, meta.name);
      return true;
    }
    expected = lease.first;
  }
  throw new StorageUnavailableError(`write to ${meta.name} could not complete within its sequence lease three times`, {
    details: { collection: meta.name },
  });
}

/** Throws ValidationError naming the first field that does not fit the collection. */
export function validateUpserts(meta: CollectionMeta, vectors: VectorInput[]): void {
  const seen = new Map<string, number>();
  vectors.forEach((v, i) => {
    if (v.values.length !== meta.dimension) {
      throw new ValidationError(
        `vectors[${i}].values has ${v.values.length} dimensions; collection "${meta.name}" has ${meta.dimension}`,
        {
          field: `vectors[${i}].values`,
        },
      );
    }
    for (let j = 0; j < v.values.length; j++) {
      if (!Number.isFinite(v.values[j])) {
        throw new ValidationError(`vectors[${i}].values[${j}] must be a finite number`, {
          field: `vectors[${i}].values[${j}]`,
        });
      }
    }
    const prev = seen.get(v.id);
    if (prev !== undefined) {
      throw new ValidationError(`vectors[${i}].id "${v.id}" repeats vectors[${prev}].id`, {
        field: `vectors[${i}].id`,
      });
    }
    seen.set(v.id, i);
  });
}

/** Deletes by id or by filter; returns how many live vectors were deleted. */
export async function deleteVectors(
  deps: IngestDeps,
  meta: CollectionMeta,
  selector: { ids: string[] } | { filter: FilterNode },
): Promise<number> {
  const ck = collectionKey(meta);
  let targets: string[];
  if ('ids' in selector) {
    const found = await deps.records.get(ck, [...new Set(selector.ids)]);
    targets = [...found.values()].filter((r) => !r.deleted).map((r) => r.id);
  } else {
    const matched = new Set<string>();
    // The counter item first: its write leases name acknowledged rows the log may not have yet.
    const { pending } = await deps.catalog.seqState(meta.name);
    for await (const batch of deps.records.scan(ck, pending)) {
      for (const r of batch) if (!r.deleted && matchesMetadata(selector.filter, r.metadata)) matched.add(r.id);
    }
    // The scan may be stale (the GSI lags on AWS): only rows that still match when read
    // strongly get a tombstone, so the count is exact and no absent id is "deleted".
    targets = [];
    const candidates = [...matched];
    for (let i = 0; i < candidates.length; i += 1000) {
      const ids = candidates.slice(i, i + 1000);
      const current = await deps.records.get(ck, ids);
      for (const id of ids) {
        const r = current.get(id);
        if (r && !r.deleted && matchesMetadata(selector.filter, r.metadata)) targets.push(id);
      }
    }
  }
  // Tombstones go in bounded chunks so one huge delete-by-filter holds no lease for long.
  for (let i = 0; i < targets.length; i += 1000) {
    const chunk = targets.slice(i, i + 1000);
    await writeWithLease(deps, meta, (seq, j) => ({ collection: ck, id: chunk[j], seq, deleted: true }), chunk.length);
  }
  if (targets.length) await wake(deps, meta.name);
  return targets.length;
}
