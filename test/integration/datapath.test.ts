/**
 * The data path against the embedded emulators (real DynamoDB/S3 protocols, real SDK
 * clients): docs/architecture.md §3's rules as tests. Faults the emulators cannot produce (a crash
 * between upload and commit) are provoked by wrapping the real catalog.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ShoalCore, type CoreDeps } from '../../shared/core.js';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { parseFilter } from '../../shared/filter/index.js';
import { BUILD_POLICY, buildIndex } from '../../shared/indexing/builder.js';
import { Indexer } from '../../shared/indexing/indexer.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import { TailCache } from '../../shared/search/tail-cache.js';
import { searchShards, type ShardSearchRequest } from '../../shared/search/shard-searcher.js';
import { WRITE_LEASE_MS } from '../../shared/ingest/ingest.js';
import type { SearchInput, VectorInput } from '../../shared/service.js';
import { DynamoCatalog } from '../../shared/storage/dynamo-catalog.js';
import { DynamoRecordStore } from '../../shared/storage/dynamo-records.js';
import { S3ObjectStore } from '../../shared/storage/s3-objects.js';
import type { Catalog, RecordStore } from '../../shared/storage/types.js';
import { startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';
import { collectionKey } from '../../shared/storage/keys.js';

let stack: EmulatedStack;
let cacheDir: string;
let catalog: DynamoCatalog;
let records: DynamoRecordStore;
let objects: S3ObjectStore;
let wakes: string[];
let clock = Date.now();

/** A core and an indexer over the same dependencies (no lifecycle store: names are collections only). */
function makeServices(
  overrides: { catalog?: Catalog } & Partial<Pick<CoreDeps, 'tails' | 'slots' | 'scatter' | 'countBudgetMs'>> = {},
): {
  core: ShoalCore;
  indexer: Indexer;
} {
  const deps: CoreDeps = {
    catalog: overrides.catalog ?? catalog,
    records,
    objects,
    cache: new ShardCache({ objects, memoryBytes: 256 * 2 ** 20, diskDir: cacheDir, diskBytes: 256 * 2 ** 20 }),
    slots: overrides.slots ?? 1,
    ...(overrides.scatter ? { scatter: overrides.scatter, scatterMinBytes: 0 } : {}),
    tails: overrides.tails ?? new TailCache(overrides.catalog ?? catalog, records),
    ...(overrides.countBudgetMs !== undefined ? { countBudgetMs: overrides.countBudgetMs } : {}),
    codeVersion: 'test',
    now: () => clock,
    wake: async (c) => {
      wakes.push(c);
    },
  };
  return { core: new ShoalCore(deps), indexer: new Indexer(deps) };
}

const vectors = (n: number, dim: number, seed: number, prefix = 'v'): VectorInput[] =>
  vectorInputs(n, dim, seed, prefix, (i) => ({ i, parity: i % 2 === 0 ? 'even' : 'odd' }));

function query(v: Float32Array, extra: Partial<SearchInput> = {}): SearchInput {
  return { queries: [v], k: 5, consistency: 'strong', includeMetadata: true, includeValues: false, ...extra };
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-test', now: () => clock });
  ({ catalog, records, objects, cacheDir } = stack);
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

beforeEach(() => {
  wakes = [];
  clock += 10 * 60_000;
});

describe('write path and strong reads', () => {
  it('makes an acknowledged write visible to the next strong search, before any build', async () => {
    const { core } = makeServices();
    await core.createCollection({ name: 'fresh', dimension: 8, metric: 'cosine' });
    const vs = vectors(50, 8, 1);
    // Act
    await core.upsert('fresh', vs);
    const out = await core.search('fresh', query(vs[7].values));
    // Assess
    expect(out.results[0][0]).toMatchObject({ id: 'v7', metadata: { i: 7, parity: 'odd' } });
    expect(out.results[0][0].score).toBeCloseTo(1, 5);
    expect(out.servedBy).toEqual({ collection: 'fresh', version: 0 });
    expect(wakes).toEqual(['fresh']);
    expect((await core.getCollection('fresh')).stats).toMatchObject({ count: 50, pending: 50, indexed: 0, version: 0 });
  });

  it('upsert replaces, deletes by id and by filter disappear — in the tail and after builds', async () => {
    const { core, indexer } = makeServices();
    await core.createCollection({ name: 'mut', dimension: 8, metric: 'l2' });
    const vs = vectors(40, 8, 2);
    await core.upsert('mut', vs);
    await indexer.buildNow('mut');
    // Replace v3 with v10's vector: a search for v10's vector now finds both ids at distance 0.
    await core.upsert('mut', [{ id: 'v3', values: vs[10].values, metadata: { i: 3, parity: 'replaced' } }]);
    for (const phase of ['tail', 'built']) {
      if (phase === 'built') await indexer.buildNow('mut');
      const out = await core.search('mut', query(vs[10].values, { k: 2 }));
      expect(out.results[0].map((h) => h.id).sort()).toEqual(['v10', 'v3']);
      expect(out.results[0].find((h) => h.id === 'v3')?.metadata).toEqual({ i: 3, parity: 'replaced' });
      // The old v3 vector is gone: searching for it exactly no longer returns v3 first.
      const old = await core.search('mut', query(vs[3].values, { k: 1 }));
      expect(old.results[0][0].id).not.toBe('v3');
    }
    expect(await core.deleteVectors('mut', { ids: ['v10', 'nope'] })).toEqual({ deleted: 1 });
    expect(await core.deleteVectors('mut', { filter: parseFilter('parity == "even"')! })).toEqual({ deleted: 19 });
    for (const phase of ['tail', 'built']) {
      if (phase === 'built') expect((await indexer.buildNow('mut')).built).toBe(true);
      const out = await core.search('mut', query(vs[10].values, { k: 40 }));
      const ids = out.results[0].map((h) => h.id);
      expect(ids).not.toContain('v10');
      expect(ids.filter((id) => Number(id.slice(1)) % 2 === 0 && id !== 'v3')).toEqual([]);
      expect(ids).toHaveLength(20);
      expect(await core.getVectors('mut', ['v10', 'v1'])).toHaveLength(1);
    }
    expect((await core.getCollection('mut')).stats).toMatchObject({ count: 20, pending: 0 });
  });

  it('counts live rows across tail and shards exactly within its budget, else as a flagged upper bound', async () => {
    const { core, indexer } = makeServices();
    await core.createCollection({ name: 'counted', dimension: 8, metric: 'l2' });
    const vs = vectors(30, 8, 5);
    await core.upsert('counted', vs.slice(0, 15));
    await indexer.buildNow('counted');
    await core.upsert('counted', vs.slice(15));
    await indexer.buildNow('counted');
    // Tail: 5 indexed ids rewritten, 3 new ids, 4 indexed ids deleted (one in each shard), 1 unknown id deleted.
    await core.upsert('counted', [...vs.slice(0, 5), ...vectors(3, 8, 6, 'new')]);
    await core.deleteVectors('counted', { ids: ['v10', 'v11', 'v20', 'v21', 'nope'] });
    const exact = (await core.getCollection('counted')).stats!;
    expect(exact).toMatchObject({ count: 29, indexed: 30, shards: 2 });
    expect(exact.pending).toBeGreaterThanOrEqual(12);
    expect(exact).not.toHaveProperty('countExact');
    // No time to look: every tail upsert counts as new, no delete as of a live row.
    const hurried = (await makeServices({ countBudgetMs: -1 }).core.getCollection('counted')).stats;
    expect(hurried).toMatchObject({ count: 38, countExact: false });
  });

  it('sees a slow write that lands after later writes were already read (tail cache + leases)', async () => {
    const { core } = makeServices();
    await core.createCollection({ name: 'slow', dimension: 4, metric: 'l2' });
    const meta = await catalog.getCollection('slow');
    // A slow writer takes seqs first but has not written yet...
    const lease = await catalog.leaseSeqs('slow', 1, WRITE_LEASE_MS);
    // ...while a fast writer's later seqs land and are read by a strong search.
    await core.upsert('slow', [{ id: 'fast', values: new Float32Array([1, 0, 0, 0]) }]);
    const q = new Float32Array([0, 0, 0, 1]);
    expect((await core.search('slow', query(q, { k: 2 }))).results[0].map((h) => h.id)).toEqual(['fast']);
    // The slow write lands with its older seq and is acknowledged.
    await records.put([{ collection: collectionKey(meta), id: 'slow', seq: lease.first, vector: q, deleted: false }]);
    expect(await catalog.releaseSeqs('slow', lease)).toBe(true);
    // The next strong search must see it, though its seq is below one already read.
    expect((await core.search('slow', query(q, { k: 2 }))).results[0].map((h) => h.id)).toEqual(['slow', 'fast']);
  });

  it('reads a steady tail once: no log query while nothing new was written, then only the new write', async () => {
    let tailCalls = 0;
    let yielded = 0;
    // The real store, with its tail reads counted.
    const counting: RecordStore = Object.assign(Object.create(records) as RecordStore, {
      tail: (ck: string, after: number, upTo?: number, progress?: (seq: number) => void) => {
        tailCalls++;
        return (async function* () {
          for await (const batch of records.tail(ck, after, upTo, progress)) {
            yielded += batch.length;
            yield batch;
          }
        })();
      },
    });
    const { core } = makeServices({ tails: new TailCache(catalog, counting) });
    await core.createCollection({ name: 'steady', dimension: 8, metric: 'l2' });
    const vs = vectors(30, 8, 5);
    await core.upsert('steady', vs);
    // Act
    for (let i = 0; i < 3; i++) await core.search('steady', query(vs[i].values, { k: 3 }));
    const afterSteady = { tailCalls, yielded };
    await core.upsert('steady', [{ id: 'late', values: vs[4].values }]);
    const out = await core.search('steady', query(vs[4].values, { k: 2 }));
    // Assess
    expect(afterSteady).toEqual({ tailCalls: 1, yielded: 30 });
    expect({ tailCalls, yielded }).toEqual({ tailCalls: 2, yielded: 31 });
    expect(out.results[0].map((h) => h.id).sort()).toEqual(['late', 'v4']);
  });

  it('keeps exactly k when the tail supersedes every shard row near the query (in process and scattered)', async () => {
    const requests: ShardSearchRequest[] = [];
    const slotCaches = new Map<number, ShardCache>();
    const scattering = makeServices({
      slots: 3,
      scatter: async (slot, request) => {
        requests.push(request);
        if (!slotCaches.has(slot)) slotCaches.set(slot, new ShardCache({ objects, memoryBytes: 2 ** 28 }));
        return searchShards(slotCaches.get(slot)!, JSON.parse(JSON.stringify(request)) as ShardSearchRequest);
      },
    }).core;
    const { core, indexer } = makeServices();
    await core.createCollection({ name: 'crowd', dimension: 8, metric: 'l2', index: { engine: 'flat' } });
    for (let round = 0; round < 4; round++) {
      await core.upsert('crowd', vectors(25, 8, 40 + round, `c${round}-`));
      await indexer.buildNow('crowd');
    }
    const all = [0, 1, 2, 3].flatMap((round) => vectors(25, 8, 40 + round, `c${round}-`));
    const q = all[0].values;
    const dist = (v: Float32Array) => v.reduce((s, x, i) => s + (x - q[i]) ** 2, 0);
    const byDistance = [...all].sort((a, b) => dist(a.values) - dist(b.values));
    // The 30 rows nearest the query move far away: their shard rows are all superseded by the tail,
    // so a shard's over-fetched hits (k 5 → 15 at a 30 % tail) are all stale.
    const moved = byDistance.slice(0, 30).map((v) => ({ id: v.id, values: v.values.map((x) => x + 100) }));
    await core.upsert('crowd', moved);
    const expected = byDistance.slice(30, 35).map((v) => v.id);
    // Act
    const direct = await core.search('crowd', query(q));
    const gathered = await scattering.search('crowd', query(q));
    // Assess
    expect(direct.results[0].map((h) => h.id)).toEqual(expected);
    expect(gathered.results[0].map((h) => h.id)).toEqual(expected);
    // Shards were first asked without the tail's ids; only the slots that came back short got them.
    const first = requests.filter((r) => !r.exclude);
    expect(first.length).toBeGreaterThan(0);
    expect(first.every((r) => r.k === 15)).toBe(true);
    expect(requests.filter((r) => r.exclude).every((r) => r.k === 5 && r.exclude!.length === 30)).toBe(true);
    expect(requests.some((r) => r.exclude)).toBe(true);
  });

  it('validates dimensions and names the field, writing nothing', async () => {
    const { core } = makeServices();
    await core.createCollection({ name: 'dims', dimension: 4, metric: 'ip' });
    const bad = [
      { id: 'a', values: new Float32Array(4) },
      { id: 'b', values: new Float32Array(3) },
    ];
    const err = await core.upsert('dims', bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('vectors[1].values');
    expect(await core.getVectors('dims', ['a', 'b'])).toEqual([]);
    await expect(core.createCollection({ name: 'dims', dimension: 4, metric: 'ip' })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await expect(core.search('nope', query(new Float32Array(4)))).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('index builder', () => {
  it('serves from shards after a build, with eventual reads skipping the tail', async () => {
    const { core, indexer } = makeServices();
    await core.createCollection({ name: 'built', dimension: 16, metric: 'l2' });
    const vs = vectors(300, 16, 3);
    await core.upsert('built', vs);
    const b = await indexer.buildNow('built');
    expect(b).toMatchObject({ built: true, version: 1, shards: 1 });
    await core.upsert('built', vectors(5, 16, 4, 'late'));
    const eventual = await core.search(
      'built',
      query(vectors(5, 16, 4, 'late')[0].values, { consistency: 'eventual', k: 1 }),
    );
    expect(eventual.results[0][0].id).not.toBe('late0');
    const strong = await core.search('built', query(vectors(5, 16, 4, 'late')[0].values, { k: 1 }));
    expect(strong.results[0][0].id).toBe('late0');
    expect(strong.servedBy.version).toBe(1);
    const versions = await core.listVersions('built');
    expect(versions.map((v) => v.version)).toEqual([1]);
    expect(versions[0]).toMatchObject({
      parent: 0,
      engine: 'hnsw',
      codeVersion: 'test',
      stats: { kind: 'initial', liveRows: 300 },
    });
  });

  it('scatters shards over searcher slots (stable assignment) and gathers the same answers', async () => {
    const calls: Array<{ slot: number; shards: string[] }> = [];
    const slotCaches = new Map<number, ShardCache>();
    const scattering = new ShoalCore({
      catalog,
      records,
      objects,
      cache: new ShardCache({ objects, memoryBytes: 2 ** 28 }),
      slots: 3,
      scatterMinBytes: 0,
      codeVersion: 'test',
      now: () => clock,
      wake: async () => undefined,
      // Each slot searches with its own cache, as a separate searcher function would.
      scatter: async (slot, request) => {
        calls.push({ slot, shards: request.shards.map((s) => s.id) });
        if (!slotCaches.has(slot)) slotCaches.set(slot, new ShardCache({ objects, memoryBytes: 2 ** 28 }));
        return searchShards(slotCaches.get(slot)!, JSON.parse(JSON.stringify(request)));
      },
    });
    const { core, indexer } = makeServices();
    await core.createCollection({ name: 'scatter', dimension: 8, metric: 'l2' });
    for (let round = 0; round < 4; round++) {
      await core.upsert('scatter', vectors(50, 8, 300 + round, `s${round}-`));
      await indexer.buildNow('scatter');
    }
    const q = vectors(1, 8, 302, 's2-')[0].values;
    const direct = await core.search('scatter', query(q, { k: 10, consistency: 'eventual' }));
    const gathered = await scattering.search('scatter', query(q, { k: 10, consistency: 'eventual' }));
    expect(gathered.results).toEqual(direct.results);
    expect(gathered.results[0][0].id).toBe('s2-0');
    const shardCount = (await core.getCollection('scatter')).stats?.shards ?? 0;
    expect(calls.flatMap((c) => c.shards)).toHaveLength(shardCount);
    // The same shard goes to the same slot every time (each slot keeps its own cache warm).
    await scattering.search('scatter', query(q, { k: 10, consistency: 'eventual' }));
    const bySlot = (list: typeof calls) => new Map(list.map((c) => [c.slot, c.shards.join(',')]));
    expect(bySlot(calls.slice(calls.length / 2))).toEqual(bySlot(calls.slice(0, calls.length / 2)));
  });

  it('two racing builders commit one version and lose nothing', async () => {
    const a = makeServices();
    const b = makeServices();
    await a.core.createCollection({ name: 'race', dimension: 8, metric: 'cosine' });
    const vs = vectors(200, 8, 5);
    await a.core.upsert('race', vs);
    // Act
    const [ra, rb] = await Promise.all([a.indexer.buildNow('race'), b.indexer.buildNow('race')]);
    // Assess
    expect([ra.built, rb.built].sort()).toEqual([false, true]);
    expect((await a.core.listVersions('race')).map((v) => v.version)).toEqual([1]);
    for (const i of [0, 57, 199]) {
      const out = await b.core.search('race', query(vs[i].values, { k: 1, consistency: 'eventual' }));
      expect(out.results[0][0].id).toBe(`v${i}`);
    }
  });

  it('is idempotent under duplicate wake-ups and catches up on a lost one via the tick policy', async () => {
    const { core, indexer } = makeServices();
    await core.createCollection({ name: 'wake', dimension: 8, metric: 'l2' });
    await core.upsert('wake', vectors(30, 8, 6));
    await indexer.buildNow('wake');
    await core.upsert('wake', vectors(10, 8, 7, 'n'));
    // Duplicate wake-ups right away: the tail is small and the version fresh, nothing to do.
    expect((await indexer.maybeBuild('wake')).reason).toBe('waiting-for-more');
    expect((await indexer.maybeBuild('wake')).reason).toBe('waiting-for-more');
    // The wake-up was lost; later the tick runs: the tail is old enough now.
    clock += BUILD_POLICY.DELTA_MAX_AGE_MS + 1;
    expect(await indexer.maybeBuild('wake')).toMatchObject({ built: true, version: 2 });
    expect(await indexer.maybeBuild('wake')).toMatchObject({ built: false, reason: 'up-to-date', version: 2 });
    expect((await core.getCollection('wake')).stats).toMatchObject({ count: 40, indexed: 40, pending: 0, shards: 2 });
  });

  it('loses nothing when the builder crashes between shard upload and manifest commit', async () => {
    const crashing: Catalog = Object.create(catalog) as Catalog;
    crashing.commitManifest = async () => {
      throw new Error('process killed');
    };
    const { core, indexer } = makeServices();
    await core.createCollection({ name: 'crash', dimension: 8, metric: 'l2' });
    const vs = vectors(60, 8, 8);
    await core.upsert('crash', vs);
    await expect(makeServices({ catalog: crashing }).indexer.buildNow('crash')).rejects.toThrow('process killed');
    // Nothing committed: searches still see every write through the tail.
    expect((await core.search('crash', query(vs[5].values, { k: 1 }))).results[0][0].id).toBe('v5');
    expect((await core.getCollection('crash')).stats?.version).toBe(0);
    // The next build succeeds; the orphaned upload is collected after the grace period.
    expect(await indexer.buildNow('crash')).toMatchObject({ built: true, version: 1 });
    clock += BUILD_POLICY.GC_GRACE_MS + 60_000;
    const keys: string[] = [];
    for await (const page of objects.list('shards/crash@')) keys.push(...page.map((o) => o.key));
    const manifest = (await core.listVersions('crash'))[0];
    const orphans = keys.filter((k) => !manifest.shards.some((s) => s.key === k));
    const collected = await indexer.collectGarbage('crash');
    expect(collected.sort()).toEqual(orphans.sort());
    expect((await core.search('crash', query(vs[5].values, { k: 1, consistency: 'eventual' }))).results[0][0].id).toBe(
      'v5',
    );
  });

  it('compacts many delta shards into fewer, keeping every live row', async () => {
    const { core } = makeServices();
    await core.createCollection({ name: 'compact', dimension: 8, metric: 'l2' });
    const all: VectorInput[] = [];
    for (let round = 0; round < BUILD_POLICY.MAX_SHARDS + 1; round++) {
      const vs = vectors(20, 8, 100 + round, `r${round}-`);
      all.push(...vs);
      await core.upsert('compact', vs);
      await buildIndex(
        {
          catalog,
          records,
          objects,
          cache: new ShardCache({ objects, memoryBytes: 2 ** 28 }),
          codeVersion: 'test',
          now: () => clock,
        },
        'compact',
        {
          force: true,
        },
      );
    }
    const latest = (await core.listVersions('compact'))[0];
    expect(latest.stats.kind).toBe('compaction');
    expect(latest.shards.length).toBeLessThanOrEqual(BUILD_POLICY.COMPACT_TO + 1);
    expect(latest.stats.liveRows).toBe(all.length);
    for (const v of [all[0], all[137], all[all.length - 1]]) {
      const out = await core.search('compact', {
        ...query(v.values, { k: 1, consistency: 'eventual' }),
        includeMetadata: false,
      });
      expect(out.results[0][0].id).toBe(v.id);
    }
  });
});
