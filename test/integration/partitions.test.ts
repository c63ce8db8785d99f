/**
 * Partitioned (IVF) collections on the emulators (docs/architecture.md §5.6): layout by k-means,
 * routing by nprobe, the filter planner probing more partitions, deltas into partitions, splits,
 * merges, the switch from unpartitioned to partitioned, and tuning (nprobe, ef) on real data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFilter } from '../../shared/filter/index.js';
import { buildIndex, collectGarbage, type BuilderDeps } from '../../shared/indexing/builder.js';
import { loadDataset, type Dataset } from '../../shared/io/datasets.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import type { VectorInput } from '../../shared/service.js';
import { assignPartition, type IVF_POLICY } from '../../shared/engine/ivf.js';
import { TUNE_CEILING_EF } from '../../shared/lifecycle/evaluation.js';
import { lifecycleCores, searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import type { ShoalCore } from '../../shared/core.js';
import type { LifecycleCore } from '../../shared/lifecycle/service.js';

let stack: EmulatedStack;
let core: ShoalCore;
let life: LifecycleCore;
let sift: Dataset;
let clock = Date.now();
const now = (): number => clock;

function row(ds: Dataset, i: number): Float32Array {
  return ds.base.slice(i * ds.dim, (i + 1) * ds.dim);
}

function rows(ds: Dataset, from: number, to: number, prefix = ''): VectorInput[] {
  return Array.from({ length: to - from }, (_, j) => ({
    id: `${prefix}${from + j}`,
    values: row(ds, from + j),
    metadata: { i: from + j },
  }));
}

async function upsertAll(collection: string, inputs: VectorInput[]): Promise<void> {
  for (let i = 0; i < inputs.length; i += 500) await core.upsert(collection, inputs.slice(i, i + 500));
}

function builder(ivfPolicy: Partial<typeof IVF_POLICY> = {}): BuilderDeps {
  return {
    catalog: stack.catalog,
    records: stack.records,
    objects: stack.objects,
    cache: new ShardCache({ objects: stack.objects, memoryBytes: 256 * 2 ** 20 }),
    codeVersion: 'test',
    now,
    ivfPolicy,
  };
}

/** Recall@k of eventual searches of the dataset's held-out queries against its ground truth. */
async function recallOf(collection: string, queries: number, nprobe?: number): Promise<number> {
  let hits = 0;
  for (let q = 0; q < queries; q++) {
    const vector = sift.queries.slice(q * sift.dim, (q + 1) * sift.dim);
    const out = await core.search(collection, searchInput(vector, { k: 10, consistency: 'eventual', nprobe }));
    const truth = new Set(Array.from(sift.groundTruth!.subarray(q * sift.gtK!, q * sift.gtK! + 10), String));
    hits += out.results[0].filter((h) => truth.has(h.id)).length;
  }
  return hits / (queries * 10);
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-partitions', now });
  ({ core, life } = lifecycleCores(stack, now));
  sift = loadDataset('sift5k', { maxQueries: 200 });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('a partitioned collection on real data (SIFT 4,500 × 128)', () => {
  it('lays out k-means partitions, routes by nprobe, and tunes (nprobe, ef) to a recall target', async () => {
    await core.createCollection({
      name: 'sift',
      dimension: sift.dim,
      metric: 'l2',
      index: { m: 16, efConstruction: 100, partitions: 16 },
    });
    await upsertAll('sift', rows(sift, 0, sift.baseCount));
    const built = await buildIndex(builder(), 'sift', { force: true });
    expect(built).toMatchObject({ built: true, kind: 'initial', version: 1 });

    const [manifest] = await stack.catalog.listManifests('sift', 1);
    expect(manifest.partitions).toMatchObject({ count: 16, dim: 128, fairShare: Math.ceil(4500 / 16) });
    expect(manifest.shards.every((s) => s.partition !== undefined && s.partition < 16)).toBe(true);
    expect(new Set(manifest.shards.map((s) => s.partition)).size).toBe(16);
    expect(manifest.stats.liveRows).toBe(4500);
    expect((await core.getCollection('sift')).stats).toMatchObject({ partitions: 16, indexed: 4500 });

    // One probe searches only that partition's shards; all probes search every shard.
    const q0 = sift.queries.slice(0, sift.dim);
    const one = await core.search('sift', searchInput(q0, { k: 10, consistency: 'eventual', nprobe: 1 }));
    expect(one.stats).toMatchObject({ partitionsProbed: 1, partitionsTotal: 16, nprobe: 1, shardsTotal: 16 });
    expect(one.stats.shardsSearched).toBe(1);
    const all = await core.search('sift', searchInput(q0, { k: 10, consistency: 'eventual', nprobe: 16 }));
    expect(all.stats).toMatchObject({ shardsSearched: 16, partitionsProbed: 16 });

    const everyPartition = await recallOf('sift', 100, 16);
    const fewPartitions = await recallOf('sift', 100, 1);
    expect(everyPartition).toBeGreaterThan(0.97);
    // A single probe misses neighbours across partition borders: routing really restricts the search.
    expect(fewPartitions).toBeLessThan(everyPartition - 0.05);

    const tuned = await life.tuneVersion('sift', 1, { targetRecall: 0.97, k: 10 }, { actor: 'test' });
    const chosen = tuned.tuning!.chosenNprobe!;
    expect(chosen).toBeGreaterThanOrEqual(1);
    expect(chosen).toBeLessThanOrEqual(16);
    expect(tuned.tuning!.table.every((r) => r.nprobe !== undefined)).toBe(true);
    // The sweep bisects between grid steps: at the ceiling ef every smaller nprobe measured missed the
    // target, and the grid's 8 → 12 gap, when crossed, was split (10 measured).
    const ceiling = tuned.tuning!.table.filter((r) => r.ef === TUNE_CEILING_EF);
    for (const r of ceiling) expect(r.recall >= 0.97).toBe(r.nprobe! >= chosen);
    if (chosen > 8 && chosen <= 12) expect(ceiling.map((r) => r.nprobe)).toContain(10);
    expect((await core.getCollection('sift')).index).toMatchObject({
      nprobe: chosen,
      efSearch: tuned.tuning!.chosenEf,
    });
    // Searches without nprobe now use the tuned value, and on held-out queries reach ≥ 0.95.
    const def = await core.search('sift', searchInput(q0, { k: 10, consistency: 'eventual' }));
    expect(def.stats.nprobe).toBe(chosen);
    expect(await recallOf('sift', 200)).toBeGreaterThanOrEqual(0.95);
  }, 240_000);

  it('keeps "exactly k when ≥ k match" under a selective filter by probing more partitions', async () => {
    // 12 rows match (i < 12), spread over the partitions: one probe cannot hold 10 of them.
    const filter = parseFilter('i < 12');
    const out = await core.search(
      'sift',
      searchInput(sift.queries.slice(0, sift.dim), { k: 10, consistency: 'eventual', nprobe: 1, filter }),
    );
    expect(out.results[0]).toHaveLength(10);
    expect(out.results[0].every((h) => Number(h.id) < 12)).toBe(true);
    expect(out.stats.partitionsProbed!).toBeGreaterThan(1);
  });

  it('applies deletes and updates across partitions, before and after the next build', async () => {
    // Row 5 moves far away (into another partition); rows 10–19 are deleted.
    const moved = row(sift, 4000);
    await core.upsert('sift', [{ id: '5', values: moved, metadata: { i: 5 } }]);
    await core.deleteVectors('sift', { ids: Array.from({ length: 10 }, (_, j) => String(10 + j)) });
    const check = async (): Promise<void> => {
      const hit = await core.search('sift', searchInput(moved, { k: 2, nprobe: 2 }));
      expect(hit.results[0].map((h) => h.id).sort()).toEqual(['4000', '5']);
      const old = await core.search('sift', searchInput(row(sift, 12), { k: 5, nprobe: 16 }));
      expect(old.results[0].map((h) => h.id)).not.toContain('12');
      const gone = await core.search('sift', searchInput(row(sift, 5), { k: 3, nprobe: 16 }));
      expect(gone.results[0][0]?.id).not.toBe('5');
    };
    await check();
    const built = await buildIndex(builder(), 'sift', { force: true });
    expect(built).toMatchObject({ built: true, kind: 'delta' });
    const [manifest] = await stack.catalog.listManifests('sift', 1);
    expect(manifest.stats.liveRows).toBe(4490);
    expect(manifest.partitions!.count).toBe(16);
    await check();
    expect((await core.getCollection('sift')).stats).toMatchObject({ count: 4490, pending: 0 });
  }, 120_000);
});

describe('partition maintenance', () => {
  it('splits a partition that outgrew its share (only its rows move) and merges one that deletes emptied', async () => {
    const policy = { SPLIT_FACTOR: 2, SPLIT_MIN_ROWS: 0, MERGE_FRACTION: 0.25 };
    await core.createCollection({ name: 'grow', dimension: sift.dim, metric: 'l2', index: { partitions: 4 } });
    await upsertAll('grow', rows(sift, 0, 400));
    await buildIndex(builder(policy), 'grow', { force: true });
    const [v1] = await stack.catalog.listManifests('grow', 1);
    expect(v1.partitions).toMatchObject({ count: 4, fairShare: 100 });

    // 300 more real rows, all of the partition row 0 belongs to: it grows past 2 × its fair share.
    const centroids = await builder().cache.centroids(v1.partitions!);
    const target = assignPartition(centroids, 'l2', row(sift, 0));
    const crowd = rows(sift, 400, sift.baseCount, 'c')
      .filter((r) => assignPartition(centroids, 'l2', r.values) === target)
      .slice(0, 300);
    expect(crowd).toHaveLength(300);
    await upsertAll('grow', crowd);
    const split = await buildIndex(builder(policy), 'grow', { force: true });
    expect(split).toMatchObject({ built: true, kind: 'compaction' });
    const [v2] = await stack.catalog.listManifests('grow', 1);
    expect(v2.partitions!.count).toBe(5);
    expect(v2.partitions!.key).not.toBe(v1.partitions!.key);
    expect(v2.stats.liveRows).toBe(700);
    // Partitions the crowd did not reach kept their shards as they were.
    const grown = new Set(v2.shards.filter((s) => !v1.shards.some((o) => o.id === s.id)).map((s) => s.partition));
    expect(grown.size).toBe(2);
    for (const probe of [crowd[0], crowd[299], { id: '399', values: row(sift, 399) }]) {
      const out = await core.search('grow', searchInput(probe.values, { k: 1, consistency: 'eventual', nprobe: 5 }));
      expect(out.results[0][0].id).toBe(probe.id);
    }

    // Deleting nearly all of the smallest original partition dissolves it into its neighbours.
    const sizes = new Map<number, number>();
    for (const s of v2.shards) sizes.set(s.partition!, (sizes.get(s.partition!) ?? 0) + s.live);
    const [victim] = [...sizes].filter(([, n]) => n < 250).sort((a, b) => a[1] - b[1])[0];
    const doomed: string[] = [];
    const kept: string[] = [];
    for (const s of v2.shards.filter((x) => x.partition === victim)) {
      const shard = await builder().cache.shard(s);
      shard.ids.forEach((id, i) => (i < shard.count - 2 ? doomed : kept).push(id));
    }
    await core.deleteVectors('grow', { ids: doomed });
    await buildIndex(builder(policy), 'grow', { force: true });
    const [v3] = await stack.catalog.listManifests('grow', 1);
    expect(v3.partitions!.count).toBe(4);
    expect(v3.stats.liveRows).toBe(700 - doomed.length);
    for (const id of kept) {
      const values = (await core.getVectors('grow', [id]))[0].values!;
      const out = await core.search('grow', searchInput(Float32Array.from(values), { k: 1, nprobe: 4 }));
      expect(out.results[0][0].id).toBe(id);
    }

    // The collector keeps the centroid tables recent manifests name, and nothing else.
    clock += 2 * 60 * 60_000;
    const deleted = await collectGarbage(builder(), 'grow');
    expect(deleted.some((k) => k === v3.partitions!.key || k === v2.partitions!.key)).toBe(false);
  }, 180_000);

  it('lays out again at RELAYOUT_GROWTH × the rows of its layout, however many partitions splits added', async () => {
    // Prepare: 4 forced partitions over 400 rows (layoutRows 400), then a crowd that splits one (5 partitions).
    const policy = { SPLIT_FACTOR: 2, SPLIT_MIN_ROWS: 0, MERGE_FRACTION: 0, RELAYOUT_GROWTH: 4 };
    await core.createCollection({ name: 'regrow', dimension: sift.dim, metric: 'l2', index: { partitions: 4 } });
    await upsertAll('regrow', rows(sift, 0, 400));
    await buildIndex(builder(policy), 'regrow', { force: true });
    const [v1] = await stack.catalog.listManifests('regrow', 1);
    expect(v1.partitions).toMatchObject({ count: 4, fairShare: 100, layoutRows: 400 });
    const centroids = await builder().cache.centroids(v1.partitions!);
    const target = assignPartition(centroids, 'l2', row(sift, 0));
    const crowd = rows(sift, 400, sift.baseCount, 'c')
      .filter((r) => assignPartition(centroids, 'l2', r.values) === target)
      .slice(0, 300);
    await upsertAll('regrow', crowd);
    await buildIndex(builder(policy), 'regrow', { force: true });
    const [v2] = await stack.catalog.listManifests('regrow', 1);
    expect(v2.partitions).toMatchObject({ count: 5, fairShare: 100, layoutRows: 400 });

    // Act: 900 more rows make 1,600 = 4 × 400 (fairShare × count × 4 would be 2,000: not yet).
    await upsertAll('regrow', rows(sift, 3000, 3900, 'g'));
    const built = await buildIndex(builder(policy), 'regrow', { force: true });

    // Assess: a fresh k-means layout (the forced 4 partitions again), measured from its own rows.
    expect(built).toMatchObject({ built: true, kind: 'compaction' });
    const [v3] = await stack.catalog.listManifests('regrow', 1);
    expect(v3.stats.liveRows).toBe(1600);
    expect(v3.partitions).toMatchObject({ count: 4, fairShare: 400, layoutRows: 1600 });
  }, 180_000);

  it('compacts a partition tiered: small deltas merge among themselves until they outweigh the largest', async () => {
    const policy = { MAX_SHARDS_PER_PARTITION: 3, SPLIT_MIN_ROWS: 1e9 };
    await core.createCollection({ name: 'tiers', dimension: sift.dim, metric: 'l2', index: { partitions: 2 } });
    await upsertAll('tiers', rows(sift, 0, 1000));
    await buildIndex(builder(policy), 'tiers', { force: true });
    const [v1] = await stack.catalog.listManifests('tiers', 1);
    const bases = new Map(v1.shards.map((s) => [s.partition!, s]));
    expect(bases.size).toBe(2);

    // Six deltas of 30 rows: every partition gets a delta shard each time and passes 3 shards twice.
    let next = 1000;
    const kinds: unknown[] = [];
    for (let d = 0; d < 6; d++, next += 30) {
      await upsertAll('tiers', rows(sift, next, next + 30));
      kinds.push((await buildIndex(builder(policy), 'tiers', { force: true })).kind);
      const [head] = await stack.catalog.listManifests('tiers', 1);
      for (const [p, base] of bases) {
        const mine = head.shards.filter((s) => s.partition === p);
        expect(mine.length).toBeLessThanOrEqual(3);
        // The deltas never outweighed the base: it was never rewritten.
        expect(mine.some((s) => s.id === base.id)).toBe(true);
      }
    }
    const [v7] = await stack.catalog.listManifests('tiers', 1);
    expect(v7.stats.liveRows).toBe(next);
    expect(kinds).toEqual(['delta', 'delta', 'compaction', 'delta', 'compaction', 'delta']);

    // A delta larger than the partitions themselves becomes each partition's largest shard; the next
    // compaction merges the old base with the small deltas, and no row is lost on the way.
    await upsertAll('tiers', rows(sift, next, next + 2400));
    next += 2400;
    await buildIndex(builder(policy), 'tiers', { force: true });
    await upsertAll('tiers', rows(sift, next, next + 30));
    next += 30;
    await buildIndex(builder(policy), 'tiers', { force: true });
    await upsertAll('tiers', rows(sift, next, next + 30));
    next += 30;
    await buildIndex(builder(policy), 'tiers', { force: true });
    const [last] = await stack.catalog.listManifests('tiers', 1);
    expect(last.stats.liveRows).toBe(next);
    expect(last.shards.some((s) => [...bases.values()].some((b) => b.id === s.id))).toBe(false);
    for (const i of [0, 999, 1100, next - 1]) {
      const out = await core.search('tiers', searchInput(row(sift, i), { k: 1, consistency: 'eventual', nprobe: 2 }));
      expect(out.results[0][0].id).toBe(String(i));
    }
  }, 180_000);

  it('switches an unpartitioned collection to partitions once it reaches the threshold', async () => {
    const policy = { MIN_ROWS: 1000, TARGET_ROWS: 250 };
    await core.createCollection({ name: 'auto', dimension: sift.dim, metric: 'l2' });
    await upsertAll('auto', rows(sift, 0, 800));
    await buildIndex(builder(policy), 'auto', { force: true });
    const [v1] = await stack.catalog.listManifests('auto', 1);
    expect(v1.partitions).toBeUndefined();
    await upsertAll('auto', rows(sift, 800, 1200));
    expect(await buildIndex(builder(policy), 'auto', { force: true })).toMatchObject({ kind: 'compaction' });
    const [v2] = await stack.catalog.listManifests('auto', 1);
    expect(v2.partitions!.count).toBe(Math.ceil(1200 / 250));
    expect(v2.stats.liveRows).toBe(1200);
    const out = await core.search('auto', searchInput(row(sift, 1100), { k: 1 }));
    expect(out.results[0][0].id).toBe('1100');
    expect(out.stats.partitionsTotal).toBe(5);
  }, 120_000);
});
