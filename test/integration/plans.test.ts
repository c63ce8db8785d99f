/**
 * Build plans on the emulators (docs/architecture.md §6.5): a layout cut into scan → train → assign →
 * build → commit tasks on a real SQS queue (fauxqs, 1 s visibility so redelivery happens in the
 * test), run by two concurrent "workers" — plus duplicates, a worker dying inside each stage, a
 * re-layout of an unpartitioned head with deletes and updates in the tail, and a stalled plan
 * redriven, then abandoned and its objects removed.
 */
import { DeleteMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex, type BuilderDeps } from '../../shared/indexing/builder.js';
import { Indexer } from '../../shared/indexing/indexer.js';
import { runBuildTask } from '../../shared/indexing/plan.js';
import { planTaskDeps } from '../../shared/indexing/builder.js';
import { loadDataset, type Dataset } from '../../shared/io/datasets.js';
import { sqsQueueProducer } from '../../shared/queue/messages.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import type { VectorInput } from '../../shared/service.js';
import { DynamoPlanStore, dropBuildLeases, type PlanStage } from '../../shared/storage/dynamo-plans.js';
import type { ObjectStore } from '../../shared/storage/types.js';
import type { ShoalCore } from '../../shared/core.js';
import { planQueue, type PlanWorkers } from '../helpers/plan-workers.js';
import { lifecycleCores, searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';

let stack: EmulatedStack;
let core: ShoalCore;
let sift: Dataset;
let queueUrl: string;
let store: DynamoPlanStore;
let clock = Date.now();
const now = (): number => clock;
// INLINE_MAX_BYTES this low spills most specs and states to objects: every test here runs through that path.
const policy = { MIN_ROWS: 1000, CHUNK_ROWS: 700, STALL_MS: 60_000, MAX_REDRIVES: 2, INLINE_MAX_BYTES: 512 };

/** A plan item's spec or state, read through its object when it was spilled. */
async function doc(stored: string): Promise<Record<string, unknown>> {
  const value = JSON.parse(stored) as Record<string, unknown>;
  if (typeof value.$object !== 'string') return value;
  return JSON.parse(new TextDecoder().decode(await stack.objects.get(value.$object))) as Record<string, unknown>;
}

function row(i: number): Float32Array {
  return sift.base.slice(i * sift.dim, (i + 1) * sift.dim);
}

function rows(from: number, to: number): VectorInput[] {
  return Array.from({ length: to - from }, (_, j) => ({ id: String(from + j), values: row(from + j) }));
}

async function upsertAll(collection: string, inputs: VectorInput[]): Promise<void> {
  for (let i = 0; i < inputs.length; i += 500) await core.upsert(collection, inputs.slice(i, i + 500));
}

function deps(objects: ObjectStore = stack.objects, withPlans = true): BuilderDeps {
  return {
    catalog: stack.catalog,
    records: stack.records,
    objects,
    cache: new ShardCache({ objects: stack.objects, memoryBytes: 256 * 2 ** 20 }),
    codeVersion: 'test',
    now,
    ...(withPlans
      ? { plans: { store, queues: sqsQueueProducer(stack.aws.sqs, { buildTask: queueUrl }), policy } }
      : {}),
  };
}

let workers: PlanWorkers;
const receive = () => workers.receive();
const planObjects = () => workers.planObjects(stack.objects);

/** Distinct tasks per stage of the last drain (a message may come twice: 1 s visibility). */
let lastTasks = new Map<PlanStage, number>();

/** Two workers until the queue stays empty (test/helpers/plan-workers.ts); the messages each stage received. */
async function drain(objects?: ObjectStore): Promise<Map<PlanStage, number>> {
  const drained = await workers.drain(() => planTaskDeps(deps(objects)));
  lastTasks = drained.tasks;
  return drained.seen;
}

async function recallAtAll(collection: string, n: number): Promise<number> {
  let hits = 0;
  for (let q = 0; q < n; q++) {
    const vector = sift.queries.slice(q * sift.dim, (q + 1) * sift.dim);
    const out = await core.search(collection, searchInput(vector, { k: 10, consistency: 'eventual', nprobe: 64 }));
    const truth = new Set(Array.from(sift.groundTruth!.subarray(q * sift.gtK!, q * sift.gtK! + 10), String));
    hits += out.results[0].filter((h) => truth.has(h.id)).length;
  }
  return hits / (n * 10);
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-plans', now });
  ({ core } = lifecycleCores(stack, now));
  sift = loadDataset('sift5k', { maxQueries: 50 });
  ({ queueUrl, workers } = await planQueue(stack.aws.sqs));
  store = new DynamoPlanStore({ ddb: stack.aws.ddb, table: 'catalog' });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('build plans', () => {
  it('lays out a collection through scan → train → assign → build → commit tasks on two workers', async () => {
    await core.createCollection({ name: 'fan', dimension: 128, metric: 'l2', index: { partitions: 8 } });
    await upsertAll('fan', rows(0, 4500));
    expect(await buildIndex(deps(), 'fan', { force: true })).toMatchObject({ built: false, reason: 'planned' });
    const plan = await store.get('fan', 'main');
    expect(plan).toMatchObject({ stage: 'scan', tasks: Math.ceil(4500 / policy.CHUNK_ROWS), done: [] });
    // While the plan runs, the line's regular builds wait for it.
    expect(await buildIndex(deps(), 'fan', { force: true })).toMatchObject({ built: false, reason: 'planned' });

    await drain();
    expect(Object.fromEntries(lastTasks)).toEqual({ scan: 7, train: 1, assign: 7, build: 8, commit: 1 });
    const [manifest] = await stack.catalog.listManifests('fan', 1);
    expect(manifest).toMatchObject({
      version: 1,
      stats: { liveRows: 4500, kind: 'initial' },
      partitions: { count: 8 },
    });
    expect(new Set(manifest.shards.map((s) => s.partition)).size).toBe(8);
    expect(await store.get('fan', 'main')).toBeUndefined();
    expect(await planObjects()).toEqual([]);
    expect(await recallAtAll('fan', 50)).toBeGreaterThan(0.95);
    expect((await core.getCollection('fan')).stats).toMatchObject({ pending: 0, indexed: 4500, partitions: 8 });
  }, 180_000);

  it('sizes build tasks by the measured build rate: a partition too big for one task is built by several', async () => {
    await core.createCollection({ name: 'big', dimension: 128, metric: 'l2', index: { partitions: 2 } });
    await upsertAll('big', rows(0, 1500));
    // 950 × 768 / 128 × 0.05 s = 285 rows per task: each assign chunk (3 scan chunks × 2 partitions, each
    // over 285 rows) is a task of its own, where the default rate builds each partition in one task.
    const slow = { ...deps(), plans: { ...deps().plans!, policy: { ...policy, TASK_SECONDS: 0.05 } } };
    expect(await buildIndex(slow, 'big', { force: true })).toMatchObject({ reason: 'planned' });
    const { tasks } = await workers.drain(() => planTaskDeps(slow));
    const [manifest] = await stack.catalog.listManifests('big', 1);
    expect(tasks.get('build')).toBe(6);
    expect(manifest.shards).toHaveLength(6);
    expect(new Set(manifest.shards.map((s) => s.partition))).toEqual(new Set([0, 1]));
    expect(manifest.stats.liveRows).toBe(1500);
  }, 120_000);

  it('counts duplicate messages once and survives a worker dying inside every stage', async () => {
    await core.createCollection({ name: 'crashy', dimension: 128, metric: 'l2', index: { partitions: 4 } });
    await upsertAll('crashy', rows(0, 2000));
    expect(await buildIndex(deps(), 'crashy', { force: true })).toMatchObject({ reason: 'planned' });
    // The first task to write in each stage dies right after its write (the commit: after the manifest,
    // while cleaning up); SQS brings its message back.
    const killed = new Set<string>();
    const dieOnce = async (): Promise<void> => {
      const stage = (await store.get('crashy', 'main'))?.stage;
      if (stage && !killed.has(stage)) {
        killed.add(stage);
        throw new Error(`worker killed in ${stage}`);
      }
    };
    const dying: ObjectStore = {
      get: (k) => stack.objects.get(k),
      list: (p) => stack.objects.list(p),
      hash: (k) => stack.objects.hash(k),
      delete: async (k) => {
        await dieOnce();
        await stack.objects.delete(k);
      },
      putImmutable: async (key, bytes) => {
        await stack.objects.putImmutable(key, bytes);
        await dieOnce();
      },
    };
    // Two extra copies of the first task's message: duplicates, as SQS may deliver.
    const [first] = await receive();
    const producer = sqsQueueProducer(stack.aws.sqs, { buildTask: queueUrl });
    await producer.send('buildTask', first.msg);
    await producer.send('buildTask', first.msg);
    const seen = await drain(dying);
    expect([...killed].sort()).toEqual(['assign', 'build', 'commit', 'scan', 'train']);
    // 3 scan tasks + 2 duplicates + the original redelivered + one redelivery after a death.
    expect(seen.get('scan')).toBeGreaterThanOrEqual(3 + 2);
    const manifests = await stack.catalog.listManifests('crashy', 10);
    expect(manifests).toHaveLength(1);
    expect(manifests[0].stats.liveRows).toBe(2000);
    const ids = new Set<string>();
    for (const ref of manifests[0].shards) for (const id of (await deps().cache.shard(ref)).ids) ids.add(id);
    expect(ids.size).toBe(2000);
    expect(await store.get('crashy', 'main')).toBeUndefined();
    expect(await planObjects()).toEqual([]);
  }, 240_000);

  it('re-lays out an unpartitioned head: old shards scanned, rows the tail rewrote or deleted left out', async () => {
    await core.createCollection({ name: 'grow', dimension: 128, metric: 'l2' });
    // Three unpartitioned versions: v3 holds three 200-row shards.
    for (const from of [0, 200, 400]) {
      await upsertAll('grow', rows(from, from + 200));
      await buildIndex(deps(stack.objects, false), 'grow', { force: true });
    }
    const [v3] = await stack.catalog.listManifests('grow', 1);
    expect(v3).toMatchObject({ version: 3, shards: [{}, {}, {}] });
    expect(v3.partitions).toBeUndefined();
    await upsertAll('grow', rows(600, 2100));
    const moved = rows(3000, 3010).map((r, i) => ({ ...r, id: String(i) }));
    await core.upsert('grow', moved);
    const gone = Array.from({ length: 10 }, (_, i) => String(100 + i));
    await core.deleteVectors('grow', { ids: gone });
    const relayout = { ...deps(), ivfPolicy: { MIN_ROWS: 1000, TARGET_ROWS: 400 } };
    expect(await buildIndex(relayout, 'grow', { force: true })).toMatchObject({ reason: 'planned' });
    const plan = (await store.get('grow', 'main'))!;
    // The spec names the old shards (in groups up to CHUNK_ROWS), so it passed INLINE_MAX_BYTES: an object.
    expect(JSON.parse(plan.spec)).toEqual({ $object: expect.stringMatching(/docs\/[0-9a-f]{32}\.json$/) });
    const spec = await doc(plan.spec);
    expect(spec).toMatchObject({ baseVersion: 3, kind: 'compaction', partitions: 6 });
    // The three old shards (600 live rows ≤ CHUNK_ROWS) are one scan task.
    const sources = spec.sources as Array<{ kind: string; refs?: unknown[] }>;
    expect(sources.map((s) => [s.kind, s.refs?.length])).toEqual([
      ['tail', undefined],
      ['tail', undefined],
      ['tail', undefined],
      ['shards', 3],
    ]);
    await drain();
    const [v4] = await stack.catalog.listManifests('grow', 1);
    expect(v4).toMatchObject({ version: 4, parent: 3, partitions: { count: 6 }, stats: { liveRows: 2090 } });
    expect(await planObjects()).toEqual([]);
    for (const id of gone) {
      const out = await core.search('grow', searchInput(row(Number(id)), { k: 1, consistency: 'eventual', nprobe: 6 }));
      expect(out.results[0][0].id).not.toBe(id);
    }
    for (const m of moved) {
      const out = await core.search('grow', searchInput(m.values, { k: 1, consistency: 'eventual', nprobe: 6 }));
      expect(out.results[0][0].id).toBe(m.id);
    }
    // Later writes are regular deltas into the partitions.
    await core.upsert('grow', rows(4000, 4010));
    expect(await buildIndex(relayout, 'grow', { force: true })).toMatchObject({ built: true, kind: 'delta' });
  }, 180_000);

  it('redrives a stalled stage, then abandons the plan and removes its objects', async () => {
    await core.createCollection({ name: 'stall', dimension: 128, metric: 'l2', index: { partitions: 4 } });
    await upsertAll('stall', rows(0, 1500));
    await buildIndex(deps(), 'stall', { force: true });
    const planId = (await store.get('stall', 'main'))!.planId;
    // One scan task runs (its objects exist); the other messages are lost.
    const lose = async (): Promise<number> => {
      let n = 0;
      for (let got = await receive(); got.length; got = await receive()) {
        await stack.aws.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: got[0].handle }));
        n++;
      }
      return n;
    };
    const [one] = await receive();
    await runBuildTask(planTaskDeps(deps()), one.msg);
    await stack.aws.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: one.handle }));
    expect(await lose()).toBe(2);
    expect((await planObjects()).length).toBeGreaterThan(0);

    // Not stalled yet: nothing happens.
    await buildIndex(deps(), 'stall', { force: true });
    expect(await lose()).toBe(0);
    for (let redrive = 1; redrive <= policy.MAX_REDRIVES; redrive++) {
      clock += policy.STALL_MS + 1;
      expect(await buildIndex(deps(), 'stall', { force: true })).toMatchObject({ reason: 'planned' });
      expect(await store.get('stall', 'main')).toMatchObject({ planId, redrives: redrive });
      expect(await lose()).toBe(2); // only the unfinished tasks are re-sent
    }
    clock += policy.STALL_MS + 1;
    await buildIndex(deps(), 'stall', { force: true });
    expect(await store.get('stall', 'main')).toBeUndefined();
    expect(await planObjects()).toEqual([]);
    // The next build plans again, from scratch.
    await buildIndex(deps(), 'stall', { force: true });
    expect((await store.get('stall', 'main'))?.planId).not.toBe(planId);
    await drain();
    expect((await stack.catalog.listManifests('stall', 1))[0].stats.liveRows).toBe(1500);
  }, 180_000);

  it("builds a line in one invocation at a time: a second finds it busy, a dead holder's lease expires", async () => {
    await core.createCollection({ name: 'lease', dimension: 128, metric: 'l2' });
    await upsertAll('lease', rows(0, 300));
    // Two invocations at once (the tick and a queued build): one builds, the other reads the head and leaves.
    const both = await Promise.all([
      buildIndex(deps(), 'lease', { force: true }),
      buildIndex(deps(), 'lease', { force: true }),
    ]);
    expect(both.map((r) => r.reason ?? 'built').sort()).toEqual(['built', 'busy']);
    expect(both.find((r) => r.built)).toMatchObject({ version: 1 });
    // Released after the build: the next one builds.
    await upsertAll('lease', rows(300, 400));
    expect(await buildIndex(deps(), 'lease', { force: true })).toMatchObject({ built: true, version: 2 });
    // A holder that died keeps the line until its lease runs out, then it is taken over.
    expect(await store.claimLine('lease', 'main', 'dead', clock, 60_000)).toBe(true);
    await upsertAll('lease', rows(400, 500));
    expect(await buildIndex(deps(), 'lease', { force: true })).toMatchObject({ built: false, reason: 'busy' });
    clock += 61_000;
    expect(await buildIndex(deps(), 'lease', { force: true })).toMatchObject({ built: true, version: 3 });
    // The dead holder's late release does not free the new holder's lease.
    expect(await store.claimLine('lease', 'main', 'live', clock, 60_000)).toBe(true);
    await store.releaseLine('lease', 'main', 'dead');
    expect(await store.claimLine('lease', 'main', 'other', clock, 60_000)).toBe(false);
    await store.releaseLine('lease', 'main', 'live');
    // A local restart drops the leases of the ended run (its invocations are all dead), and only them.
    expect(await store.claimLine('lease', 'main', 'ended run', clock, 60_000)).toBe(true);
    expect(await dropBuildLeases(stack.aws.ddb, 'catalog')).toBe(1);
    expect(await store.claimLine('lease', 'main', 'new run', clock, 60_000)).toBe(true);
    expect(await store.get('lease', 'main')).toBeUndefined();
    expect(await core.getCollection('lease')).toMatchObject({ name: 'lease' });
    await store.releaseLine('lease', 'main', 'new run');
  });

  it('a forced build (POST …/index) waits for a line another builder holds instead of dropping it', async () => {
    await core.createCollection({ name: 'waits', dimension: 128, metric: 'l2' });
    await upsertAll('waits', rows(0, 300));
    // A policy build of an upsert's wake-up holds the line (and will decide there is too little to build).
    expect(await store.claimLine('waits', 'main', 'policy build', clock, 60_000)).toBe(true);
    const forced = new Indexer(deps()).buildNow('waits');
    await new Promise((r) => setTimeout(r, 300));
    await store.releaseLine('waits', 'main', 'policy build');
    // The forced request still builds every row written before it.
    expect(await forced).toMatchObject({ built: true, version: 1, watermark: 300 });
  });
});
