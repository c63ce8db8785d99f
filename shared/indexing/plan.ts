/**
 * Build plans (docs/architecture.md §6.5): a partitioned layout too large for one builder invocation
 * is cut into tasks that builder workers run in parallel from the build-task queue —
 *
 *   scan    one task per seq range of the tail (≤ CHUNK_ROWS rows) and per shard of the old head:
 *           its live rows → a row chunk in S3, a seeded sample, and (tail tasks) the ids it wrote;
 *   train   one task: k-means over the samples → the centroid table;
 *   assign  one task per row chunk: each row to its nearest partition → per-partition chunks
 *           (a row of an old shard that the tail rewrote or deleted is dropped here);
 *   build   one task per partition (several for a partition larger than one worker builds in
 *           TASK_SECONDS): its chunks → HNSW shard(s), the refs as a result object;
 *   commit  one task: the manifest, with one conditional write, as every build commits.
 *
 * Every task reads only its inputs and writes outputs under deterministic names, so a redelivered,
 * duplicated or crashed-and-retried task rewrites the same objects; the plan item counts finished
 * tasks in a set (idempotent) and the stage advances by one conditional update. A task never holds
 * more than its own rows. While a plan is in flight the line's regular builds wait; the builder's
 * tick re-sends a stalled stage's unfinished tasks and abandons a plan that stays stalled (its
 * objects deleted, the layout started over).
 *
 * A *delta plan* (`mode: 'delta'`) applies a large tail to a partitioned head with the head's centroids:
 * scan (tail only, no sample) → assign → one build task per partition of the head (its deletion bitmaps,
 * its new rows as a delta shard or a split, its tiered compaction — the builder's own steps) → commit.
 * Merges of sparse partitions are not planned: they need rows of several partitions at once, and stay with
 * the in-process delta.
 */
import { createHash, randomUUID } from 'node:crypto';
import { NotFoundError } from '../errors.js';
import { IVF_POLICY, groupByPartition, trainCentroids, withSplit, type Centroids } from '../engine/ivf.js';
import { logger } from '../log.js';
import type { QueueProducer } from '../queue/messages.js';
import { mulberry32 } from '../random.js';
import { Shard, buildShard } from '../shard/shard.js';
import type { EngineName, EngineParams } from '../engine/types.js';
import type { BuildPlan, DynamoPlanStore, PlanStage } from '../storage/dynamo-plans.js';
import { collectionKey, planObjectPrefix } from '../storage/keys.js';
import type { ShardCache } from '../search/shard-cache.js';
import type {
  Catalog,
  CollectionMeta,
  Manifest,
  ObjectStore,
  PartitionTable,
  RecordStore,
  ShardRef,
} from '../storage/types.js';
import type { Metadata } from '../types.js';

/**
 * Plan knobs:
 * - `MIN_ROWS` (default 50,000): layouts with fewer rows build in the builder invocation itself (a
 *   plan's queue hops and S3 round trips cost more than they save on small layouts).
 * - `CHUNK_ROWS` (default 50,000): rows per scan/assign task. Larger = fewer tasks and objects, more
 *   memory per task (50,000 × 768-d ≈ 150 MB of vectors).
 * - `STALL_MS` (default 20 min, env SHOAL_PLAN_STALL_S): a stage without progress this long is
 *   redriven (its unfinished tasks re-sent). Must exceed the longest task (≤ 1/3 of the worker's
 *   15 min timeout by sizing) plus queue redelivery.
 * - `MAX_REDRIVES` (default 3): redrives of one stage before the plan is abandoned.
 * - `BUILD_RATE_768` (default 950 vectors/s) and `TASK_SECONDS` (default 300): a build task gets at most
 *   BUILD_RATE_768 × 768 / dim × TASK_SECONDS rows, so it finishes within a third of the worker's 15 min
 *   timeout. The rate is one core's HNSW build rate at 784-d measured by `npm run bench:engine` (m 16,
 *   efConstruction 200; build cost grows about linearly with dim). A partition larger than that is built
 *   by several tasks (several shards). Higher = fewer, longer tasks; too high risks the worker's timeout.
 * - `DELTA_MIN_ROWS` (default 20,000): a delta on a partitioned head whose tail spans at least this many
 *   seqs runs as a delta plan (one build task per partition on the workers); smaller deltas run in the
 *   builder invocation. Lower = big deltas finish sooner on parallel workers, but every plan pays queue
 *   hops, S3 round trips and a task per partition (each re-reading the tail's ids) however small the
 *   delta; higher = one invocation carries more delta work (at 1M rows a 100k-row delta that splits ~20
 *   partitions took 361 s in process).
 * - `INLINE_MAX_BYTES` (default 64 KiB): a plan's spec or state JSON larger than this goes to an object the
 *   plan item names (`{"$object": key}`): a layout over thousands of shards, or its build tasks' chunk lists,
 *   would pass DynamoDB's 400 KB item limit (a 590k-row re-layout's state, 299 × 119 chunk keys: ~3 MB by
 *   estimate). Smaller stay inline,
 *   saving each task a GET; lower = smaller items, more GETs.
 * - `LINE_LEASE_MS` (default 16 min): how long a builder invocation's lease on a line lasts (see
 *   DynamoPlanStore.claimLine). It must outlast the index-builder function's 15 min timeout, so a live
 *   holder never loses it; a holder that died blocks the line's builds at most this long.
 */
export const PLAN_POLICY = {
  MIN_ROWS: 50_000,
  CHUNK_ROWS: 50_000,
  STALL_MS: 20 * 60_000,
  MAX_REDRIVES: 3,
  BUILD_RATE_768: 950,
  TASK_SECONDS: 300,
  DELTA_MIN_ROWS: 20_000,
  LINE_LEASE_MS: 16 * 60_000,
  INLINE_MAX_BYTES: 64 * 1024,
};

/** One scan task's input. */
/**
 * One scan task's input: a seq range of the tail, or old shards read whole — grouped up to CHUNK_ROWS live
 * rows (`shards`; `shard` is one, in plans stored before grouping). Grouping keeps the objects a layout
 * writes at tasks × partitions: one task per small shard made 299 × 119 assign chunks at 590k rows.
 */
export type ScanSource =
  | { kind: 'tail'; after: number; upTo: number }
  | { kind: 'shard'; ref: ShardRef }
  | { kind: 'shards'; refs: ShardRef[] };

/** The old shards a scan source reads (none for a tail range). */
function shardsOf(source: ScanSource): ShardRef[] {
  return source.kind === 'shard' ? [source.ref] : source.kind === 'shards' ? source.refs : [];
}

/** What a plan builds, fixed when it is made. */
export interface PlanSpec {
  collection: string;
  generation: number;
  line: string;
  /**
   * 'layout' lays every row out anew (absent in plans stored before delta plans); 'delta' applies the tail
   * to the base version's partitions with its centroids (state.centroids from the start, no train stage).
   */
  mode?: 'layout' | 'delta';
  /** The line's head the layout replaces (0 = none), and the watermark the plan reads up to. */
  baseVersion: number;
  upTo: number;
  partitions: number;
  seed: number;
  sources: ScanSource[];
  kind: Manifest['stats']['kind'];
  /** The settings the line builds with (meta.index at planning). */
  index: CollectionMeta['index'];
  startedAt: number;
}

/** Outputs stages hand on. */
export interface PlanState {
  /** Row chunks the scan stage wrote (assign tasks, by number). */
  chunks?: string[];
  /** From the train stage (a delta plan's: the base version's table, fixed at planning). */
  centroids?: PartitionTable;
  /** Build tasks, by number: one partition's chunks each, sized by the build rate (PLAN_POLICY). */
  buildTasks?: Array<{ partition: number; chunks: string[] }>;
}

/** A partition split in two: the halves' shards and their centroids (the first half keeps the index). */
export interface PartitionSplit {
  first: ShardRef[];
  second: ShardRef[];
  centroids: [Float32Array, Float32Array];
}

/** A delta plan's build task result (`build/<task>.json`): the partition's refs, and its split if any. */
interface DeltaResult {
  partition: number;
  refs: ShardRef[];
  added: number;
  compacted: boolean;
  split?: { refs: ShardRef[]; centroids: [number[], number[]] };
}

export interface BuildTaskMessage {
  kind: 'build-task';
  collection: string;
  line: string;
  planId: string;
  stage: PlanStage;
  task: number;
}

/** What plans need beside the builder's own dependencies. */
export interface PlanDeps {
  store: DynamoPlanStore;
  queues: QueueProducer;
  policy?: Partial<typeof PLAN_POLICY>;
}

/** The stores every build step works on (BuilderDeps extends it). */
export interface BuildStores {
  catalog: Catalog;
  records: RecordStore;
  objects: ObjectStore;
  cache: ShardCache;
  codeVersion: string;
  now?: () => number;
}

/** What plan tasks use: the stores plus the builder's own steps (plan.ts does not import builder.ts). */
export interface PlanTaskDeps extends BuildStores {
  plans?: PlanDeps;
  /** Writes a partition's rows as shards (the builder's writeShards). */
  writeShards(meta: CollectionMeta, rows: PlanRow[], kind: string, partition?: number): Promise<ShardRef[]>;
  /** Writes a centroid table (the builder's writeCentroids). */
  writeCentroids(meta: CollectionMeta, c: Centroids, fairShare: number, layoutRows: number): Promise<PartitionTable>;
  /** Builds the manifest of a finished plan (the builder's newManifest). */
  newManifest(meta: CollectionMeta, m: ManifestInput): Manifest;
  // A delta plan's build task takes the in-process delta's steps (the builder's own functions), so the two
  // paths cannot drift apart.
  /** Sets the deletion bits of `ids` on one shard (the builder's step 1). */
  markDeleted(
    meta: CollectionMeta,
    ref: ShardRef,
    ids: ReadonlySet<string>,
  ): Promise<{ ref: ShardRef; removed: number }>;
  /** Live rows of shards. */
  liveRows(refs: ShardRef[]): Promise<PlanRow[]>;
  /** Whether a partition grown by `added` rows to `live` splits. */
  splitDue(live: number, added: number, fairShare: number): boolean;
  /** 2-means split of a partition's rows; undefined when they do not split. */
  splitPartition(
    meta: CollectionMeta,
    rows: PlanRow[],
    at: { first: number; second: number; seed: number },
  ): Promise<PartitionSplit | undefined>;
  /** The shards of one partition tiered compaction merges, or undefined. */
  compactionPick(shards: ShardRef[]): ShardRef[] | undefined;
}

export interface ManifestInput {
  version: number;
  line: string;
  parent: number;
  watermark: number;
  refs: ShardRef[];
  partitions?: PartitionTable;
  now: number;
  started: number;
  kind: Manifest['stats']['kind'];
}

export interface PlanRow {
  id: string;
  seq: number;
  vector: Float32Array;
  metadata?: Metadata;
}

/** Rows the table's layout laid out (tables from before `layoutRows`: fairShare × count). */
export function layoutRowsOf(table: PartitionTable): number {
  return table.layoutRows ?? table.fairShare * table.count;
}

const policyOf = (deps: PlanTaskDeps) => ({ ...PLAN_POLICY, ...deps.plans?.policy });
const nowOf = (deps: PlanTaskDeps) => deps.now?.() ?? Date.now();

// --- Row chunks: flat shards (ids, seqs, vectors, metadata, checksummed) -----------------------------

/**
 * A shard file of rows (the builder's index shards and the plans' flat row chunks alike): vectors packed
 * row-major, ids, seqs, filterable metadata.
 */
export async function encodeRows(
  meta: CollectionMeta,
  rows: readonly PlanRow[],
  opts: { engine: EngineName; params?: EngineParams; kind: string; createdAt: string },
): Promise<Uint8Array> {
  const vectors = new Float32Array(rows.length * meta.dimension);
  rows.forEach((r, i) => vectors.set(r.vector, i * meta.dimension));
  return buildShard({
    engine: opts.engine,
    dim: meta.dimension,
    metric: meta.metric,
    ids: rows.map((r) => r.id),
    vectors,
    seqs: rows.map((r) => r.seq),
    metadata: rows.map((r) => r.metadata),
    params: opts.params,
    meta: { collection: meta.name, generation: meta.generation, kind: opts.kind, createdAt: opts.createdAt },
  });
}

async function writeChunk(deps: PlanTaskDeps, meta: CollectionMeta, key: string, rows: PlanRow[]): Promise<void> {
  const bytes = await encodeRows(meta, rows, { engine: 'flat', kind: 'plan-chunk', createdAt: '' });
  // First writer wins: a retried task finds its output in place (rows past the plan's upTo that changed
  // meanwhile are re-applied by the next delta build either way).
  await deps.objects.putImmutable(key, bytes);
}

async function readChunk(deps: PlanTaskDeps, key: string): Promise<PlanRow[]> {
  const shard = await Shard.open(await deps.objects.get(key));
  try {
    return Array.from({ length: shard.count }, (_, row) => ({
      id: shard.ids[row],
      seq: shard.seqs[row],
      vector: shard.vectorOf(row).slice(),
      metadata: shard.metadataOf(row),
    }));
  } finally {
    shard.dispose();
  }
}

const chunkKey = (prefix: string, stage: string, name: string): string => `${prefix}${stage}/${name}.rows`;

// --- Planning ------------------------------------------------------------------------------------------

/**
 * Starts a plan for laying out the line's rows (the old head's live rows plus the tail up to `upTo`)
 * as `partitions` partitions, and sends the scan tasks. False when the line has a plan already.
 */
export async function startLayoutPlan(
  deps: PlanTaskDeps,
  meta: CollectionMeta,
  input: {
    line: string;
    head?: Manifest;
    from: number;
    upTo: number;
    partitions: number;
    seed: number;
    kind: Manifest['stats']['kind'];
  },
): Promise<BuildPlan | undefined> {
  const policy = policyOf(deps);
  const sources: ScanSource[] = [];
  // Seq ranges of ≤ CHUNK_ROWS writes: each id falls in exactly one (the range of its newest seq).
  for (let after = input.from; after < input.upTo; after += policy.CHUNK_ROWS) {
    sources.push({ kind: 'tail', after, upTo: Math.min(input.upTo, after + policy.CHUNK_ROWS) });
  }
  let group: ShardRef[] = [];
  let groupRows = 0;
  for (const ref of input.head?.shards ?? []) {
    if (group.length && groupRows + ref.live > policy.CHUNK_ROWS) {
      sources.push({ kind: 'shards', refs: group });
      group = [];
      groupRows = 0;
    }
    group.push(ref);
    groupRows += ref.live;
  }
  if (group.length) sources.push({ kind: 'shards', refs: group });
  const now = nowOf(deps);
  const spec: PlanSpec = {
    collection: meta.name,
    generation: meta.generation,
    line: input.line,
    mode: 'layout',
    baseVersion: input.head?.version ?? 0,
    upTo: input.upTo,
    partitions: input.partitions,
    seed: input.seed,
    sources,
    kind: input.kind,
    index: meta.index,
    startedAt: now,
  };
  return createPlan(deps, spec, {});
}

/**
 * Starts a delta plan: the tail (from, upTo] applied to the partitioned `head` with its centroids, one
 * build task per partition. False when the line has a plan already.
 */
export async function startDeltaPlan(
  deps: PlanTaskDeps,
  meta: CollectionMeta,
  input: { line: string; head: Manifest; from: number; upTo: number; seed: number },
): Promise<BuildPlan | undefined> {
  const policy = policyOf(deps);
  const sources: ScanSource[] = [];
  for (let after = input.from; after < input.upTo; after += policy.CHUNK_ROWS) {
    sources.push({ kind: 'tail', after, upTo: Math.min(input.upTo, after + policy.CHUNK_ROWS) });
  }
  const spec: PlanSpec = {
    collection: meta.name,
    generation: meta.generation,
    line: input.line,
    mode: 'delta',
    baseVersion: input.head.version,
    upTo: input.upTo,
    partitions: input.head.partitions!.count,
    seed: input.seed,
    sources,
    kind: 'delta',
    index: meta.index,
    startedAt: nowOf(deps),
  };
  return createPlan(deps, spec, { centroids: input.head.partitions });
}

async function createPlan(deps: PlanTaskDeps, spec: PlanSpec, state: PlanState): Promise<BuildPlan | undefined> {
  const plans = deps.plans!;
  const now = spec.startedAt;
  const planId = `${now.toString(36)}-${randomUUID().slice(0, 8)}`;
  const prefix = planObjectPrefix(collectionKey({ name: spec.collection, generation: spec.generation }), planId);
  const plan = {
    collection: spec.collection,
    line: spec.line,
    planId,
    stage: 'scan' as const,
    tasks: spec.sources.length,
    createdAt: now,
    updatedAt: now,
    spec: await storeJson(deps, prefix, spec),
    state: await storeJson(deps, prefix, state),
  };
  if (!(await plans.store.create(plan))) return undefined;
  logger.info('build plan started', {
    collection: spec.collection,
    line: spec.line,
    planId: plan.planId,
    mode: spec.mode,
    partitions: spec.partitions,
    scanTasks: spec.sources.length,
  });
  await sendTasks(plans, plan, range(spec.sources.length));
  return { ...plan, done: [], redrives: 0 };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Where a plan's spilled spec and state live, under its prefix (deleted last by endPlan). */
const DOCS_DIR = 'docs/';

/** A spec or state as the plan item stores it: inline, or content-addressed in the plan's objects. */
async function storeJson(deps: PlanTaskDeps, prefix: string, value: PlanSpec | PlanState): Promise<string> {
  const json = JSON.stringify(value);
  if (Buffer.byteLength(json) <= policyOf(deps).INLINE_MAX_BYTES) return json;
  const bytes = new TextEncoder().encode(json);
  const key = `${prefix}${DOCS_DIR}${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}.json`;
  await deps.objects.putImmutable(key, bytes);
  return JSON.stringify({ $object: key });
}

/**
 * Spilled specs and states this process read, by key: content-addressed, so never stale. Every task of a
 * stage reads the same two, and a warm worker runs many tasks; a few entries cover the plans in flight.
 * Kept as text, parsed per task, so a task that changes its copy changes nobody else's.
 */
const spilled = new Map<string, string>();
const SPILLED_ENTRIES = 8;

async function loadJson<T extends PlanSpec | PlanState>(deps: PlanTaskDeps, stored: string): Promise<T> {
  const value = JSON.parse(stored) as T | { $object?: unknown };
  if (typeof (value as { $object?: unknown }).$object !== 'string') return value as T;
  const key = (value as { $object: string }).$object;
  let text = spilled.get(key);
  if (text === undefined) {
    text = new TextDecoder().decode(await deps.objects.get(key));
    if (spilled.size >= SPILLED_ENTRIES) spilled.delete(spilled.keys().next().value!);
    spilled.set(key, text);
  }
  return JSON.parse(text) as T;
}

async function sendTasks(
  plans: PlanDeps,
  plan: Pick<BuildPlan, 'collection' | 'line' | 'planId' | 'stage'>,
  tasks: number[],
): Promise<void> {
  for (const task of tasks) {
    await plans.queues.send('buildTask', {
      kind: 'build-task',
      collection: plan.collection,
      line: plan.line,
      planId: plan.planId,
      stage: plan.stage,
      task,
    });
  }
}

// --- Tasks -----------------------------------------------------------------------------------------

/**
 * Runs one task of a plan (the builder worker's body). A message for a plan that is gone, has moved
 * on, or already counted this task is acknowledged without work.
 */
export async function runBuildTask(deps: PlanTaskDeps, msg: BuildTaskMessage): Promise<'done' | 'stale'> {
  const plans = deps.plans!;
  const plan = await plans.store.get(msg.collection, msg.line);
  if (!plan || plan.planId !== msg.planId || plan.stage !== msg.stage || plan.done.includes(msg.task)) return 'stale';
  const spec = await loadJson<PlanSpec>(deps, plan.spec);
  const state = await loadJson<PlanState>(deps, plan.state);
  const meta = await deps.catalog.getCollection(spec.collection);
  if (meta.generation !== spec.generation) {
    await plans.store.remove(plan);
    return 'stale';
  }
  const lineMeta: CollectionMeta = { ...meta, index: spec.index };
  const prefix = planObjectPrefix(collectionKey(meta), plan.planId);
  switch (plan.stage) {
    case 'scan':
      await scanTask(deps, lineMeta, spec, prefix, msg.task);
      break;
    case 'train':
      state.centroids = await trainTask(deps, lineMeta, spec, prefix);
      break;
    case 'assign':
      await assignTask(deps, lineMeta, spec, state, prefix, msg.task);
      break;
    case 'build':
      if (spec.mode === 'delta') await deltaBuildTask(deps, lineMeta, spec, state, prefix, msg.task);
      else await buildTask(deps, lineMeta, state, prefix, msg.task);
      break;
    case 'commit':
      await commitTask(deps, lineMeta, spec, state, prefix, plan);
      return 'done';
  }
  const after = await plans.store.finishTask(plan, msg.task, nowOf(deps));
  if (after && after.done.length >= after.tasks) await advance(deps, after, spec, state, prefix);
  return 'done';
}

/** The finisher of a stage's last task moves the plan on (one conditional write decides who). */
async function advance(deps: PlanTaskDeps, plan: BuildPlan, spec: PlanSpec, state: PlanState, prefix: string) {
  const plans = deps.plans!;
  let next: PlanStage;
  let tasks: number;
  const nextState: PlanState = { ...state };
  switch (plan.stage) {
    case 'scan': {
      const chunks: string[] = [];
      for await (const page of deps.objects.list(`${prefix}scan/`)) {
        for (const o of page) if (o.key.endsWith('.rows')) chunks.push(o.key);
      }
      nextState.chunks = chunks.sort();
      // A delta plan routes with the base version's centroids: nothing to train.
      next = spec.mode === 'delta' ? 'assign' : 'train';
      tasks = next === 'assign' ? nextState.chunks.length : 1;
      break;
    }
    case 'train':
      next = 'assign';
      tasks = state.chunks?.length ?? 0;
      break;
    case 'assign':
      nextState.buildTasks =
        spec.mode === 'delta' ? await planDeltaTasks(deps, spec, prefix) : await planBuildTasks(deps, spec, prefix);
      next = 'build';
      tasks = nextState.buildTasks.length;
      break;
    case 'build':
      next = 'commit';
      tasks = 1;
      break;
    default:
      return;
  }
  const stored = await storeJson(deps, prefix, nextState);
  if (!(await plans.store.advance(plan, plan.stage, next, tasks, stored, nowOf(deps)))) return;
  logger.info('build plan stage', { collection: spec.collection, planId: plan.planId, stage: next, tasks });
  if (tasks === 0) {
    // Nothing to assign (an empty layout): straight on.
    const moved = await plans.store.get(plan.collection, plan.line);
    if (moved) await advance(deps, moved, spec, nextState, prefix);
    return;
  }
  await sendTasks(plans, { ...plan, stage: next }, range(tasks));
}

async function scanTask(deps: PlanTaskDeps, meta: CollectionMeta, spec: PlanSpec, prefix: string, task: number) {
  const source = spec.sources[task];
  const rows: PlanRow[] = [];
  const ids: string[] = [];
  const tombstones: Array<{ id: string; seq: number }> = [];
  if (source.kind === 'tail') {
    for await (const batch of deps.records.tail(collectionKey(meta), source.after, source.upTo)) {
      for (const r of batch) {
        ids.push(r.id);
        if (r.deleted) tombstones.push({ id: r.id, seq: r.seq });
        else if (r.vector) rows.push({ id: r.id, seq: r.seq, vector: r.vector, metadata: r.metadata });
      }
    }
    // Ids the tail wrote (upserts and deletes): their rows in old shards are superseded.
    await deps.objects.putImmutable(`${prefix}scan/${task}.ids`, new TextEncoder().encode(JSON.stringify(ids)));
    // Deletes, for the commit to purge once the new version covers them (as the builder does after a build).
    if (tombstones.length) {
      await deps.objects.putImmutable(
        `${prefix}scan/${task}.tombstones`,
        new TextEncoder().encode(JSON.stringify(tombstones)),
      );
    }
  } else {
    for (const ref of shardsOf(source)) {
      const [shard, bits] = await Promise.all([deps.cache.shard(ref), deps.cache.bitmap(ref)]);
      for (let row = 0; row < shard.count; row++) {
        if (bits && (bits[row >>> 3] & (1 << (row & 7))) !== 0) continue;
        rows.push({
          id: shard.ids[row],
          seq: shard.seqs[row],
          vector: shard.vectorOf(row).slice(),
          metadata: shard.metadataOf(row),
        });
      }
    }
  }
  if (rows.length) await writeChunk(deps, meta, chunkKey(prefix, 'scan', String(task).padStart(6, '0')), rows);
  if (spec.mode === 'delta') return;
  // A seeded sample for training, sized by this task's share of the rows.
  const want = Math.ceil((IVF_POLICY.SAMPLE_PER_PARTITION * spec.partitions) / Math.max(1, spec.sources.length)) * 2;
  const rnd = mulberry32(spec.seed + task);
  const sample = rows.length <= want ? rows : rows.filter(() => rnd() < want / rows.length);
  await writeChunk(deps, meta, `${prefix}scan/${task}.sample`, sample);
}

async function trainTask(deps: PlanTaskDeps, meta: CollectionMeta, spec: PlanSpec, prefix: string) {
  const sample: PlanRow[] = [];
  for (let task = 0; task < spec.sources.length; task++)
    sample.push(...(await readChunk(deps, `${prefix}scan/${task}.sample`)));
  const dim = meta.dimension;
  const k = Math.max(1, Math.min(spec.partitions, sample.length));
  const data = new Float32Array(sample.length * dim);
  sample.forEach((r, i) => data.set(r.vector, i * dim));
  const centroids = trainCentroids(data, sample.length, dim, k, meta.metric, spec.seed);
  let rows = 0;
  for (const s of spec.sources)
    rows += s.kind === 'tail' ? s.upTo - s.after : shardsOf(s).reduce((n, r) => n + r.live, 0);
  return deps.writeCentroids(meta, centroids, Math.max(1, Math.ceil(rows / k)), rows);
}

async function assignTask(
  deps: PlanTaskDeps,
  meta: CollectionMeta,
  spec: PlanSpec,
  state: PlanState,
  prefix: string,
  task: number,
) {
  const key = state.chunks![task];
  const centroids = await deps.cache.centroids(state.centroids!);
  let rows = await readChunk(deps, key);
  const name = key.slice(`${prefix}scan/`.length, -'.rows'.length);
  const fromShard = shardsOf(spec.sources[Number(name)] ?? { kind: 'tail', after: 0, upTo: 0 }).length > 0;
  if (fromShard) {
    // Rows of the old head that the tail rewrote or deleted are not part of the new layout.
    const superseded = await tailIds(deps, spec, prefix);
    rows = rows.filter((r) => !superseded.has(r.id));
  }
  for (const [p, list] of groupByPartition(centroids, meta.metric, rows))
    await writeChunk(deps, meta, chunkKey(prefix, `assign/p${p}`, name), list);
}

/** Every id the plan's tail wrote (upserts and deletes): their rows in the base version are superseded. */
async function tailIds(deps: PlanTaskDeps, spec: PlanSpec, prefix: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (let t = 0; t < spec.sources.length; t++) {
    if (spec.sources[t].kind !== 'tail') continue;
    const ids = JSON.parse(new TextDecoder().decode(await deps.objects.get(`${prefix}scan/${t}.ids`))) as string[];
    for (const id of ids) out.add(id);
  }
  return out;
}

/** Assign chunks by partition, each partition's in name order. */
async function assignChunks(
  deps: PlanTaskDeps,
  prefix: string,
): Promise<Map<number, Array<{ key: string; size: number }>>> {
  const byPartition = new Map<number, Array<{ key: string; size: number }>>();
  for await (const page of deps.objects.list(`${prefix}assign/`)) {
    for (const o of page) {
      const p = Number(/assign\/p(\d+)\//.exec(o.key)?.[1]);
      if (!Number.isInteger(p)) continue;
      byPartition.set(p, [...(byPartition.get(p) ?? []), { key: o.key, size: o.size }]);
    }
  }
  for (const list of byPartition.values()) list.sort((a, b) => a.key.localeCompare(b.key));
  return byPartition;
}

/**
 * A delta plan's build tasks: one per partition of the base version — every one, not only those with new
 * rows, because the rows the tail superseded may sit in any partition's shards.
 */
async function planDeltaTasks(
  deps: PlanTaskDeps,
  spec: PlanSpec,
  prefix: string,
): Promise<Array<{ partition: number; chunks: string[] }>> {
  const byPartition = await assignChunks(deps, prefix);
  return range(spec.partitions).map((p) => ({ partition: p, chunks: (byPartition.get(p) ?? []).map((c) => c.key) }));
}

/**
 * The build stage's tasks: each partition's assign chunks packed, in name order, into tasks of at most
 * the rows one worker builds in TASK_SECONDS (estimated from object sizes: a chunk is mostly its vectors).
 */
async function planBuildTasks(
  deps: PlanTaskDeps,
  spec: PlanSpec,
  prefix: string,
): Promise<Array<{ partition: number; chunks: string[] }>> {
  const policy = policyOf(deps);
  const dim = (await deps.catalog.getCollection(spec.collection)).dimension;
  const maxRows = Math.max(1, Math.floor(((policy.BUILD_RATE_768 * 768) / dim) * policy.TASK_SECONDS));
  const byPartition = await assignChunks(deps, prefix);
  const tasks: Array<{ partition: number; chunks: string[] }> = [];
  for (const p of [...byPartition.keys()].sort((a, b) => a - b)) {
    let current: { partition: number; chunks: string[] } | undefined;
    let rows = 0;
    for (const chunk of byPartition.get(p)!) {
      const chunkRows = Math.ceil(chunk.size / (dim * 4));
      if (!current || rows + chunkRows > maxRows) {
        current = { partition: p, chunks: [] };
        tasks.push(current);
        rows = 0;
      }
      current.chunks.push(chunk.key);
      rows += chunkRows;
    }
  }
  return tasks;
}

async function buildTask(deps: PlanTaskDeps, meta: CollectionMeta, state: PlanState, prefix: string, task: number) {
  const { partition, chunks } = state.buildTasks![task];
  const rows: PlanRow[] = [];
  for (const key of chunks) rows.push(...(await readChunk(deps, key)));
  rows.sort((a, b) => a.seq - b.seq);
  const refs = await deps.writeShards(meta, rows, 'initial', partition);
  await deps.objects.putImmutable(`${prefix}build/${task}.json`, new TextEncoder().encode(JSON.stringify(refs)));
}

/**
 * One partition of a delta plan, the in-process delta's steps for it: deletion bits for the ids the tail
 * wrote on the base version's shards of the partition (a shard left without live rows is dropped), then its
 * new rows either split the partition (2-means over its live rows and the new ones) or become a delta shard
 * followed by tiered compaction. Reads only this partition's shards and new rows.
 */
async function deltaBuildTask(
  deps: PlanTaskDeps,
  meta: CollectionMeta,
  spec: PlanSpec,
  state: PlanState,
  prefix: string,
  task: number,
) {
  const { partition: p, chunks } = state.buildTasks![task];
  const base = await deps.catalog.getManifest(spec.collection, spec.baseVersion);
  const ids = await tailIds(deps, spec, prefix);
  const kept: ShardRef[] = [];
  for (const ref of base.shards.filter((r) => r.partition === p)) {
    const marked = await deps.markDeleted(meta, ref, ids);
    if (marked.ref.live > 0) kept.push(marked.ref);
  }
  const rows: PlanRow[] = [];
  for (const key of chunks) rows.push(...(await readChunk(deps, key)));
  rows.sort((a, b) => a.seq - b.seq);
  const live = kept.reduce((n, r) => n + r.live, 0);
  let result: DeltaResult | undefined;
  if (deps.splitDue(live + rows.length, rows.length, state.centroids!.fairShare)) {
    const all = [...(await deps.liveRows(kept)), ...rows];
    const split = await deps.splitPartition(meta, all, { first: p, second: p, seed: spec.seed + p });
    if (split) {
      const [a, b] = split.centroids;
      result = {
        partition: p,
        refs: split.first,
        added: rows.length,
        compacted: true,
        split: { refs: split.second, centroids: [Array.from(a), Array.from(b)] },
      };
    }
  }
  if (!result) {
    let refs = [...kept, ...(await deps.writeShards(meta, rows, 'delta', p))];
    const merge = deps.compactionPick(refs);
    if (merge) {
      const merged = await deps.writeShards(meta, await deps.liveRows(merge), 'compaction', p);
      refs = [...refs.filter((r) => !merge.includes(r)), ...merged];
    }
    result = { partition: p, refs, added: rows.length, compacted: merge !== undefined };
  }
  await deps.objects.putImmutable(`${prefix}build/${task}.json`, new TextEncoder().encode(JSON.stringify(result)));
}

/**
 * A delta plan's manifest contents from its build results: partitions in order, the j-th split's second
 * half appended as partition `table.count + j` (withSplit's order); the centroid table is only rewritten
 * when something split.
 */
async function assembleDelta(deps: PlanTaskDeps, state: PlanState, prefix: string) {
  const table = state.centroids!;
  const results: DeltaResult[] = [];
  for (let task = 0; task < (state.buildTasks?.length ?? 0); task++) {
    results.push(JSON.parse(new TextDecoder().decode(await deps.objects.get(`${prefix}build/${task}.json`))));
  }
  const splits = results.filter((r) => r.split);
  const refs = [
    ...results.flatMap((r) => r.refs),
    ...splits.flatMap((r, j) => r.split!.refs.map((ref) => ({ ...ref, partition: table.count + j }))),
  ];
  const kind: Manifest['stats']['kind'] = results.some((r) => r.compacted)
    ? 'compaction'
    : results.some((r) => r.added > 0)
      ? 'delta'
      : 'deletes';
  const partitions = async (meta: CollectionMeta): Promise<PartitionTable> => {
    if (!splits.length) return table;
    let c = await deps.cache.centroids(table);
    for (const r of splits) {
      const [a, b] = r.split!.centroids;
      c = withSplit(c, r.partition, Float32Array.from(a), Float32Array.from(b));
    }
    return deps.writeCentroids(meta, c, table.fairShare, layoutRowsOf(table));
  };
  return { refs, kind, partitions };
}

async function commitTask(
  deps: PlanTaskDeps,
  meta: CollectionMeta,
  spec: PlanSpec,
  state: PlanState,
  prefix: string,
  plan: BuildPlan,
) {
  const delta = spec.mode === 'delta' ? await assembleDelta(deps, state, prefix) : undefined;
  const refs: ShardRef[] = delta?.refs ?? [];
  for (let task = 0; !delta && task < (state.buildTasks?.length ?? 0); task++) {
    refs.push(
      ...(JSON.parse(new TextDecoder().decode(await deps.objects.get(`${prefix}build/${task}.json`))) as ShardRef[]),
    );
  }
  const latest = await deps.catalog.latestManifest(meta.name);
  const head = await deps.catalog.latestManifest(meta.name, spec.line);
  const headVersion = head && head.generation === meta.generation ? head.version : 0;
  if (headVersion === spec.baseVersion) {
    const manifest = deps.newManifest(meta, {
      version: (latest?.version ?? 0) + 1,
      line: spec.line,
      parent: spec.baseVersion,
      watermark: spec.upTo,
      refs,
      partitions: delta ? await delta.partitions(meta) : state.centroids,
      now: nowOf(deps),
      started: performance.now() - (nowOf(deps) - spec.startedAt),
      kind: delta?.kind ?? spec.kind,
    });
    const committed = await deps.catalog.commitManifest(manifest);
    // Readers find the head through this pointer (docs/architecture.md §7.6); if this fails or the
    // worker dies first, the builder's next run (the tick) moves it.
    if (committed) {
      await deps.catalog.setHead(meta.name, meta.generation, spec.line, manifest.version);
      await purgeTombstones(deps, meta, spec, prefix);
    }
    logger.info(committed ? 'build plan committed' : 'build plan lost the commit race', {
      collection: meta.name,
      planId: plan.planId,
      version: manifest.version,
      rows: manifest.stats.liveRows,
      shards: refs.length,
    });
    // Lost: another commit took the version number (a candidate line's); the next tick plans again.
  } else if (
    head?.watermark === spec.upTo &&
    (delta
      ? // A delta may keep the centroid table; its shard set (content-addressed, from create-only results) is its own.
        head.parent === spec.baseVersion && sameShards(head.shards, refs)
      : head.partitions?.key === state.centroids?.key)
  ) {
    // A redelivered commit task: this plan's manifest is the head already.
    logger.info('build plan already committed', { collection: meta.name, planId: plan.planId, head: headVersion });
  } else {
    // Another build committed on the line meanwhile (one that had started before this plan): the plan's
    // layout would roll it back. Dropped; the next build plans again from the new head if still due.
    logger.warn('build plan superseded: the line moved', {
      collection: meta.name,
      planId: plan.planId,
      base: spec.baseVersion,
      head: headVersion,
    });
  }
  await endPlan(deps, plan, prefix);
}

function sameShards(a: ShardRef[], b: ShardRef[]): boolean {
  const ids = new Set(a.map((r) => `${r.id}/${r.deletes?.key ?? ''}`));
  return a.length === b.length && b.every((r) => ids.has(`${r.id}/${r.deletes?.key ?? ''}`));
}

/**
 * Purges the tombstones the plan's tail held, now that the committed version (pointed at) covers them:
 * its bitmaps hide those rows, so the delete items are no longer needed (the builder purges its own tails
 * the same way). Only when the collection has no candidate lines: a lagging candidate still needs them,
 * and the builder's bound over every line's watermark is not known here; then they stay as inert items.
 */
async function purgeTombstones(deps: PlanTaskDeps, meta: CollectionMeta, spec: PlanSpec, prefix: string) {
  if (Object.keys(meta.candidates ?? {}).length > 0) return;
  const items: Array<{ id: string; seq: number }> = [];
  for (let t = 0; t < spec.sources.length; t++) {
    if (spec.sources[t].kind !== 'tail') continue;
    const bytes = await deps.objects.get(`${prefix}scan/${t}.tombstones`).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (bytes) items.push(...(JSON.parse(new TextDecoder().decode(bytes)) as Array<{ id: string; seq: number }>));
  }
  if (!items.length) return;
  await deps.records
    .purge(collectionKey(meta), items)
    .catch((err: unknown) =>
      logger.warn('purging tombstones failed (harmless)', { collection: meta.name, error: err as Error }),
    );
}

/**
 * Removes the plan's objects, then its item: a worker dying in between leaves the item, so the
 * redelivered task finishes the job. Objects a straggling task writes after this are collected by
 * `collectGarbage` (plan objects of no live plan, past the grace period).
 */
async function endPlan(deps: PlanTaskDeps, plan: BuildPlan, prefix: string): Promise<void> {
  // The spec and state objects last, after the item: while the item names them they must be readable.
  const docs: string[] = [];
  for await (const page of deps.objects.list(prefix)) {
    const keys = page.map((o) => o.key);
    docs.push(...keys.filter((k) => k.startsWith(`${prefix}${DOCS_DIR}`)));
    const rest = keys.filter((k) => !k.startsWith(`${prefix}${DOCS_DIR}`));
    if (rest.length) await deps.objects.delete(rest);
  }
  await deps.plans!.store.remove(plan);
  if (docs.length) await deps.objects.delete(docs);
}

/**
 * The builder tick's look at a line's plan: nothing while it progresses; a stage stalled for
 * STALL_MS has its unfinished tasks re-sent; one stalled MAX_REDRIVES times is abandoned (item and
 * objects removed; the next build plans again). Returns what it did.
 */
export async function checkPlan(deps: PlanTaskDeps, plan: BuildPlan): Promise<'running' | 'redriven' | 'abandoned'> {
  const policy = policyOf(deps);
  const now = nowOf(deps);
  if (now - plan.updatedAt < policy.STALL_MS) return 'running';
  const spec = await loadJson<PlanSpec>(deps, plan.spec);
  if (plan.redrives >= policy.MAX_REDRIVES) {
    logger.warn('build plan abandoned', { collection: plan.collection, planId: plan.planId, stage: plan.stage });
    await endPlan(
      deps,
      plan,
      planObjectPrefix(collectionKey({ name: spec.collection, generation: spec.generation }), plan.planId),
    );
    return 'abandoned';
  }
  if (!(await deps.plans!.store.redrive(plan, now))) return 'running';
  const missing = range(plan.tasks).filter((t) => !plan.done.includes(t));
  logger.warn('build plan stalled: re-sending tasks', {
    planId: plan.planId,
    stage: plan.stage,
    tasks: missing.length,
  });
  await sendTasks(deps.plans!, plan, missing);
  return 'redriven';
}
