import { createHash } from 'node:crypto';
import { exactTopK } from '../engine/distance.js';
import { EngineError, ShoalError, ValidationError } from '../errors.js';
import { matchesMetadata } from '../filter/compile.js';
import type { SearchHitOutput, SearchInput, SearchOutput, SearchStats } from '../service.js';
import {
  MAIN_LINE,
  type Catalog,
  type CollectionMeta,
  type Manifest,
  type RecordStore,
  type ShardRef,
  type StoredRecord,
} from '../storage/types.js';
import { defaultNprobe, nearestPartitions } from '../engine/ivf.js';
import { mergeTopK, type Candidate } from './merge.js';
import type { ShardCache } from './shard-cache.js';
import {
  checkTailDeadline,
  packTail,
  type PackedTail,
  type TailCache,
  type TailDeadline,
  type TailSnapshot,
} from './tail-cache.js';
import { searchShards, type ShardSearchRequest, type ShardSearchResponse } from './shard-searcher.js';
import { StorageUnavailableError } from '../storage/clients.js';
import { collectionKey } from '../storage/keys.js';
import { defaultEf, manifestFor } from '../collections.js';

/**
 * Default scatter threshold (64 MiB, env SHOAL_SCATTER_MIN_MB): when a version's shards
 * total less, the coordinator searches them itself — an invoke round trip (~10–30 ms)
 * costs more than scanning small shards. Above it, shards are spread over searcher slots.
 */
export const DEFAULT_SCATTER_MIN_BYTES = 64 * 2 ** 20;

export interface SearchDeps {
  catalog: Catalog;
  records: RecordStore;
  cache: ShardCache;
  /** Keeps each collection's unindexed tail between strong searches (reads only new writes). */
  tails?: TailCache;
  /** Number of searcher slots (each a function with its own warm shard cache). */
  slots: number;
  /** Runs a shard-search request on a slot (Lambda invoke); undefined = always in process. */
  scatter?: (slot: number, request: ShardSearchRequest) => Promise<ShardSearchResponse>;
  /** Shard bytes below which the coordinator searches in process (default DEFAULT_SCATTER_MIN_BYTES). */
  scatterMinBytes?: number;
  /** Time a strong read may spend reading the tail (default DEFAULT_STRONG_READ_BUDGET_MS). */
  strongReadBudgetMs?: number;
  now?: () => number;
}

/**
 * Default time a strong read may spend on the tail (10 s, a third of the api function's 30 s): past it,
 * 503 TAIL_BUDGET_EXCEEDED rather than the function timeout's bare 500. Configured by SHOAL_STRONG_READ_BUDGET_MS.
 */
export const DEFAULT_STRONG_READ_BUDGET_MS = 10_000;

/** When a strong read that starts now must have read its tail. */
export function strongReadDeadline(deps: { strongReadBudgetMs?: number; now?: () => number }): TailDeadline {
  const now = deps.now ?? Date.now;
  const budget = deps.strongReadBudgetMs ?? DEFAULT_STRONG_READ_BUDGET_MS;
  return { at: now() + budget, budgetMs: budget, now };
}

/**
 * A searcher slot did not answer: it timed out, was throttled past the SDK's retries, or could not
 * be reached. The search fails as a whole (503, retryable): the other slots' hits are not an
 * answer, since the best rows may sit in the missing slot's shards.
 *
 * Why no retry here: a slot that timed out spent its whole budget (typically a cold load of large
 * shards); a second try inside the same request would outlast API Gateway's 30 s. The SDK already
 * resends invokes that failed in transport (throttling, 5xx, network; searching is read-only, so
 * that is safe). The caller's retry lands on a slot that has meanwhile warmed its cache.
 */
export class SearchUnavailableError extends ShoalError {
  readonly code = 'SEARCH_UNAVAILABLE';
  readonly statusCode = 503;
}

/**
 * The error for a slot invocation that returned a function error (`X-Amz-Function-Error`), from its
 * payload: a timeout or a storage outage is retryable (SearchUnavailableError); anything else is the
 * searcher's own failure (EngineError), which a retry would repeat.
 */
export function slotFailure(slot: number, payload: string): ShoalError {
  let errorType = '';
  let errorMessage = '';
  try {
    const parsed = JSON.parse(payload) as { errorType?: unknown; errorMessage?: unknown };
    errorType = typeof parsed.errorType === 'string' ? parsed.errorType : '';
    errorMessage = typeof parsed.errorMessage === 'string' ? parsed.errorMessage : '';
  } catch {
    errorMessage = payload;
  }
  const details = { slot, errorType };
  // Lambda's own timeout, or middy's early one (`TimeoutError`, thrown just before it so the handler can log).
  if (errorType === 'Sandbox.Timedout' || errorType === 'TimeoutError' || /Task timed out/.test(errorMessage)) {
    return new SearchUnavailableError(`searcher slot ${slot} timed out`, { details: { ...details, timeout: true } });
  }
  // The slot's storage kept failing (S3 SlowDown past the retries while loading a shard): retryable too.
  if (errorType === StorageUnavailableError.name || errorType === SearchUnavailableError.name) {
    return new SearchUnavailableError(`searcher slot ${slot} could not load its shards`, { details });
  }
  return new EngineError(`searcher slot ${slot} failed: ${payload.slice(0, 500)}`, { details });
}

/** Runs one slot; a transport failure (no answer at all) becomes SearchUnavailableError. */
async function callSlot(
  scatter: NonNullable<SearchDeps['scatter']>,
  slot: number,
  request: ShardSearchRequest,
): Promise<ShardSearchResponse> {
  try {
    return await scatter(slot, request);
  } catch (err) {
    // Typed already (a slot's timeout or failure, see slotFailure): as it is.
    if (err instanceof ShoalError) throw err;
    throw new SearchUnavailableError(`searcher slot ${slot} did not answer`, { cause: err, details: { slot } });
  }
}

/** A shard always goes to the same slot, so each slot's warm containers keep their own shards cached. */
export function slotOf(ref: ShardRef, slots: number): number {
  return createHash('sha1').update(ref.id).digest().readUInt32BE(0) % slots;
}

export async function readTail(
  records: RecordStore,
  meta: CollectionMeta,
  after: number,
  deadline?: TailDeadline,
): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for await (const batch of records.tail(collectionKey(meta), after)) {
    out.push(...batch);
    checkTailDeadline(deadline, meta, out.length);
  }
  return out;
}

function tailSnapshot(records: StoredRecord[], dim: number): TailSnapshot {
  let packed: PackedTail | undefined;
  return { records, packed: () => (packed ??= packTail(records, dim)) };
}

function tailCandidates(meta: CollectionMeta, packed: PackedTail, input: SearchInput): Candidate[][] {
  const { live, data } = packed;
  if (live.length === 0) return input.queries.map(() => []);
  const dim = meta.dimension;
  const view = { data, offset: 0, stride: dim, dim, count: live.length, normalized: false };
  let rows: Int32Array | undefined;
  if (input.filter) {
    const filter = input.filter;
    rows = Int32Array.from(live.flatMap((r, i) => (matchesMetadata(filter, r.metadata) ? [i] : [])));
    if (rows.length === 0) return input.queries.map(() => []);
  }
  return input.queries.map((q) =>
    exactTopK(view, meta.metric, q, input.k, rows ? { rows } : undefined).map((h) => ({
      id: live[h.row].id,
      score: h.score,
      seq: live[h.row].seq,
    })),
  );
}

export interface SearchTarget {
  /** Pinned index version (an alias's); undefined = latest. */
  version?: number;
  /** An index line to follow instead of the serving one (an alias's); its newest version, tracking writes. */
  line?: string;
  /** The alias the request came through, reported in `servedBy`. */
  alias?: string;
}

export async function search(
  deps: SearchDeps,
  meta: CollectionMeta,
  input: SearchInput,
  target: SearchTarget = {},
): Promise<SearchOutput> {
  input.queries.forEach((q, i) => {
    if (q.length !== meta.dimension) {
      throw new ValidationError(
        `query ${i} has ${q.length} dimensions; collection "${meta.name}" has ${meta.dimension}`,
        {
          field: input.queries.length === 1 ? 'vector' : `vectors[${i}]`,
        },
      );
    }
  });
  const manifest = await manifestFor(deps.catalog, meta, target.version, target.line);
  const watermark = manifest?.watermark ?? 0;
  // Strong reads see every acknowledged write: the shards plus everything after the watermark.
  // A pinned version is a snapshot: it never adds later writes (the builder purges tombstones
  // up to the lines' watermarks, so a tail read from an old pinned watermark could not hide
  // rows deleted since; serving a snapshot is the only consistent answer).
  const snapshot: TailSnapshot | undefined =
    input.consistency !== 'strong' || target.version !== undefined
      ? undefined
      : deps.tails
        ? await deps.tails.read(meta, watermark, strongReadDeadline(deps))
        : tailSnapshot(await readTail(deps.records, meta, watermark, strongReadDeadline(deps)), meta.dimension);
  const tail = snapshot?.records ?? [];
  const newest = new Map<string, { seq: number; deleted: boolean }>();
  for (const r of tail) newest.set(r.id, { seq: r.seq, deleted: r.deleted });

  const shards = manifest?.shards ?? [];
  const request: Omit<ShardSearchRequest, 'shards' | 'queries'> = {
    metric: meta.metric,
    k: input.k,
    // The collection's default efSearch (auto-tuning may lower or raise it) unless the request sets one.
    ef: input.ef ?? defaultEf(meta, manifest),
    filter: input.filter,
    exclude: tail.length ? [...newest.keys()] : undefined,
  };
  // The packed tail is reused across searches while it is unchanged (no per-query copy).
  const tailLists = snapshot ? tailCandidates(meta, snapshot.packed(), input) : input.queries.map(() => []);
  const route = manifest?.partitions ? await routeQueries(deps.cache, meta, manifest, input) : undefined;
  const searched = new Set<string>();
  const lists: Candidate[][][] = input.queries.map((_, q) => [tailLists[q]]);
  const runRound = async (perQuery: ShardRef[][]): Promise<void> => {
    for (const [refs, queries] of groupByShards(perQuery)) {
      refs.forEach((r) => searched.add(r.id));
      const results = await searchShardSet(deps, refs, { ...request, queries: queries.map((q) => input.queries[q]) });
      queries.forEach((q, i) => lists[q].push(results[i]));
    }
  };
  let merged: Candidate[][];
  if (!route) {
    await runRound(input.queries.map(() => shards));
    merged = input.queries.map((_, q) => mergeTopK(lists[q], input.k, meta.metric, newest));
  } else {
    // Probe the nprobe nearest partitions; a query left with fewer than k hits (a selective filter,
    // sparse partitions) probes twice as many, until it has k or every partition was probed: the
    // "exactly k when ≥ k match" promise holds on partitioned versions too.
    const probed = input.queries.map(() => 0);
    let want = input.queries.map(() => route.nprobe);
    for (;;) {
      await runRound(input.queries.map((_, q) => route.shardsOf(q, probed[q], want[q])));
      want.forEach((w, q) => (probed[q] = w));
      merged = input.queries.map((_, q) => mergeTopK(lists[q], input.k, meta.metric, newest));
      want = probed.map((p, q) => (merged[q].length < input.k && p < route.total ? Math.min(route.total, p * 2) : p));
      if (want.every((w, q) => w === probed[q])) break;
    }
    route.probed = probed.reduce((a, b) => a + b, 0) / Math.max(1, probed.length);
  }
  let attach = new Map<string, StoredRecord>();
  if (input.includeMetadata || input.includeValues) {
    const ids = [...new Set(merged.flat().map((c) => c.id))];
    attach = ids.length ? await deps.records.get(collectionKey(meta), ids) : attach;
  }
  const results = merged.map((list) =>
    list.map((c): SearchHitOutput => {
      const hit: SearchHitOutput = { id: c.id, score: c.score };
      const rec = attach.get(c.id);
      if (input.includeMetadata) hit.metadata = rec?.metadata ?? {};
      if (input.includeValues && rec?.vector) hit.values = Array.from(rec.vector);
      return hit;
    }),
  );
  const servedBy: SearchOutput['servedBy'] = { collection: meta.name, version: manifest?.version ?? 0 };
  if (manifest?.line !== undefined) servedBy.line = manifest.line;
  if (target.alias !== undefined) servedBy.alias = target.alias;
  const stats: SearchStats = { shardsSearched: searched.size, shardsTotal: shards.length };
  if (route) {
    stats.partitionsProbed = Math.round(route.probed * 100) / 100;
    stats.partitionsTotal = route.total;
    stats.nprobe = route.nprobe;
  }
  return { results, servedBy, stats };
}

/** How a partitioned version routes the queries of one request. */
interface Route {
  nprobe: number;
  total: number;
  /** The shards of query q's probe-order partitions [from, to). */
  shardsOf(q: number, from: number, to: number): ShardRef[];
  /** Mean partitions probed per query (set once the search is done). */
  probed: number;
}

/**
 * The nprobe a search uses without `nprobe`: the line's tuned default, else what the version was
 * built with, else defaultNprobe(P).
 */
export function defaultNprobeOf(meta: CollectionMeta, manifest: Manifest): number {
  const line = manifest.line ?? MAIN_LINE;
  const settings = line === (meta.index.line ?? MAIN_LINE) ? meta.index : meta.candidates?.[line];
  const total = manifest.partitions?.count ?? 1;
  return Math.min(total, settings?.params.nprobe ?? manifest.params.nprobe ?? defaultNprobe(total));
}

async function routeQueries(
  cache: ShardCache,
  meta: CollectionMeta,
  manifest: Manifest,
  input: Pick<SearchInput, 'queries' | 'nprobe'>,
): Promise<Route> {
  const centroids = await cache.centroids(manifest.partitions!);
  const byPartition = new Map<number, ShardRef[]>();
  for (const ref of manifest.shards) {
    const p = ref.partition ?? -1;
    const list = byPartition.get(p);
    if (list) list.push(ref);
    else byPartition.set(p, [ref]);
  }
  // Shards without a partition (none today) would be searched by every query.
  const always = byPartition.get(-1) ?? [];
  const orders = input.queries.map((q) => nearestPartitions(centroids, meta.metric, q, centroids.count));
  return {
    nprobe: Math.min(centroids.count, input.nprobe ?? defaultNprobeOf(meta, manifest)),
    total: centroids.count,
    probed: 0,
    shardsOf: (q, from, to) => [
      ...(from === 0 ? always : []),
      ...orders[q].slice(from, to).flatMap((p) => byPartition.get(p) ?? []),
    ],
  };
}

/**
 * The shards one query searches on a version: all of them, or on a partitioned version those of its
 * `nprobe` nearest partitions (evaluation and tuning measure exactly what searches do).
 */
export async function probeShards(
  cache: ShardCache,
  meta: CollectionMeta,
  manifest: Manifest,
  query: Float32Array,
  nprobe: number | undefined,
): Promise<ShardRef[]> {
  if (!manifest.partitions) return manifest.shards;
  const route = await routeQueries(cache, meta, manifest, { queries: [query], nprobe });
  return route.shardsOf(0, 0, route.nprobe);
}

/** Queries that search the same shards go together (one request per shard set). */
function groupByShards(perQuery: ShardRef[][]): Array<[ShardRef[], number[]]> {
  const groups = new Map<string, [ShardRef[], number[]]>();
  perQuery.forEach((refs, q) => {
    if (!refs.length) return;
    const key = refs.map((r) => r.id).join(',');
    const group = groups.get(key);
    if (group) group[1].push(q);
    else groups.set(key, [refs, [q]]);
  });
  return [...groups.values()];
}

/**
 * Searches one set of shards for some queries: in process below the scatter threshold, else spread
 * over searcher slots by shard (all or nothing: one failed slot fails the search, no partial top-k
 * presented as complete). Returns one merged list per query.
 */
async function searchShardSet(
  deps: SearchDeps,
  shards: ShardRef[],
  request: Omit<ShardSearchRequest, 'shards' | 'queries'> & { queries: Float32Array[] },
): Promise<Candidate[][]> {
  const req = { ...request, queries: request.queries.map((q) => Array.from(q)) };
  const totalBytes = shards.reduce((s, r) => s + r.bytes, 0);
  if (!deps.scatter || deps.slots <= 1 || totalBytes < (deps.scatterMinBytes ?? DEFAULT_SCATTER_MIN_BYTES)) {
    return (await searchShards(deps.cache, { ...req, shards })).results;
  }
  const groups = new Map<number, ShardRef[]>();
  for (const ref of shards) {
    const slot = slotOf(ref, deps.slots);
    groups.set(slot, [...(groups.get(slot) ?? []), ref]);
  }
  const scatter = deps.scatter;
  const responses = await Promise.all(
    [...groups].map(([slot, refs]) => callSlot(scatter, slot, { ...req, shards: refs })),
  );
  return req.queries.map((_, q) =>
    mergeTopK(
      responses.map((r) => r.results[q]),
      req.k,
      req.metric,
    ),
  );
}
