import { createHash } from 'node:crypto';
import { exactTopKBatch } from '../engine/distance.js';
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
  type SeqState,
} from '../storage/types.js';
import { centroidRanker } from '../engine/centroid-ranker.js';
import { defaultNprobe } from '../engine/ivf.js';
import { isSuperseded, mergeTopK, type Candidate, type NewestWrites } from './merge.js';
import type { ShardCache } from './shard-cache.js';
import {
  checkTailDeadline,
  tailSnapshot,
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
 * Default scatter threshold (256 MiB: half the default 512 MiB shard cache; the deployed functions set
 * SHOAL_SCATTER_MIN_MB to half of theirs): when the shards a search reads total less, the coordinator
 * searches them itself — an invoke round trip (~10 ms on AWS) costs more than searching them (10 shards
 * of 6,000 × 784, 190 MB: 4.5 ms in process). Above it, shards are spread over searcher slots, whose
 * caches and CPUs then share the load.
 */
export const DEFAULT_SCATTER_MIN_BYTES = 256 * 2 ** 20;

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

/**
 * Every write after `after`, strongly: the counter item first (its pending write leases name writes not
 * yet in the log), then the log. In that order: a lease settled in between had its entries logged before
 * it left the counter item, so one of the two reads finds each write.
 */
export async function readTail(
  deps: { records: RecordStore; catalog: Pick<Catalog, 'seqState'> },
  meta: CollectionMeta,
  after: number,
  deadline?: TailDeadline,
  prefetched?: Promise<SeqState | undefined>,
): Promise<StoredRecord[]> {
  const { pending } = (await prefetched) ?? (await deps.catalog.seqState(meta.name));
  const out: StoredRecord[] = [];
  for await (const batch of deps.records.tail(collectionKey(meta), after, undefined, undefined, pending)) {
    out.push(...batch);
    checkTailDeadline(deadline, meta, out.length);
  }
  return out;
}

function tailCandidates(meta: CollectionMeta, packed: PackedTail, input: SearchInput): Candidate[][] {
  const { live, data, invNorms } = packed;
  if (live.length === 0) return input.queries.map(() => []);
  const dim = meta.dimension;
  const view = { data, offset: 0, stride: dim, dim, count: live.length, normalized: false };
  let rows: Int32Array | undefined;
  if (input.filter) {
    const filter = input.filter;
    rows = Int32Array.from(live.flatMap((r, i) => (matchesMetadata(filter, r.metadata) ? [i] : [])));
    if (rows.length === 0) return input.queries.map(() => []);
  }
  // One pass over the tail for every query of the request (rows are read once per block of queries).
  const queries = new Float32Array(input.queries.length * dim);
  input.queries.forEach((q, i) => queries.set(q, i * dim));
  const opts = { ...(rows ? { rows } : {}), ...(invNorms ? { invNorms } : {}) };
  return exactTopKBatch(view, meta.metric, queries, input.queries.length, input.k, opts).map((hits) =>
    hits.map((h) => ({ id: live[h.row].id, score: h.score, seq: live[h.row].seq })),
  );
}

export interface SearchTarget {
  /** Pinned index version (an alias's); undefined = latest. */
  version?: number;
  /** An index line to follow instead of the serving one (an alias's); its newest version, tracking writes. */
  line?: string;
  /** The alias the request came through, reported in `servedBy`. */
  alias?: string;
  /**
   * The collection's seq counter, read while the meta item was (docs/architecture.md §7.6): a strong
   * search on a steady tail is then one round trip. Read after the request began, as the tail rule needs.
   */
  seq?: Promise<SeqState | undefined>;
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
        ? await deps.tails.read(meta, watermark, strongReadDeadline(deps), target.seq)
        : tailSnapshot(
            await readTail(deps, meta, watermark, strongReadDeadline(deps), target.seq),
            meta.dimension,
            meta.metric,
          );
  const newest = snapshot?.newest;

  const shards = manifest?.shards ?? [];
  const request: Omit<ShardSearchRequest, 'shards' | 'queries'> = {
    metric: meta.metric,
    k: input.k,
    // The collection's default efSearch (auto-tuning may lower or raise it) unless the request sets one.
    ef: input.ef ?? defaultEf(meta, manifest),
    filter: input.filter,
  };
  const supersede = newest?.size ? supersedeBy(newest, input.k, shards) : undefined;
  // The packed tail is reused across searches while it is unchanged (no per-query copy).
  const tailLists = snapshot ? tailCandidates(meta, snapshot.packed(), input) : input.queries.map(() => []);
  const route = manifest?.partitions ? await routeQueries(deps.cache, meta, manifest, input) : undefined;
  const searched = new Set<string>();
  const lists: Candidate[][][] = input.queries.map((_, q) => [tailLists[q]]);
  const runRound = async (perQuery: ShardRef[][]): Promise<void> => {
    for (const [refs, queries] of groupByShards(perQuery)) {
      refs.forEach((r) => searched.add(r.id));
      const results = await searchShardSet(
        deps,
        refs,
        { ...request, queries: queries.map((q) => input.queries[q]) },
        supersede,
      );
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
  const ranker = await centroidRanker();
  const orders = input.queries.map((q) => ranker.nearest(centroids, meta.metric, q, centroids.count));
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
 * How shard searches leave out the rows the tail supersedes (an id with a newer write after the
 * watermark, docs/architecture.md §7.1).
 */
interface Supersede {
  newest: NewestWrites;
  /**
   * k asked of the shards without excluding anything (the coordinator drops superseded hits);
   * undefined = send the tail's ids as `exclude` from the start.
   */
  fetchK?: number;
}

/**
 * Above this share of the version's rows in the tail, shards are sent the tail's ids right away
 * (0.5): over-fetching would ask for more than 4k hits and still often come back short. Below it,
 * shards are asked for fetchK hits and nothing to exclude, which keeps a large tail's ids out of
 * every shard request (no id list to serialize, map to each shard's rows and mask: that cost
 * grows with the tail and dominated strong searches with a full tail).
 */
export const OVERFETCH_MAX_TAIL_SHARE = 0.5;

/**
 * fetchK = ⌈2k / (1 − share)⌉ for a tail holding `share` of the version's rows (an upper bound on the
 * superseded share of any hit list): twice k survive on average, so a list comes back short —
 * and is searched again with `exclude` — only when superseded rows crowd a query's neighbourhood
 * far beyond their share (for share 0.1, k 10: more than 13 of 23). Larger = fewer second requests
 * but a deeper search (the hnsw beam is at least fetchK).
 */
export function supersedeBy(newest: NewestWrites, k: number, shards: readonly ShardRef[]): Supersede {
  const rows = shards.reduce((s, r) => s + r.count, 0);
  const share = rows > 0 ? Math.min(1, newest.size / rows) : 1;
  if (share > OVERFETCH_MAX_TAIL_SHARE) return { newest };
  return { newest, fetchK: Math.ceil((2 * k) / (1 - share)) };
}

/**
 * Searches one set of shards for some queries: in process below the scatter threshold, else spread
 * over searcher slots by shard (all or nothing: one failed slot fails the search, no partial top-k
 * presented as complete). Returns one merged list per query, without superseded rows.
 *
 * With `supersede.fetchK`, each part (the in-process search, or one slot) is asked for fetchK hits
 * and its superseded hits are dropped here. A part's list is complete when at least k hits survive
 * (every better row was in it) or it came back with fewer than fetchK (it has no more rows); only
 * the parts and queries that are not are searched again, with the tail's ids excluded.
 */
async function searchShardSet(
  deps: SearchDeps,
  shards: ShardRef[],
  request: Omit<ShardSearchRequest, 'shards' | 'queries'> & { queries: Float32Array[] },
  supersede?: Supersede,
): Promise<Candidate[][]> {
  const queries = request.queries;
  const { k, metric } = request;
  const parts = partsOf(deps, shards);
  let ids: string[] | undefined;
  const exclude = (): string[] | undefined => (supersede ? (ids ??= [...supersede.newest.keys()]) : undefined);
  const fetchK = supersede?.fetchK;
  const perPart = await Promise.all(
    parts.map(async (part) => {
      const first = await searchPart(deps, part, {
        ...request,
        queries,
        ...(fetchK ? { k: fetchK } : { exclude: exclude() }),
      });
      if (!fetchK || !supersede) return first;
      const kept = first.map((list) => list.filter((c) => !isSuperseded(c, supersede.newest)));
      const short = queries.flatMap((_, q) => (kept[q].length < k && first[q].length >= fetchK ? [q] : []));
      if (short.length) {
        const again = await searchPart(deps, part, {
          ...request,
          queries: short.map((q) => queries[q]),
          exclude: exclude(),
        });
        short.forEach((q, i) => (kept[q] = again[i]));
      }
      return kept;
    }),
  );
  return queries.map((_, q) =>
    mergeTopK(
      perPart.map((lists) => lists[q]),
      k,
      metric,
      supersede?.newest,
    ),
  );
}

/** Where one part of a shard set is searched: in process, or on a searcher slot. */
interface Part {
  slot?: number;
  shards: ShardRef[];
}

/** The whole set in process below the scatter threshold, else one part per slot (by shard). */
function partsOf(deps: SearchDeps, shards: ShardRef[]): Part[] {
  const totalBytes = shards.reduce((s, r) => s + r.bytes, 0);
  if (!deps.scatter || deps.slots <= 1 || totalBytes < (deps.scatterMinBytes ?? DEFAULT_SCATTER_MIN_BYTES)) {
    return [{ shards }];
  }
  const groups = new Map<number, ShardRef[]>();
  for (const ref of shards) {
    const slot = slotOf(ref, deps.slots);
    groups.set(slot, [...(groups.get(slot) ?? []), ref]);
  }
  return [...groups].map(([slot, refs]) => ({ slot, shards: refs }));
}

async function searchPart(
  deps: SearchDeps,
  part: Part,
  request: Omit<ShardSearchRequest, 'shards' | 'queries'> & { queries: Float32Array[] },
): Promise<Candidate[][]> {
  const req = { ...request, shards: part.shards };
  if (part.slot === undefined || !deps.scatter) return (await searchShards(deps.cache, req)).results;
  // A slot's request crosses a Lambda invoke as JSON: plain arrays.
  return (await callSlot(deps.scatter, part.slot, { ...req, queries: req.queries.map((q) => Array.from(q)) })).results;
}
