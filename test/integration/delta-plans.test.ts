/**
 * Delta plans on the emulators (docs/architecture.md §6.5): a large tail on a partitioned head runs as
 * scan → assign → build (one task per partition) → commit tasks on a real SQS queue (fauxqs, 1 s
 * visibility), taken by two concurrent "workers". Each result is compared with a twin collection that
 * builds the same writes in process: the same rows in the same partitions, the same splits, the same recall.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { assignPartition, type IVF_POLICY } from '../../shared/engine/ivf.js';
import { buildIndex, planTaskDeps, type BuilderDeps } from '../../shared/indexing/builder.js';
import { loadDataset, type Dataset } from '../../shared/io/datasets.js';
import { logger } from '../../shared/log.js';
import { sqsQueueProducer } from '../../shared/queue/messages.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import type { VectorInput } from '../../shared/service.js';
import { DynamoPlanStore, type PlanStage } from '../../shared/storage/dynamo-plans.js';
import { collectionKey } from '../../shared/storage/keys.js';
import type { Manifest, ObjectStore } from '../../shared/storage/types.js';
import type { ShoalCore } from '../../shared/core.js';
import { planQueue, type PlanWorkers } from '../helpers/plan-workers.js';
import { lifecycleCores, searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';

let stack: EmulatedStack;
let core: ShoalCore;
let sift: Dataset;
let queueUrl: string;
let store: DynamoPlanStore;
const clock = Date.now();
const now = (): number => clock;
const policy = { MIN_ROWS: 1e9, CHUNK_ROWS: 700, STALL_MS: 60_000, MAX_REDRIVES: 2, DELTA_MIN_ROWS: 500 };

function row(i: number): Float32Array {
  return sift.base.slice(i * sift.dim, (i + 1) * sift.dim);
}

function rows(from: number, to: number): VectorInput[] {
  return Array.from({ length: to - from }, (_, j) => ({ id: String(from + j), values: row(from + j) }));
}

async function upsertAll(collections: string[], inputs: VectorInput[]): Promise<void> {
  for (const c of collections)
    for (let i = 0; i < inputs.length; i += 500) await core.upsert(c, inputs.slice(i, i + 500));
}

/** Builder deps: with plans (the queue) or without (everything in process), and IVF overrides. */
function deps(opts: { objects?: ObjectStore; plans?: boolean; ivf?: Partial<typeof IVF_POLICY> } = {}): BuilderDeps {
  return {
    catalog: stack.catalog,
    records: stack.records,
    objects: opts.objects ?? stack.objects,
    cache: new ShardCache({ objects: stack.objects, memoryBytes: 256 * 2 ** 20 }),
    codeVersion: 'test',
    now,
    // The collections here grow past 2× their layout's rows while deltas are tested: no re-layout unless asked.
    ivfPolicy: { RELAYOUT_GROWTH: 4, ...opts.ivf },
    ...(opts.plans === false
      ? {}
      : { plans: { store, queues: sqsQueueProducer(stack.aws.sqs, { buildTask: queueUrl }), policy } }),
  };
}

let workers: PlanWorkers;
const receive = () => workers.receive();
const planObjects = () => workers.planObjects(stack.objects);

/** Distinct tasks per stage of the last drain (a message may come twice: 1 s visibility). */
let lastTasks = new Map<PlanStage, number>();

/** Two workers until the queue stays empty (test/helpers/plan-workers.ts); the messages each stage received. */
async function drain(workerDeps: BuilderDeps): Promise<Map<PlanStage, number>> {
  const drained = await workers.drain(() => planTaskDeps(workerDeps));
  lastTasks = drained.tasks;
  return drained.seen;
}

async function head(collection: string): Promise<Manifest> {
  return (await stack.catalog.listManifests(collection, 1))[0];
}

/** Live ids of a version per partition (bitmaps applied), each partition's sorted; throws on a duplicate id. */
async function livePartitions(m: Manifest): Promise<Map<number, string[]>> {
  const cache = deps().cache;
  const out = new Map<number, string[]>();
  const seen = new Set<string>();
  for (const ref of m.shards) {
    const [shard, bits] = await Promise.all([cache.shard(ref), cache.bitmap(ref)]);
    for (let r = 0; r < shard.count; r++) {
      if (bits && (bits[r >>> 3] & (1 << (r & 7))) !== 0) continue;
      const id = shard.ids[r];
      if (seen.has(id)) throw new Error(`id ${id} is live twice`);
      seen.add(id);
      out.set(ref.partition!, [...(out.get(ref.partition!) ?? []), id]);
    }
  }
  for (const list of out.values()) list.sort();
  return out;
}

/** Recall@10 of eventual searches against exact neighbours among rows 0..rowCount-1 (what is indexed). */
async function recallAtAll(collection: string, n: number, nprobe: number, rowCount: number): Promise<number> {
  let hits = 0;
  for (let q = 0; q < n; q++) {
    const vector = sift.queries.slice(q * sift.dim, (q + 1) * sift.dim);
    const exact = Array.from({ length: rowCount }, (_, i) => {
      let d = 0;
      for (let j = 0; j < sift.dim; j++) d += (sift.base[i * sift.dim + j] - vector[j]) ** 2;
      return { id: String(i), d };
    }).sort((a, b) => a.d - b.d);
    const truth = new Set(exact.slice(0, 10).map((e) => e.id));
    const out = await core.search(collection, searchInput(vector, { k: 10, consistency: 'eventual', nprobe }));
    hits += out.results[0].filter((h) => truth.has(h.id)).length;
  }
  return hits / (n * 10);
}

/** The nearest indexed row of `values` (every partition probed, the tail not read). */
async function nearestId(collection: string, values: Float32Array, nprobe: number): Promise<string | undefined> {
  const out = await core.search(collection, searchInput(values, { k: 1, consistency: 'eventual', nprobe }));
  return out.results[0][0]?.id;
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-delta-plans', now });
  ({ core } = lifecycleCores(stack, now));
  sift = loadDataset('sift5k', { maxQueries: 50 });
  ({ queueUrl, workers } = await planQueue(stack.aws.sqs));
  store = new DynamoPlanStore({ ddb: stack.aws.ddb, table: 'catalog' });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('delta plans', () => {
  it('fans a large delta out as scan → assign → build per partition → commit, as the in-process delta', async () => {
    // Prepare: two collections laid out in process from the same rows (same seeds: same centroids).
    for (const name of ['dp', 'twin']) {
      await core.createCollection({ name, dimension: 128, metric: 'l2', index: { partitions: 4 } });
    }
    await upsertAll(['dp', 'twin'], rows(0, 2000));
    for (const name of ['dp', 'twin']) {
      expect(await buildIndex(deps({ plans: false }), name, { force: true })).toMatchObject({ kind: 'initial' });
    }
    const v1 = await head('dp');
    await upsertAll(['dp', 'twin'], rows(2000, 3500));

    // Act: the planned delta on the workers, the twin's in process.
    expect(await buildIndex(deps(), 'dp', { force: true })).toMatchObject({ built: false, reason: 'planned' });
    const plan = (await store.get('dp', 'main'))!;
    expect(JSON.parse(plan.spec)).toMatchObject({ mode: 'delta', baseVersion: 1, partitions: 4, kind: 'delta' });
    expect(JSON.parse(plan.state)).toEqual({ centroids: v1.partitions });
    await drain(deps());
    expect(await buildIndex(deps({ plans: false }), 'twin', { force: true })).toMatchObject({ kind: 'delta' });

    // Assess: no train stage; one build task per partition; the old shards kept, one delta shard per partition.
    expect(Object.fromEntries(lastTasks)).toEqual({ scan: 3, assign: 3, build: 4, commit: 1 });
    const v2 = await head('dp');
    expect(v2).toMatchObject({ version: 2, parent: 1, watermark: 3500, stats: { liveRows: 3500, kind: 'delta' } });
    expect(v2.partitions).toEqual(v1.partitions);
    const added = v2.shards.filter((s) => !v1.shards.some((o) => o.id === s.id));
    expect(v1.shards.every((o) => v2.shards.some((s) => s.id === o.id))).toBe(true);
    expect(added.map((s) => s.partition).sort()).toEqual([0, 1, 2, 3]);
    expect(added.reduce((n, s) => n + s.count, 0)).toBe(1500);
    expect(await livePartitions(v2)).toEqual(await livePartitions(await head('twin')));
    for (let i = 0; i < 3500; i += 97) expect(await nearestId('dp', row(i), 4)).toBe(String(i));
    const planned = await recallAtAll('dp', 50, 4, 3500);
    expect(planned).toBeGreaterThan(0.95);
    expect(planned).toBeGreaterThanOrEqual((await recallAtAll('twin', 50, 4, 3500)) - 0.01);
    expect(await store.get('dp', 'main')).toBeUndefined();
    expect(await planObjects()).toEqual([]);
  }, 240_000);

  it('applies updates that move rows to other partitions and deletes: no duplicates, deleted rows gone', async () => {
    // Prepare: rows 0–9 move to far-away vectors (other partitions), rows 100–109 are deleted, 500 rows added.
    const v2 = await head('dp');
    const centroids = await deps().cache.centroids(v2.partitions!);
    const moved = rows(4000, 4010).map((r, i) => ({ ...r, id: String(i) }));
    expect(
      moved.some((m, i) => assignPartition(centroids, 'l2', m.values) !== assignPartition(centroids, 'l2', row(i))),
    ).toBe(true);
    const gone = Array.from({ length: 10 }, (_, i) => String(100 + i));
    for (const name of ['dp', 'twin']) {
      await upsertAll([name], rows(3500, 4000));
      await core.upsert(name, moved);
      await core.deleteVectors(name, { ids: gone });
    }

    const dpKey = collectionKey(await stack.catalog.getCollection('dp'));
    expect([...(await stack.records.get(dpKey, gone)).values()].every((r) => r.deleted)).toBe(true);

    // Act
    expect(await buildIndex(deps(), 'dp', { force: true })).toMatchObject({ reason: 'planned' });
    await drain(deps());
    await buildIndex(deps({ plans: false }), 'twin', { force: true });

    // Assess: the old rows of moved and deleted ids are masked by bitmaps; every id is live once.
    const v3 = await head('dp');
    expect(v3).toMatchObject({ version: 3, parent: 2, stats: { liveRows: 3990 } });
    expect(v3.shards.filter((s) => s.deletes).length).toBeGreaterThan(0);
    const live = await livePartitions(v3);
    expect([...live.values()].flat()).toHaveLength(3990);
    expect(live).toEqual(await livePartitions(await head('twin')));
    for (const id of gone) expect(await nearestId('dp', row(Number(id)), 4)).not.toBe(id);
    for (const m of moved) expect(await nearestId('dp', m.values, 4)).toBe(m.id);
    for (let i = 0; i < 10; i++) expect(await nearestId('dp', row(i), 4)).not.toBe(String(i));
    // The commit purged the tail's tombstones (the bitmaps hold the deletes now), as the builder does.
    expect((await stack.records.get(dpKey, gone)).size).toBe(0);
  }, 240_000);

  it('splits partitions inside the plan: the j-th split appends partition count + j, as in process', async () => {
    // Prepare: 4 partitions of ~100 rows; 300 rows for each of two partitions push both past 2 × 100.
    const ivf = { SPLIT_FACTOR: 2, SPLIT_MIN_ROWS: 0, MERGE_FRACTION: 0 };
    for (const name of ['sp', 'sptwin']) {
      await core.createCollection({ name, dimension: 128, metric: 'l2', index: { partitions: 4 } });
    }
    await upsertAll(['sp', 'sptwin'], rows(0, 400));
    for (const name of ['sp', 'sptwin']) await buildIndex(deps({ plans: false, ivf }), name, { force: true });
    const v1 = await head('sp');
    const centroids = await deps().cache.centroids(v1.partitions!);
    const of = (i: number) => assignPartition(centroids, 'l2', row(i));
    const [pa, pb] = [of(0), [1, 2, 3, 4, 5, 6, 7, 8, 9].map(of).find((p) => p !== of(0))!];
    const crowd = rows(400, 4500)
      .filter((r) => assignPartition(centroids, 'l2', r.values) === pa)
      .slice(0, 300);
    crowd.push(
      ...rows(400, 4500)
        .filter((r) => assignPartition(centroids, 'l2', r.values) === pb)
        .slice(0, 300),
    );
    expect(crowd).toHaveLength(600);
    await upsertAll(['sp', 'sptwin'], crowd);

    // Act
    expect(await buildIndex(deps({ ivf }), 'sp', { force: true })).toMatchObject({ reason: 'planned' });
    await drain(deps({ ivf }));
    expect(await buildIndex(deps({ plans: false, ivf }), 'sptwin', { force: true })).toMatchObject({
      kind: 'compaction',
    });

    // Assess: six partitions, a new centroid table, the same rows per partition as the in-process split.
    const v2 = await head('sp');
    expect(v2).toMatchObject({ version: 2, stats: { liveRows: 1000, kind: 'compaction' }, partitions: { count: 6 } });
    expect(v2.partitions!.key).not.toBe(v1.partitions!.key);
    const twin = await head('sptwin');
    expect(v2.partitions!.sha256).toBe(twin.partitions!.sha256);
    expect(await livePartitions(v2)).toEqual(await livePartitions(twin));
    // Partitions without new rows kept their shard as it was; the split ones were rewritten.
    for (const s of v1.shards) {
      expect(v2.shards.some((x) => x.id === s.id)).toBe(s.partition !== pa && s.partition !== pb);
    }
    for (const probe of [crowd[0], crowd[299], crowd[599], { id: '399', values: row(399) }]) {
      expect(await nearestId('sp', probe.values, 6)).toBe(probe.id);
    }
  }, 240_000);

  it('survives workers dying in the build and commit stages and duplicate messages: one version', async () => {
    // Prepare
    await core.createCollection({ name: 'crashy', dimension: 128, metric: 'l2', index: { partitions: 4 } });
    await upsertAll(['crashy'], rows(0, 2000));
    await buildIndex(deps({ plans: false }), 'crashy', { force: true });
    await upsertAll(['crashy'], rows(2000, 3000));
    await core.deleteVectors('crashy', { ids: ['1', '2', '3'] });
    expect(await buildIndex(deps(), 'crashy', { force: true })).toMatchObject({ reason: 'planned' });
    // The first task to write in the build stage dies right after its write; the commit dies while
    // cleaning up, after its manifest (its redelivery must find its own version, not commit another).
    const killed = new Set<string>();
    const dieOnce = async (stages: string[]): Promise<void> => {
      const stage = (await store.get('crashy', 'main'))?.stage;
      if (stage && stages.includes(stage) && !killed.has(stage)) {
        killed.add(stage);
        throw new Error(`worker killed in ${stage}`);
      }
    };
    const dying: ObjectStore = {
      get: (k) => stack.objects.get(k),
      list: (p) => stack.objects.list(p),
      hash: (k) => stack.objects.hash(k),
      delete: async (k) => {
        await dieOnce(['commit']);
        await stack.objects.delete(k);
      },
      putImmutable: async (key, bytes) => {
        await stack.objects.putImmutable(key, bytes);
        await dieOnce(['build']);
      },
    };
    const [first] = await receive();
    const producer = sqsQueueProducer(stack.aws.sqs, { buildTask: queueUrl });
    await producer.send('buildTask', first.msg);
    await producer.send('buildTask', first.msg);
    const info = vi.spyOn(logger, 'info');

    // Act
    const seen = await drain(deps({ objects: dying }));

    // Assess
    expect([...killed].sort()).toEqual(['build', 'commit']);
    expect(seen.get('scan')).toBeGreaterThanOrEqual(2 + 2);
    expect(seen.get('build')).toBeGreaterThan(4);
    expect(info.mock.calls.filter(([m]) => m === 'build plan committed')).toHaveLength(1);
    expect(info.mock.calls.filter(([m]) => m === 'build plan already committed')).toHaveLength(1);
    info.mockRestore();
    const manifests = await stack.catalog.listManifests('crashy', 10);
    expect(manifests.map((m) => m.version)).toEqual([2, 1]);
    expect(manifests[0].stats.liveRows).toBe(2997);
    expect([...(await livePartitions(manifests[0])).values()].flat()).toHaveLength(2997);
    expect(await store.get('crashy', 'main')).toBeUndefined();
    expect(await planObjects()).toEqual([]);
  }, 240_000);

  it('lays an outgrown head out again instead of patching it with a delta plan', async () => {
    // Prepare: 400 rows in 4 partitions; 600 more make it 2.5× its layout's rows, past RELAYOUT_GROWTH 2.
    const ivf = { RELAYOUT_GROWTH: 2 };
    await core.createCollection({ name: 'og', dimension: 128, metric: 'l2', index: { partitions: 4 } });
    await upsertAll(['og'], rows(0, 400));
    await buildIndex(deps({ plans: false, ivf }), 'og', { force: true });
    await upsertAll(['og'], rows(400, 1000));

    // Act
    const built = await buildIndex(deps({ ivf }), 'og', { force: true });

    // Assess: below the layout plan's MIN_ROWS the re-layout runs in process; no delta plan was made.
    expect(built).toMatchObject({ built: true, kind: 'compaction', version: 2 });
    expect(await store.get('og', 'main')).toBeUndefined();
    expect(await receive()).toEqual([]);
    expect((await head('og')).partitions).toMatchObject({ count: 4, fairShare: 250 });
  }, 120_000);

  it('keeps a delta below DELTA_MIN_ROWS in process', async () => {
    // Prepare
    await upsertAll(['crashy'], rows(3000, 3000 + policy.DELTA_MIN_ROWS - 1));

    // Act
    const built = await buildIndex(deps(), 'crashy', { force: true });

    // Assess
    expect(built).toMatchObject({ built: true, kind: 'delta', version: 3 });
    expect(await store.get('crashy', 'main')).toBeUndefined();
    expect(await receive()).toEqual([]);
    expect((await head('crashy')).stats.liveRows).toBe(2997 + policy.DELTA_MIN_ROWS - 1);
  }, 120_000);

  it("waits like an in-process delta: a tail over the plan's minimum is not planned before the builder's", async () => {
    // Prepare: the builder's own policy (SHOAL_BUILD_DELTA_MIN_ROWS) asks for far more rows than the tail
    // holds, and the head is fresh — an unforced run must wait, planned or not.
    await upsertAll(['crashy'], rows(4000, 4000 + policy.DELTA_MIN_ROWS));
    const waiting = { ...deps(), policy: { DELTA_MIN_ROWS: 1e7, DELTA_MAX_AGE_MS: 86_400_000 } };

    // Act
    const unforced = await buildIndex(waiting, 'crashy');

    // Assess
    expect(unforced).toMatchObject({ built: false, reason: 'waiting-for-more' });
    expect(await store.get('crashy', 'main')).toBeUndefined();
    expect(await receive()).toEqual([]);
    // Forced, the same tail is planned.
    expect(await buildIndex(waiting, 'crashy', { force: true })).toMatchObject({ reason: 'planned' });
    await drain(deps());
  }, 120_000);
});
