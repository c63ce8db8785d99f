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
 * A lease taken before the collection is known (`leaseEarly`): the write path reads the meta item and
 * leases in parallel, one round trip for both. Settled, never rejected: a failed early lease is retried
 * by the write itself.
 */
export type EarlyLease = Promise<SeqLease | undefined>;

/** Starts leasing `n` seqs of `collection` now; pair with `write…` or `dropEarlyLease`. */
export function leaseEarly(catalog: Catalog, collection: string, n: number): EarlyLease {
  return catalog.leaseSeqs(collection, n, WRITE_LEASE_MS).catch((err: unknown) => {
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
): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const taken = attempt === 0 && early ? await early : undefined;
    const lease = taken ?? (await deps.catalog.leaseSeqs(meta.name, n, WRITE_LEASE_MS));
    const records = Array.from({ length: n }, (_, i) => make(lease.first + i, i));
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
    for await (const batch of deps.records.scan(ck)) {
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
