import { randomUUID } from 'node:crypto';
import { MAX_SHARD_HEAP_BYTES, estimateHnswHeapBytes } from '../engine/hnsw.js';
import {
  IVF_POLICY,
  encodeCentroids,
  groupByPartition,
  partitionsFor,
  trainCentroids,
  withSplit,
  withoutPartition,
  type Centroids,
} from '../engine/ivf.js';
import { sampleRows } from '../random.js';
import {
  PLAN_POLICY,
  checkPlan,
  encodeRows,
  layoutRowsOf,
  startDeltaPlan,
  startLayoutPlan,
  type BuildStores,
  type ManifestInput,
  type PlanDeps,
  type PlanRow,
  type PartitionSplit,
  type PlanTaskDeps,
} from './plan.js';
import { NotFoundError } from '../errors.js';
import { logger } from '../log.js';
import { sha256 } from '../search/shard-cache.js';
import {
  MAIN_LINE,
  type CollectionMeta,
  type Manifest,
  type PartitionTable,
  type RecordStore,
  type ShardRef,
  type StoredRecord,
} from '../storage/types.js';
import {
  PLANS_PREFIX,
  centroidsKey,
  collectionKey,
  deletesKey,
  indexObjectPrefixes,
  planObjectPrefix,
  shardKey,
} from '../storage/keys.js';

/**
 * Builder policy. Every knob trades index freshness and shard count (search fan-out)
 * against build work:
 * - `DELTA_MIN_ROWS` (default 1000): a scheduled/woken build makes a delta shard once the
 *   unindexed tail has this many writes... Lower = fresher shards, more small shards.
 * - `DELTA_MAX_AGE_MS` (default 60 s): ...or once the last version is this old. Strong
 *   searches see the tail anyway; this bounds how long eventual searches lag.
 * - `MAX_SHARDS` (default 12): above this many shards the smallest are merged (compaction),
 *   down to `COMPACT_TO` (default 6). More shards = more parallel fan-out, more per-query overhead.
 * - `REWRITE_DELETED_FRACTION` (default 0.3): a shard with more deleted rows than this is rewritten.
 * - `SHARD_HEAP_SHARE` (default 0.375): a shard's hnsw index may use at most this share of the
 *   per-shard WASM heap limit (1 GiB), which caps rows per shard (e.g. ~122k rows at 768-d, m=16).
 *   Chosen so a builder's and a searcher's peak memory stay where they were with hnswlib-wasm at
 *   80k rows: Shoal's own WASM build keeps no IDBFS/MEMFS copies of the index, so 1.5× the rows
 *   fit in the same memory.
 * - `KEEP_VERSIONS` (default 10) and `GC_GRACE_MS` (default 1 h): objects referenced by the
 *   newest KEEP_VERSIONS manifests are kept (rollback targets); others are deleted once older
 *   than the grace period, so in-flight searches of an older version never lose a shard.
 *   The head of every line (serving and candidates) is kept too, however old.
 * - `MAX_CANDIDATES` (default 2): candidate index lines per collection. Every builder run
 *   repeats its work for each line, so n candidates cost up to (1 + n)× the build work and storage.
 */
export const BUILD_POLICY = {
  DELTA_MIN_ROWS: 1000,
  DELTA_MAX_AGE_MS: 60_000,
  MAX_SHARDS: 12,
  COMPACT_TO: 6,
  REWRITE_DELETED_FRACTION: 0.3,
  SHARD_HEAP_SHARE: 0.375,
  KEEP_VERSIONS: 10,
  GC_GRACE_MS: 60 * 60_000,
  MAX_CANDIDATES: 2,
};

export interface BuilderDeps extends BuildStores {
  /** Deployment overrides of BUILD_POLICY (from configuration). */
  policy?: Partial<typeof BUILD_POLICY>;
  /** Overrides of IVF_POLICY (partition sizes, split/merge thresholds): tests use small ones. */
  ivfPolicy?: Partial<typeof IVF_POLICY>;
  /** Build plans fanned out over builder workers (docs/architecture.md §6.5); absent = every build in process. */
  plans?: PlanDeps;
  /** Index versions of a collection that aliases pin: the collector keeps their objects, however old. */
  pinnedVersions?: (collection: string) => Promise<number[]>;
}

export interface BuildResult {
  built: boolean;
  version: number;
  kind?: Manifest['stats']['kind'];
  shards: number;
  watermark: number;
  /**
   * Why nothing was built, when built = false ('planned': a build plan's workers are building it; 'busy':
   * another builder invocation holds the line's lease and is building it).
   */
  reason?: 'up-to-date' | 'waiting-for-more' | 'lost-race' | 'planned' | 'busy';
  /** The index line (set on candidate results). */
  line?: string;
}

/** A row being laid out: the same shape build-plan tasks move through their chunks. */
type Row = PlanRow;

function maxRowsPerShard(meta: CollectionMeta): number {
  if (meta.index.engine !== 'hnsw') return 250_000;
  const perRow = estimateHnswHeapBytes(1, meta.dimension, meta.index.params.m ?? 16);
  return Math.max(1000, Math.floor((MAX_SHARD_HEAP_BYTES * BUILD_POLICY.SHARD_HEAP_SHARE) / perRow));
}

function setBit(bits: Uint8Array, row: number): void {
  bits[row >>> 3] |= 1 << (row & 7);
}

function isSet(bits: Uint8Array | undefined, row: number): boolean {
  return bits !== undefined && (bits[row >>> 3] & (1 << (row & 7))) !== 0;
}

async function collectTail(records: RecordStore, ck: string, after: number, upTo: number): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for await (const batch of records.tail(ck, after, upTo)) out.push(...batch);
  return out;
}

async function writeShards(
  deps: BuilderDeps,
  meta: CollectionMeta,
  rows: Row[],
  kind: string,
  partition?: number,
): Promise<ShardRef[]> {
  const refs: ShardRef[] = [];
  const perShard = maxRowsPerShard(meta);
  const ck = collectionKey(meta);
  for (let start = 0; start < rows.length; start += perShard) {
    const part = rows.slice(start, start + perShard);
    const bytes = await encodeRows(meta, part, {
      engine: meta.index.engine,
      params: meta.index.params,
      kind,
      createdAt: new Date(deps.now?.() ?? Date.now()).toISOString(),
    });
    const hash = sha256(bytes);
    const key = shardKey(ck, hash.slice(0, 32));
    await deps.objects.putImmutable(key, bytes);
    refs.push({
      id: hash.slice(0, 32),
      key,
      bytes: bytes.byteLength,
      count: part.length,
      live: part.length,
      engine: meta.index.engine,
      sha256: hash,
      minSeq: part.reduce((m, r) => Math.min(m, r.seq), Infinity),
      maxSeq: part.reduce((m, r) => Math.max(m, r.seq), 0),
      ...(partition !== undefined ? { partition } : {}),
    });
  }
  return refs;
}

/** Live rows of shards, read back from the shards themselves (vectors, seqs, filterable metadata). */
async function liveRows(deps: BuilderDeps, refs: ShardRef[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const ref of refs) {
    const [shard, bits] = await Promise.all([deps.cache.shard(ref), deps.cache.bitmap(ref)]);
    for (let row = 0; row < shard.count; row++) {
      if (isSet(bits, row)) continue;
      rows.push({
        id: shard.ids[row],
        seq: shard.seqs[row],
        vector: shard.vectorOf(row).slice(),
        metadata: shard.metadataOf(row),
      });
    }
  }
  return rows;
}

/**
 * A partitioned version whose collection has grown RELAYOUT_GROWTH× since its layout is laid out
 * again: geometric growth keeps the total re-layout work linear in the rows, and splits handle the
 * local growth in between.
 */
function outgrown(head: Manifest, rows: number, deps: BuilderDeps): boolean {
  const table = head.partitions;
  // Splits add partitions without adding a layout: measured against the rows laid out, not fairShare × count
  // (which grows with every split, so a collection that grew by splits alone was never laid out again).
  return !!table && rows >= ivfPolicy(deps).RELAYOUT_GROWTH * layoutRowsOf(table);
}

/** A version's shard set, and its centroid table when partitioned. */
interface Layout {
  refs: ShardRef[];
  partitions?: PartitionTable;
}

function ivfPolicy(deps: BuilderDeps): typeof IVF_POLICY {
  return { ...IVF_POLICY, ...deps.ivfPolicy };
}

async function writeCentroids(
  deps: BuilderDeps,
  meta: CollectionMeta,
  c: Centroids,
  fairShare: number,
  layoutRows: number,
): Promise<PartitionTable> {
  const bytes = encodeCentroids(c);
  const hash = sha256(bytes);
  const key = centroidsKey(collectionKey(meta), hash.slice(0, 32));
  await deps.objects.putImmutable(key, bytes);
  return { count: c.count, dim: c.dim, key, sha256: hash, fairShare, layoutRows };
}

/** Rows packed row-major, for k-means. */
function packVectors(rows: Row[], dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(r.vector, i * dim));
  return out;
}

/** One partition's shards per group, partitions in order (deterministic manifests). */
async function writePartitions(
  deps: BuilderDeps,
  meta: CollectionMeta,
  groups: Map<number, Row[]>,
  kind: string,
): Promise<ShardRef[]> {
  const refs: ShardRef[] = [];
  for (const p of [...groups.keys()].sort((a, b) => a - b)) {
    refs.push(...(await writeShards(deps, meta, groups.get(p)!, kind, p)));
  }
  return refs;
}

/**
 * Lays out a whole set of rows: unpartitioned shards, or — when the line asks for partitions
 * (`index.partitions`) or the rows reach IVF_POLICY.MIN_ROWS — k-means centroids trained on a
 * seeded sample and one or more shards per partition. A forced count waits until there are
 * LAYOUT_MIN_ROWS_PER_PARTITION rows per partition (centroids trained on a handful of rows each
 * would route poorly for good).
 */
async function layoutRows(
  deps: BuilderDeps,
  meta: CollectionMeta,
  rows: Row[],
  kind: string,
  seed: number,
): Promise<Layout> {
  const policy = ivfPolicy(deps);
  const want = partitionsFor(rows.length, meta.index.params.partitions, policy);
  if (want <= 1 || rows.length < want * policy.LAYOUT_MIN_ROWS_PER_PARTITION) {
    return { refs: await writeShards(deps, meta, rows, kind) };
  }
  const dim = meta.dimension;
  const picks = sampleRows(rows.length, Math.min(rows.length, want * policy.SAMPLE_PER_PARTITION), seed);
  const sample = new Float32Array(picks.length * dim);
  picks.forEach((r, i) => sample.set(rows[r].vector, i * dim));
  const centroids = trainCentroids(sample, picks.length, dim, want, meta.metric, seed, policy.ITERATIONS);
  const partitions = await writeCentroids(deps, meta, centroids, Math.ceil(rows.length / want), rows.length);
  return { refs: await writePartitions(deps, meta, groupByPartition(centroids, meta.metric, rows), kind), partitions };
}

/**
 * Sets the deletion bits of the rows of `ids` that `ref` still holds live: a new content-addressed bitmap
 * object (`deletesKey`), or the ref unchanged. The builder's step 1 and a delta plan's build tasks both
 * call it, so an id deleted in process and one deleted by a plan leave byte-identical bitmaps.
 */
async function markDeleted(
  deps: BuilderDeps,
  meta: CollectionMeta,
  ref: ShardRef,
  ids: ReadonlySet<string>,
): Promise<{ ref: ShardRef; removed: number }> {
  const [shard, oldBits] = await Promise.all([deps.cache.shard(ref), deps.cache.bitmap(ref)]);
  let bits: Uint8Array | undefined;
  let removed = 0;
  for (const id of ids) {
    const row = shard.rowOf(id);
    if (row === undefined || isSet(oldBits, row)) continue;
    bits ??= oldBits ? oldBits.slice() : new Uint8Array(Math.ceil(shard.count / 8));
    setBit(bits, row);
    removed++;
  }
  if (!bits) return { ref, removed: 0 };
  const hash = sha256(bits);
  const key = deletesKey(collectionKey(meta), ref.id, hash.slice(0, 32));
  await deps.objects.putImmutable(key, bits);
  return {
    ref: { ...ref, live: ref.live - removed, deletes: { key, count: ref.count - ref.live + removed, sha256: hash } },
    removed,
  };
}

/**
 * Whether a partition that a delta just grew by `added` rows to `live` live rows splits: past SPLIT_FACTOR ×
 * max(fair share, SPLIT_MIN_ROWS). Untouched partitions never split (they were looked at when they grew).
 */
function splitDue(deps: BuilderDeps, live: number, added: number, fairShare: number): boolean {
  const policy = ivfPolicy(deps);
  return added > 0 && live > policy.SPLIT_FACTOR * Math.max(Math.max(fairShare, 1), policy.SPLIT_MIN_ROWS);
}

/**
 * Splits one partition's rows in two by seeded 2-means: the halves' shards (the first keeps partition
 * `first`, the second is labelled `second`) and both centroids. Undefined when the rows do not split
 * (identical rows: nothing to split along).
 */
async function splitPartition(
  deps: BuilderDeps,
  meta: CollectionMeta,
  rows: Row[],
  at: { first: number; second: number; seed: number },
): Promise<PartitionSplit | undefined> {
  const dim = meta.dimension;
  const two = trainCentroids(packVectors(rows, dim), rows.length, dim, 2, meta.metric, at.seed);
  const halves = groupByPartition(two, meta.metric, rows);
  if (halves.size < 2) return undefined;
  return {
    first: await writeShards(deps, meta, halves.get(0)!, 'split', at.first),
    second: await writeShards(deps, meta, halves.get(1)!, 'split', at.second),
    centroids: [two.data.slice(0, dim), two.data.slice(dim, 2 * dim)],
  };
}

/**
 * Per-partition compaction, tiered as in an LSM tree: past MAX_SHARDS_PER_PARTITION shards (or with a shard
 * mostly deleted), a partition's smaller shards merge among themselves while together they hold fewer live
 * rows than its largest shard; the whole partition is rewritten only once they outweigh it, or when the
 * largest is the sparse one. So a row is rebuilt O(log(rows)) times, where rewriting the partition every few
 * deltas would rebuild the whole collection every few deltas (each delta touches nearly every partition).
 * Returns the shards to merge into one set, or undefined.
 */
function compactionPick(deps: BuilderDeps, shards: ShardRef[]): ShardRef[] | undefined {
  const rewriteFraction = { ...BUILD_POLICY, ...deps.policy }.REWRITE_DELETED_FRACTION;
  const isSparse = (r: ShardRef) => r.count > 0 && 1 - r.live / r.count > rewriteFraction;
  if (shards.length <= ivfPolicy(deps).MAX_SHARDS_PER_PARTITION && !shards.some(isSparse)) return undefined;
  const [largest, ...rest] = [...shards].sort((a, b) => b.count - a.count);
  const restLive = rest.reduce((n, r) => n + r.live, 0);
  const merge = !isSparse(largest) && restLive < largest.live ? rest : shards;
  if (merge.length === 1 && !isSparse(merge[0])) return undefined;
  return merge;
}

/**
 * A delta on a partitioned version: new rows go to their nearest partition as delta shards; then
 * only the partitions this delta touched are looked at — one that grew past SPLIT_FACTOR × its
 * fair share splits in two (2-means over its own rows), one that deletes left under MERGE_FRACTION
 * dissolves into its neighbours, one with too many or too sparse shards is compacted. No other
 * partition's rows are read or moved: there is no global rebuild in the steady state. A delta plan's
 * build tasks (plan.ts) take the same steps per partition through splitDue / splitPartition /
 * compactionPick, all but the merges.
 */
async function applyPartitioned(
  deps: BuilderDeps,
  meta: CollectionMeta,
  table: PartitionTable,
  refs: ShardRef[],
  upserts: Row[],
  shrunk: Set<number>,
  seed: number,
): Promise<Layout & { reshaped: boolean; compacted: boolean }> {
  const policy = ivfPolicy(deps);
  let centroids = await deps.cache.centroids(table);
  const groups = groupByPartition(centroids, meta.metric, upserts);
  let out = [...refs, ...(await writePartitions(deps, meta, groups, 'delta'))];
  let reshaped = false;
  let compacted = false;
  const fair = Math.max(table.fairShare, 1);
  const shardsOf = (p: number) => out.filter((r) => r.partition === p);
  const liveOf = (p: number) => shardsOf(p).reduce((n, r) => n + r.live, 0);

  // Splits: only partitions that just grew.
  for (const p of [...groups.keys()].sort((a, b) => a - b)) {
    if (!splitDue(deps, liveOf(p), groups.get(p)!.length, table.fairShare)) continue;
    const old = shardsOf(p);
    const next = centroids.count;
    const split = await splitPartition(deps, meta, await liveRows(deps, old), {
      first: p,
      second: next,
      seed: seed + p,
    });
    if (!split) continue;
    centroids = withSplit(centroids, p, ...split.centroids);
    out = [...out.filter((r) => !old.includes(r)), ...split.first, ...split.second];
    reshaped = true;
  }

  // Merges: partitions that deletes left sparse, highest index first so lower indices stay valid.
  for (const p of [...shrunk].sort((a, b) => b - a)) {
    if (centroids.count <= 1 || p >= centroids.count || liveOf(p) >= policy.MERGE_FRACTION * fair) continue;
    const old = shardsOf(p);
    const rows = await liveRows(deps, old);
    centroids = withoutPartition(centroids, p);
    out = out
      .filter((r) => !old.includes(r))
      .map((r) => (r.partition !== undefined && r.partition > p ? { ...r, partition: r.partition - 1 } : r));
    out.push(...(await writePartitions(deps, meta, groupByPartition(centroids, meta.metric, rows), 'merge')));
    reshaped = true;
  }

  for (let p = 0; p < centroids.count; p++) {
    const merge = compactionPick(deps, shardsOf(p));
    if (!merge) continue;
    const rows = await liveRows(deps, merge);
    out = [...out.filter((r) => !merge.includes(r)), ...(await writeShards(deps, meta, rows, 'compaction', p))];
    compacted = true;
  }
  const partitions = reshaped
    ? await writeCentroids(deps, meta, centroids, table.fairShare, layoutRowsOf(table))
    : table;
  return { refs: out, partitions, reshaped, compacted };
}

/** One index line to bring up to date: the serving line or a candidate (docs/architecture.md §6.3). */
interface LineSpec {
  line: string;
  serving: boolean;
  /** The collection meta with this line's engine + params as `index` (what writeShards builds with). */
  meta: CollectionMeta;
}

/** The serving line first (candidates may be rebuilt from it), then candidates by name. */
export function linesOf(meta: CollectionMeta): LineSpec[] {
  const serving = meta.index.line ?? MAIN_LINE;
  const out: LineSpec[] = [{ line: serving, serving: true, meta }];
  for (const name of Object.keys(meta.candidates ?? {}).sort()) {
    const c = meta.candidates![name];
    out.push({
      line: name,
      serving: false,
      meta: { ...meta, index: { engine: c.engine, params: c.params, line: name } },
    });
  }
  return out;
}

interface LineOutcome extends BuildResult {
  line: string;
  /** The line's head after this run (undefined when the line has never been built). */
  head?: Manifest;
  /** Tombstones this run read from the tail; purged once every line's head covers them. */
  tombstones: Array<{ id: string; seq: number }>;
}

/**
 * Brings every index line of the collection up to its stable seq, the serving line first.
 * Each line applies the unindexed tail as deletion bitmaps on its shards plus a delta shard,
 * compacts when there are too many or too sparse shards, and commits its next manifest with
 * one conditional write. A candidate line's first version is rebuilt (with its own params)
 * from the serving head's live rows plus the tail after it, so it holds exactly the same
 * rows. Everything uploaded is immutable and content addressed, so a crash at any step or a
 * lost race leaves only unreferenced objects (collected by `collectGarbage`) and no change
 * to what searches see.
 *
 * Tombstones are purged only up to the lowest watermark of all lines: a candidate that lags
 * still needs them to hide rows its shards hold, or promoting it would resurrect deletes.
 */
export async function buildIndex(
  deps: BuilderDeps,
  name: string,
  options: { force?: boolean } = {},
): Promise<BuildResult & { candidates?: BuildResult[] }> {
  const started = performance.now();
  const meta = await deps.catalog.getCollection(name);
  // Write leases whose records landed (or that expired) move to the log first: until then they hold the
  // stable seq back, and a writer that crashed or froze after its acknowledgment never settles its own.
  await deps.catalog.settleWrites(name, deps.records.writeLog(collectionKey(meta)));
  const stable = await deps.catalog.stableSeq(name);
  const outcomes: LineOutcome[] = [];
  let servingHead: Manifest | undefined;
  for (const spec of linesOf(meta)) {
    const outcome = await buildLine(deps, spec, stable, servingHead, options);
    if (spec.serving) servingHead = outcome.head;
    outcomes.push(outcome);
  }
  // Readers find each line's head through the meta item's pointer (§7.6): move it to what is now
  // committed — the versions just built, or a head an earlier run committed and crashed before pointing at.
  // Purging and trimming below a watermark readers may not yet be pointed at would hide writes from
  // them, so both wait for the pointers.
  let pointed = true;
  for (const o of outcomes) {
    if (!o.head || meta.heads?.[o.line] === o.head.version) continue;
    await deps.catalog.setHead(name, meta.generation, o.line, o.head.version).catch((err: unknown) => {
      pointed = false;
      logger.warn('moving a head pointer failed; retried by the next build', { collection: name, error: err as Error });
    });
  }
  // A line without a head yet will be rebuilt from the serving head, so only built lines bound it.
  // (Tombstones a since-deleted lagging candidate held back stay as inert items: no tail reads them.)
  const heads = outcomes.flatMap((o) => (o.head ? [o.head.watermark] : []));
  const bound = pointed && heads.length ? Math.min(...heads) : 0;
  const seen = new Map<string, { id: string; seq: number }>();
  for (const o of outcomes) for (const t of o.tombstones) if (t.seq <= bound) seen.set(`${t.id}\u0000${t.seq}`, t);
  // Tombstones now covered by every line's watermark are no longer needed as rows (bitmaps hold them).
  if (seen.size) {
    await deps.records
      .purge(collectionKey(meta), [...seen.values()])
      .catch((err: unknown) =>
        logger.warn('purging tombstones failed (harmless)', { collection: name, error: err as Error }),
      );
  }
  // Every tail read starts at some line's watermark, so the write log below the lowest one is
  // no longer needed (trimmed after a grace period for searches on older manifests).
  if (bound > 0) {
    await deps.records
      .trimLog(collectionKey(meta), bound)
      .catch((err: unknown) =>
        logger.warn('trimming the write log failed (harmless)', { collection: name, error: err as Error }),
      );
  }
  logBuild(name, outcomes, performance.now() - started);
  const [serving, ...candidates] = outcomes;
  const strip = ({ line: _line, head: _head, tombstones: _t, ...r }: LineOutcome): BuildResult => r;
  return {
    ...strip(serving),
    ...(candidates.length ? { candidates: candidates.map((c) => ({ ...strip(c), line: c.line })) } : {}),
  };
}

/** One info line per run that built anything: what an operator watching the builder wants to see. */
function logBuild(collection: string, outcomes: LineOutcome[], ms: number): void {
  const built = outcomes.filter((o) => o.built && o.head);
  if (!built.length) return;
  const [first, ...more] = built;
  logger.info('index built', {
    collection,
    ...(first.line !== MAIN_LINE ? { line: first.line } : {}),
    version: `${first.head!.parent}→${first.version}`,
    rows: first.head!.stats.liveRows,
    ...(more.length ? { alsoBuilt: more.map((o) => `${o.line} ${o.head!.parent}→${o.version}`).join(', ') } : {}),
    ms: Math.round(ms),
  });
}

/**
 * Builds one line under its build lease when plans are on (a plan, or an in-process build, owns the line
 * while it works; a second invocation finds it busy instead of building the same rows to lose at commit).
 * The lease is taken before the heads are read, so the holder decides on the head no one else is moving.
 */
async function buildLine(
  deps: BuilderDeps,
  spec: LineSpec,
  stable: number,
  servingHead: Manifest | undefined,
  options: { force?: boolean },
): Promise<LineOutcome> {
  if (!deps.plans || !spec.serving) return buildLineHeld(deps, spec, stable, servingHead, options);
  const { meta, line } = spec;
  const owner = randomUUID();
  const leaseMs = { ...PLAN_POLICY, ...deps.plans.policy }.LINE_LEASE_MS;
  if (!(await deps.plans.store.claimLine(meta.name, line, owner, deps.now?.() ?? Date.now(), leaseMs))) {
    const head = await deps.catalog.latestManifest(meta.name, line);
    const current = head && head.generation === meta.generation ? head : undefined;
    return {
      line,
      head: current,
      tombstones: [],
      built: false,
      reason: 'busy',
      version: current?.version ?? 0,
      shards: current?.shards.length ?? 0,
      watermark: current?.watermark ?? 0,
    };
  }
  try {
    return await buildLineHeld(deps, spec, stable, servingHead, options);
  } finally {
    await deps.plans.store.releaseLine(meta.name, line, owner).catch((err: unknown) =>
      logger.warn('releasing a build lease failed; it expires by itself', {
        collection: meta.name,
        error: err as Error,
      }),
    );
  }
}

async function buildLineHeld(
  deps: BuilderDeps,
  spec: LineSpec,
  stable: number,
  servingHead: Manifest | undefined,
  options: { force?: boolean },
): Promise<LineOutcome> {
  const { meta, line } = spec;
  const name = meta.name;
  const now = deps.now?.() ?? Date.now();
  const policy = { ...BUILD_POLICY, ...deps.policy };
  const ck = collectionKey(meta);
  // The overall latest first, then the line's head: our commit takes latest + 1, and any commit
  // after this read takes that number first, so a successful commit proves the head did not move.
  const latest = await deps.catalog.latestManifest(name);
  const head = latest && (latest.line ?? MAIN_LINE) === line ? latest : await deps.catalog.latestManifest(name, line);
  // A slow builder of a deleted collection may have committed into the re-created one's
  // manifest range: its version number is taken, but its content is not ours.
  const current = head && head.generation === meta.generation ? head : undefined;
  const version = (latest?.version ?? 0) + 1;
  const none = { line, head: current, tombstones: [] };

  if (!current && !spec.serving) {
    // A new candidate: the serving head's live rows plus everything written after it.
    const base = servingHead && servingHead.generation === meta.generation ? servingHead : undefined;
    const from = base?.watermark ?? 0;
    const tail = stable > from ? await collectTail(deps.records, ck, from, stable) : [];
    const started = performance.now();
    const rows = new Map<string, Row>();
    for (const r of base ? await liveRows(deps, base.shards) : []) rows.set(r.id, r);
    for (const r of tail) {
      if (r.deleted || !r.vector) rows.delete(r.id);
      else rows.set(r.id, { id: r.id, seq: r.seq, vector: r.vector, metadata: r.metadata });
    }
    const { refs, partitions } = await layoutRows(
      deps,
      meta,
      [...rows.values()].sort((a, b) => a.seq - b.seq),
      'candidate',
      meta.generation * 7919 + version,
    );
    const manifest = newManifest(deps, meta, {
      version,
      line,
      parent: base?.version ?? 0,
      watermark: Math.max(stable, from),
      refs,
      partitions,
      now,
      started,
      kind: 'candidate',
    });
    if (!(await deps.catalog.commitManifest(manifest)))
      return { ...none, built: false, reason: 'lost-race', version, shards: 0, watermark: 0 };
    return {
      line,
      head: manifest,
      tombstones: tombstonesOf(tail),
      built: true,
      version,
      kind: 'candidate',
      shards: refs.length,
      watermark: manifest.watermark,
    };
  }

  const from = current?.watermark ?? 0;
  const base = { version: current?.version ?? 0, shards: current?.shards.length ?? 0, watermark: from };
  if (deps.plans && spec.serving) {
    // A plan in flight owns the line until it commits; the tick only watches it for stalls.
    const plan = await deps.plans.store.get(name, line);
    if (plan) {
      await checkPlan(planTaskDeps(deps), plan);
      return { ...none, built: false, reason: 'planned', ...base };
    }
    // A layout too large for this invocation goes to the builder workers (read nothing here).
    const estimate = (current?.stats.liveRows ?? 0) + Math.max(0, stable - from);
    const want = partitionsFor(estimate, meta.index.params.partitions, ivfPolicy(deps));
    const planPolicy = { ...PLAN_POLICY, ...deps.plans.policy };
    // An outgrown head is laid out again (in process when small), never patched by a delta plan.
    const relayout = !current?.partitions || outgrown(current, estimate, deps);
    if (relayout && want > 1 && estimate >= planPolicy.MIN_ROWS) {
      const started = await startLayoutPlan(planTaskDeps(deps), meta, {
        line,
        head: current,
        from,
        upTo: stable,
        partitions: want,
        seed: meta.generation * 7919 + version,
        kind: current ? 'compaction' : 'initial',
      });
      if (started) return { ...none, built: false, reason: 'planned', ...base };
    } else if (
      current?.partitions &&
      !relayout &&
      stable - from >= planPolicy.DELTA_MIN_ROWS &&
      // Whether a delta is due at all is the builder's policy, planned or not.
      (options.force || deltaDue(policy, stable - from, current.createdAt, now))
    ) {
      // A large delta on a partitioned head: one build task per partition on the workers (merges of
      // sparse partitions are left to the next in-process delta).
      const started = await startDeltaPlan(planTaskDeps(deps), meta, {
        line,
        head: current,
        from,
        upTo: stable,
        seed: meta.generation * 7919 + version,
      });
      if (started) return { ...none, built: false, reason: 'planned', ...base };
    }
  }
  const tail = stable > from ? await collectTail(deps.records, ck, from, stable) : [];
  let refs = current?.shards ?? [];
  // A partitioned version compacts per partition (applyPartitioned), never across partitions.
  const needsCompaction =
    (!current?.partitions && refs.length > policy.MAX_SHARDS) ||
    refs.some((r) => r.count > 0 && 1 - r.live / r.count > policy.REWRITE_DELETED_FRACTION);
  if (tail.length === 0 && !needsCompaction) return { ...none, built: false, reason: 'up-to-date', ...base };
  // Pending writes are at most as old as the last version (or the collection, before one).
  if (!options.force && !needsCompaction && !deltaDue(policy, tail.length, current?.createdAt ?? meta.createdAt, now)) {
    return { ...none, built: false, reason: 'waiting-for-more', ...base };
  }
  const started = performance.now();

  // 1. Rows superseded or deleted by the tail disappear from older shards via new bitmaps.
  const tailIds = new Set(tail.map((r) => r.id));
  const updated: ShardRef[] = [];
  const shrunk = new Set<number>();
  for (const ref of refs) {
    const marked = await markDeleted(deps, meta, ref, tailIds);
    if (marked.removed && ref.partition !== undefined) shrunk.add(ref.partition);
    updated.push(marked.ref);
  }
  refs = updated.filter((r) => r.live > 0);

  // 2. The tail's live rows become a delta shard.
  const upserts: Row[] = tail
    .filter((r) => !r.deleted && r.vector)
    .map((r) => ({ id: r.id, seq: r.seq, vector: r.vector!, metadata: r.metadata }));
  let kind: Manifest['stats']['kind'] = current ? (upserts.length ? 'delta' : 'deletes') : 'initial';
  const seed = meta.generation * 7919 + version;
  let partitions = current?.partitions;
  const want = partitionsFor(
    refs.reduce((n, r) => n + r.live, 0) + upserts.length,
    meta.index.params.partitions,
    ivfPolicy(deps),
  );
  if (partitions && outgrown(current!, refs.reduce((n, r) => n + r.live, 0) + upserts.length, deps)) {
    // Grown RELAYOUT_GROWTH× since its layout: centroids trained then no longer describe the data.
    const layout = await layoutRows(deps, meta, [...(await liveRows(deps, refs)), ...upserts], 'compaction', seed);
    refs = layout.refs;
    partitions = layout.partitions;
    kind = 'compaction';
  } else if (partitions) {
    // 2–3. Partitioned: deltas to their partitions, then split / merge / compact the partitions touched.
    const applied = await applyPartitioned(deps, meta, partitions, refs, upserts, shrunk, seed);
    refs = applied.refs;
    partitions = applied.partitions;
    if (applied.reshaped || applied.compacted) kind = 'compaction';
  } else if (
    !current ||
    (want > 1 &&
      refs.reduce((n, r) => n + r.live, 0) + upserts.length >= want * ivfPolicy(deps).LAYOUT_MIN_ROWS_PER_PARTITION)
  ) {
    // The first version, or an unpartitioned one that reached the partitioning threshold: lay out
    // every live row (later deltas stay in their partitions).
    const rows = current ? [...(await liveRows(deps, refs)), ...upserts] : upserts;
    const layout = await layoutRows(deps, meta, rows, current ? 'compaction' : 'initial', seed);
    refs = layout.refs;
    partitions = layout.partitions;
    if (current) kind = 'compaction';
  } else {
    refs = [...refs, ...(await writeShards(deps, meta, upserts, kind))];

    // 3. Compaction: rewrite sparse shards and merge the smallest while there are too many.
    const sparse = refs.filter((r) => r.count > 0 && 1 - r.live / r.count > policy.REWRITE_DELETED_FRACTION);
    let merge = [...sparse];
    if (refs.length > policy.MAX_SHARDS) {
      const bySize = refs.filter((r) => !sparse.includes(r)).sort((a, b) => a.live - b.live);
      const excess = refs.length - policy.COMPACT_TO + 1;
      merge = [...merge, ...bySize.slice(0, Math.max(0, excess - sparse.length))];
    }
    if (merge.length) {
      const rows = await liveRows(deps, merge);
      const merged = await writeShards(deps, meta, rows, 'compaction');
      refs = [...refs.filter((r) => !merge.includes(r)), ...merged];
      kind = 'compaction';
    }
  }

  const manifest = newManifest(deps, meta, {
    version,
    line,
    parent: current?.version ?? 0,
    watermark: Math.max(stable, from),
    refs,
    partitions,
    now,
    started,
    kind,
  });
  if (!(await deps.catalog.commitManifest(manifest))) {
    // Another builder committed this version first; our uploads are garbage for the collector.
    const winner = await deps.catalog.latestManifest(name, line);
    return {
      ...none,
      head: winner && winner.generation === meta.generation ? winner : current,
      built: false,
      reason: 'lost-race',
      version: winner?.version ?? version,
      shards: winner?.shards.length ?? 0,
      watermark: winner?.watermark ?? from,
    };
  }
  return {
    line,
    head: manifest,
    tombstones: tombstonesOf(tail),
    built: true,
    version,
    kind,
    shards: refs.length,
    watermark: manifest.watermark,
  };
}

/**
 * Whether an unforced delta of `pending` rows is worth building now (BUILD_POLICY): enough rows, or the head
 * (the collection, before one) is older than DELTA_MAX_AGE_MS, the staleness bound of eventual reads.
 */
function deltaDue(policy: typeof BUILD_POLICY, pending: number, headCreatedAt: string, now: number): boolean {
  return pending >= policy.DELTA_MIN_ROWS || now - Date.parse(headCreatedAt) >= policy.DELTA_MAX_AGE_MS;
}

/** The builder's own steps, as build-plan tasks use them (plan.ts does not import this module). */
export function planTaskDeps(deps: BuilderDeps): PlanTaskDeps {
  return {
    ...deps,
    writeShards: (meta, rows, kind, partition) => writeShards(deps, meta, rows, kind, partition),
    writeCentroids: (meta, c, fairShare, layoutRows) => writeCentroids(deps, meta, c, fairShare, layoutRows),
    newManifest: (meta, m) => newManifest(deps, meta, m),
    markDeleted: (meta, ref, ids) => markDeleted(deps, meta, ref, ids),
    liveRows: (refs) => liveRows(deps, refs),
    splitDue: (live, added, fairShare) => splitDue(deps, live, added, fairShare),
    splitPartition: (meta, rows, at) => splitPartition(deps, meta, rows, at),
    compactionPick: (shards) => compactionPick(deps, shards),
  };
}

function tombstonesOf(tail: StoredRecord[]): Array<{ id: string; seq: number }> {
  return tail.filter((r) => r.deleted).map((r) => ({ id: r.id, seq: r.seq }));
}

function newManifest(deps: BuilderDeps, meta: CollectionMeta, m: ManifestInput): Manifest {
  return {
    collection: meta.name,
    generation: meta.generation,
    version: m.version,
    // Manifests of the main line carry no `line`, like those written before lines existed.
    ...(m.line !== MAIN_LINE ? { line: m.line } : {}),
    parent: m.parent,
    watermark: m.watermark,
    engine: meta.index.engine,
    params: meta.index.params,
    shards: m.refs,
    ...(m.partitions ? { partitions: m.partitions } : {}),
    createdAt: new Date(m.now).toISOString(),
    codeVersion: deps.codeVersion,
    ...(meta.model ? { model: { ...meta.model } } : {}),
    stats: {
      rows: m.refs.reduce((s, r) => s + r.count, 0),
      liveRows: m.refs.reduce((s, r) => s + r.live, 0),
      bytes: m.refs.reduce((s, r) => s + r.bytes, 0),
      buildMs: Math.round(performance.now() - m.started),
      kind: m.kind,
    },
  };
}

/**
 * Deletes shard and bitmap objects of a collection that no recent manifest references,
 * once they are older than the grace period. Returns the keys deleted.
 */
export async function collectGarbage(deps: BuilderDeps, name: string): Promise<string[]> {
  const now = deps.now?.() ?? Date.now();
  const meta = await deps.catalog.getCollection(name);
  const ck = collectionKey(meta);
  const manifests = await deps.catalog.listManifests(name, BUILD_POLICY.KEEP_VERSIONS);
  // Every line's head stays servable (a lagging candidate's head may be older than the newest few).
  for (const spec of linesOf(meta)) {
    const head = await deps.catalog.latestManifest(name, spec.line);
    if (head && head.generation === meta.generation) manifests.push(head);
  }
  // Versions pinned by aliases stay servable, whatever their age.
  const recent = new Set(manifests.map((m) => m.version));
  for (const v of (await deps.pinnedVersions?.(name)) ?? []) {
    if (v > 0 && !recent.has(v)) {
      const pinned = await deps.catalog.getManifest(name, v).catch((err: unknown) => {
        // Only a manifest that is really gone may be skipped; any other failure stops the collection.
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      if (pinned && pinned.generation === meta.generation) manifests.push(pinned);
    }
  }
  const keep = new Set<string>();
  for (const m of manifests) {
    for (const s of m.shards) {
      keep.add(s.key);
      if (s.deletes) keep.add(s.deletes.key);
    }
    if (m.partitions) keep.add(m.partitions.key);
  }
  const doomed: string[] = [];
  // Objects of build plans that are no longer in flight (a task that outlived its plan wrote them).
  const live = new Set<string>();
  if (deps.plans) {
    for (const spec of linesOf(meta)) {
      const plan = await deps.plans.store.get(name, spec.line);
      if (plan) live.add(planObjectPrefix(ck, plan.planId));
    }
  }
  for await (const page of deps.objects.list(`${PLANS_PREFIX}${ck}/`)) {
    for (const o of page) {
      const owner = o.key.split('/').slice(0, 3).join('/') + '/';
      if (!live.has(owner) && now - o.lastModified.getTime() > BUILD_POLICY.GC_GRACE_MS) doomed.push(o.key);
    }
  }
  for (const prefix of indexObjectPrefixes(ck)) {
    for await (const page of deps.objects.list(prefix)) {
      for (const o of page) {
        if (!keep.has(o.key) && now - o.lastModified.getTime() > BUILD_POLICY.GC_GRACE_MS) doomed.push(o.key);
      }
    }
  }
  if (doomed.length) await deps.objects.delete(doomed);
  return doomed;
}
