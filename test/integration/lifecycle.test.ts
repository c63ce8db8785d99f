/**
 * Lifecycle (docs/architecture.md §8) against the embedded emulators: aliases (CAS, history, rollback,
 * namespace), pinned versions in search, the garbage collector keeping pinned objects,
 * evaluation on real data (SIFT), quality gates, the model registry and model bindings.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ShoalCore } from '../../shared/core.js';
import {
  ConflictError,
  ModelMismatchError,
  NotFoundError,
  QualityGateError,
  ValidationError,
} from '../../shared/errors.js';
import { BUILD_POLICY } from '../../shared/indexing/builder.js';
import { loadDataset } from '../../shared/io/datasets.js';
import type { Indexer } from '../../shared/indexing/indexer.js';
import { LifecycleCore } from '../../shared/lifecycle/service.js';
import { S3ObjectStore } from '../../shared/storage/s3-objects.js';
import { lifecycleCores, searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

let stack: EmulatedStack;
let core: ShoalCore;
let life: LifecycleCore;
let indexer: Indexer;
let objects: S3ObjectStore;
let clock = Date.now();
const alice = { actor: 'alice' };
const bob = { actor: 'key:0123456789ab' };

const vectors = (n: number, dim: number, seed: number, prefix = 'v') => vectorInputs(n, dim, seed, prefix);

const query = searchInput;

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-life', now: () => clock });
  objects = stack.objects;
  ({ core, life, indexer } = lifecycleCores(stack, () => clock));
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

beforeEach(() => {
  clock += 10 * 60_000;
});

describe('aliases', () => {
  it('creates, moves with CAS (stale revision → 409), records history, rolls back in one call', async () => {
    await core.createCollection({ name: 'ca', dimension: 4, metric: 'l2' });
    await core.createCollection({ name: 'cb', dimension: 4, metric: 'l2' });
    await core.upsert('ca', [{ id: 'in-a', values: new Float32Array([1, 0, 0, 0]) }]);
    await core.upsert('cb', [{ id: 'in-b', values: new Float32Array([1, 0, 0, 0]) }]);
    const q = query(new Float32Array([1, 0, 0, 0]), { k: 1 });

    const created = await life.putAlias('shop', { collection: 'ca', expectedRevision: 0, reason: 'launch' }, alice);
    expect(created).toMatchObject({
      created: true,
      alias: { name: 'shop', collection: 'ca', version: null, revision: 1, experiment: null },
    });
    expect((await core.search('shop', q)).servedBy).toEqual({ collection: 'ca', version: 0, alias: 'shop' });
    await expect(life.putAlias('shop', { collection: 'cb', expectedRevision: 0 }, bob)).rejects.toBeInstanceOf(
      ConflictError,
    );

    const moved = await life.putAlias('shop', { collection: 'cb', expectedRevision: 1, reason: 'new embedding' }, bob);
    expect(moved).toMatchObject({ created: false, alias: { collection: 'cb', revision: 2 } });
    // The very next request sees the move.
    expect((await core.search('shop', q)).results[0][0].id).toBe('in-b');
    // A stale revision is refused and changes nothing.
    const stale = await life
      .putAlias('shop', { collection: 'ca', expectedRevision: 1 }, alice)
      .catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(ConflictError);
    expect((stale as ConflictError).details).toMatchObject({ expectedRevision: 1, currentRevision: 2 });
    expect((await life.getAlias('shop')).collection).toBe('cb');

    const back = await life.rollbackAlias('shop', { reason: 'bad clicks' }, alice);
    expect(back).toMatchObject({ collection: 'ca', revision: 3 });
    expect((await core.search('shop', q)).results[0][0].id).toBe('in-a');

    const history = await life.aliasHistory('shop');
    expect(
      history.map((h) => [h.revision, h.action, h.by, h.from?.collection ?? null, h.to.collection, h.reason]),
    ).toEqual([
      [3, 'rollback', 'alice', 'cb', 'ca', 'bad clicks'],
      [2, 'move', 'key:0123456789ab', 'ca', 'cb', 'new embedding'],
      [1, 'create', 'alice', null, 'ca', 'launch'],
    ]);
    expect((await life.listAliases()).map((a) => a.name)).toContain('shop');
    // Reads through the alias: get collection, vectors, versions.
    expect(await core.getCollection('shop')).toMatchObject({ name: 'ca', alias: { name: 'shop', revision: 3 } });
    expect((await core.getVectors('shop', ['in-a'])).map((v) => v.id)).toEqual(['in-a']);
    expect(await core.listVersions('shop')).toEqual([]);
  });

  it('shares one namespace with collections, deletes, and never shows an old incarnation’s history', async () => {
    await core.createCollection({ name: 'ns', dimension: 4, metric: 'l2' });
    await expect(life.putAlias('ns', { collection: 'ns' }, alice)).rejects.toBeInstanceOf(ConflictError);
    await life.putAlias('ns-alias', { collection: 'ns' }, alice);
    await expect(core.createCollection({ name: 'ns-alias', dimension: 4, metric: 'l2' })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await expect(life.putAlias('ns-x', { collection: 'missing' }, alice)).rejects.toBeInstanceOf(NotFoundError);
    await expect(life.rollbackAlias('ns-alias', {}, alice)).rejects.toBeInstanceOf(ConflictError);
    await life.putAlias('ns-alias', { collection: 'ns', reason: 'again' }, alice);
    await expect(life.deleteAlias('ns-alias', alice, 1)).rejects.toBeInstanceOf(ConflictError);
    await life.deleteAlias('ns-alias', alice);
    await expect(life.getAlias('ns-alias')).rejects.toBeInstanceOf(NotFoundError);
    await expect(core.search('ns-alias', query(new Float32Array(4)))).rejects.toBeInstanceOf(NotFoundError);
    await life.putAlias('ns-alias', { collection: 'ns', reason: 'reborn' }, bob);
    expect((await life.aliasHistory('ns-alias')).map((h) => h.reason)).toEqual(['reborn']);
  });

  it('a failed concurrent move writes no history: exactly one of two racing moves wins', async () => {
    await core.createCollection({ name: 'race', dimension: 4, metric: 'l2' });
    await life.putAlias('racer', { collection: 'race' }, alice);
    const results = await Promise.allSettled(
      [1, 2, 3].map((i) => life.putAlias('racer', { collection: 'race', expectedRevision: 1, reason: `r${i}` }, alice)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const history = await life.aliasHistory('racer');
    expect(history).toHaveLength(2);
    expect(history[0].revision).toBe(2);
  });
});

describe('pinned versions and garbage collection', () => {
  it('serves a pinned version as a snapshot (eventual and strong alike) and GC keeps its objects', async () => {
    await core.createCollection({ name: 'pin', dimension: 8, metric: 'l2' });
    const v1 = vectors(50, 8, 7);
    await core.upsert('pin', v1);
    await indexer.buildNow('pin');
    const v1Keys = (await core.listVersions('pin'))[0].shards.map((s) => s.key);
    // Replace every row, in several versions, so version 1's shards end up unreferenced by the newest ones.
    for (let round = 0; round < BUILD_POLICY.KEEP_VERSIONS + 1; round++) {
      await core.upsert('pin', vectors(50, 8, 100 + round));
      await indexer.buildNow('pin');
    }
    const latest = (await core.listVersions('pin'))[0].version;
    expect(latest).toBe(BUILD_POLICY.KEEP_VERSIONS + 2);
    await life.putAlias('pinned', { collection: 'pin', version: 1 }, alice);
    const eventual = await core.search('pinned', query(v1[5].values, { consistency: 'eventual', k: 1 }));
    expect(eventual.servedBy).toEqual({ collection: 'pin', version: 1, alias: 'pinned' });
    expect(eventual.results[0][0]).toMatchObject({ id: 'v5', score: 0 });
    // A pinned version is a snapshot: strong reads do not add later writes to it.
    const strong = await core.search('pinned', query(v1[5].values, { k: 1 }));
    expect(strong.servedBy.version).toBe(1);
    expect(strong.results[0][0]).toMatchObject({ id: 'v5', score: 0 });
    expect((await core.search('pin', query(v1[5].values, { k: 1 }))).results[0][0].score).toBeGreaterThan(0); // unpinned: the newer v5
    const direct = await core.search('pin', query(v1[5].values, { consistency: 'eventual', k: 1 }));
    expect(direct.servedBy.version).toBe(latest);

    clock += 2 * BUILD_POLICY.GC_GRACE_MS;
    // S3 lastModified is real time: collect with a clock far in the future.
    const gcCore = indexer as unknown as { deps: { now?: () => number } };
    const saved = gcCore.deps.now;
    gcCore.deps.now = () => Date.now() + 2 * BUILD_POLICY.GC_GRACE_MS;
    try {
      const deleted = await indexer.collectGarbage('pin');
      expect(deleted.length).toBeGreaterThan(0);
      for (const k of v1Keys) expect(deleted).not.toContain(k);
      expect(
        (await core.search('pinned', query(v1[5].values, { consistency: 'eventual', k: 1 }))).results[0][0].id,
      ).toBe('v5');
      // Unpinned: version 1's objects go.
      await life.putAlias('pinned', { collection: 'pin' }, alice);
      const second = await indexer.collectGarbage('pin');
      for (const k of v1Keys) expect(second).toContain(k);
    } finally {
      gcCore.deps.now = saved;
    }
  });
});

describe('evaluation and quality gates', () => {
  it('evaluates a version on SIFT (recall near 1 at high ef, lower at ef=1), stores it, and gates alias moves', async () => {
    const ds = loadDataset('sift5k', { maxBase: 2000, maxQueries: 20 });
    const dim = ds.dim;
    await core.createCollection({
      name: 'sift',
      dimension: dim,
      metric: 'l2',
      index: { m: 8, efConstruction: 64 },
      minRecall: 0.9,
    });
    for (let s = 0; s < 2000; s += 500) {
      await core.upsert(
        'sift',
        Array.from({ length: 500 }, (_, i) => ({
          id: String(s + i),
          values: ds.base.slice((s + i) * dim, (s + i + 1) * dim),
        })),
      );
    }
    await indexer.buildNow('sift');
    // Not evaluated yet: refused.
    const refused = await life.putAlias('vec', { collection: 'sift' }, alice).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QualityGateError);
    expect((refused as QualityGateError).details).toMatchObject({
      collection: 'sift',
      version: 1,
      minRecall: 0.9,
      recall: null,
      evaluated: false,
    });

    const good = await life.evaluateVersion('sift', 1, { sample: 50, k: 10, ef: 200 }, alice);
    expect(good).toMatchObject({
      collection: 'sift',
      version: 1,
      k: 10,
      queries: 50,
      source: 'sample',
      rows: 2000,
      by: 'alice',
    });
    expect(good.recall).toBeGreaterThanOrEqual(0.95);
    expect(good.latencyMs.p50).toBeGreaterThan(0);
    expect(good.latencyMs.p95).toBeGreaterThanOrEqual(good.latencyMs.p50);
    const supplied = await life.evaluateVersion(
      'sift',
      1,
      {
        queries: Array.from({ length: 20 }, (_, i) => ds.queries.slice(i * dim, (i + 1) * dim)),
        sample: 100,
        k: 10,
        ef: 1,
      },
      alice,
    );
    expect(supplied.source).toBe('supplied');
    expect(supplied.recall).toBeLessThan(good.recall);
    // The latest evaluation (poor, ef=1) is stored and shown with the version: the gate refuses.
    const versions = await core.listVersions('sift');
    expect(versions[0].evaluation).toMatchObject({ version: 1, recall: supplied.recall });
    const low = await life.putAlias('vec', { collection: 'sift' }, alice).catch((e: unknown) => e);
    expect(low).toBeInstanceOf(QualityGateError);
    expect((low as QualityGateError).details).toMatchObject({
      recall: supplied.recall,
      minRecall: 0.9,
      evaluated: true,
    });
    // force overrides, and the history says so.
    await life.putAlias('vec', { collection: 'sift', force: true, reason: 'hotfix' }, alice);
    expect((await life.aliasHistory('vec'))[0]).toMatchObject({ forced: true });
    // Re-evaluated at a good ef: accepted without force.
    await life.evaluateVersion('sift', 1, { sample: 50, k: 10, ef: 200 }, alice);
    await life.putAlias('vec', { collection: 'sift', version: 1 }, alice);
    // The gate can be lifted.
    expect((await life.updateCollection('sift', { minRecall: null })).minRecall).toBeUndefined();

    // Auto-tuning picks the cheapest ef meeting the target and makes it the collection default.
    const tuned = await life.tuneVersion('sift', 1, { targetRecall: 0.9, k: 10 }, alice);
    expect(tuned.tuning?.chosenEf).toBeDefined();
    expect(tuned.tuning!.table[tuned.tuning!.table.length - 1].recall).toBeGreaterThanOrEqual(0.9);
    expect((await core.getCollection('sift')).index.efSearch).toBe(tuned.tuning!.chosenEf);
  });
});

describe('model registry', () => {
  it('registers versions, verifies sha256 on commit, stays immutable, compares, aliases, binds collections', async () => {
    const artifact = new TextEncoder().encode('weights v1');
    const sha = createHash('sha256').update(artifact).digest('hex');
    const { model: v1 } = await life.registerModelVersion(
      'enc',
      {
        dimension: 4,
        metric: 'cosine',
        framework: 'onnx',
        params: { pooling: 'mean' },
        metrics: { mrr: 0.5 },
        tags: { team: 'a' },
        artifact,
      },
      alice,
    );
    expect(v1).toMatchObject({
      name: 'enc',
      version: 1,
      state: 'pending',
      artifact: { key: 'models/enc/1/artifact' },
      createdBy: 'alice',
    });
    const wrong = await life.commitModelVersion('enc', 1, 'a'.repeat(64)).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ValidationError);
    expect((wrong as ValidationError).details).toMatchObject({ actual: sha });
    const ready = await life.commitModelVersion('enc', 1, sha);
    expect(ready).toMatchObject({ state: 'ready', artifact: { sha256: sha, bytes: artifact.byteLength } });
    expect(await life.commitModelVersion('enc', 1, sha)).toMatchObject({ state: 'ready' }); // idempotent
    await expect(life.commitModelVersion('enc', 1, 'b'.repeat(64))).rejects.toBeInstanceOf(ConflictError);
    await expect(life.uploadModelArtifact('enc', 1, new Uint8Array([1]))).rejects.toBeInstanceOf(ConflictError);

    // Version 2 uploads separately; commit without an upload is a conflict.
    const { model: v2 } = await life.registerModelVersion(
      'enc',
      { dimension: 8, metric: 'cosine', params: { pooling: 'cls' }, metrics: { mrr: 0.6 }, tags: { team: 'a' } },
      bob,
    );
    expect(v2.version).toBe(2);
    await expect(life.commitModelVersion('enc', 2, sha)).rejects.toBeInstanceOf(ConflictError);
    const bytes2 = new TextEncoder().encode('weights v2');
    await life.uploadModelArtifact('enc', 2, bytes2);
    const sha2 = createHash('sha256').update(bytes2).digest('hex');
    const ready2 = await life.commitModelVersion('enc', 2, sha2);
    // Committed: the artifact now lives at its content-addressed key (the staging key is dropped).
    expect(ready2.artifact.key).toBe(`models/enc/2/${sha2}`);
    expect(new TextDecoder().decode(await objects.get(ready2.artifact.key))).toBe('weights v2');

    const diff = await life.compareModelVersions('enc', 1, 2);
    expect(diff).toMatchObject({
      dimension: { a: 4, b: 8 },
      metric: null,
      params: { pooling: { a: 'mean', b: 'cls' } },
      tags: {},
    });
    expect(diff.metrics.mrr.delta).toBeCloseTo(0.1, 6);
    expect((await life.listModels()).find((m) => m.name === 'enc')).toEqual({ name: 'enc', versions: 2, latest: 2 });

    await life.putModelAlias('enc', 'prod', { version: 1 }, alice);
    await life.putModelAlias('enc', 'prod', { version: 2, expectedRevision: 1, reason: 'better mrr' }, alice);
    expect(await life.getModelAlias('enc', 'prod')).toEqual({ name: 'prod', model: 'enc', version: 2, revision: 2 });
    expect((await life.modelAliasHistory('enc', 'prod')).map((h) => (h.to as { version: number }).version)).toEqual([
      2, 1,
    ]);
    expect((await life.getModel('enc')).aliases).toEqual([{ name: 'prod', version: 2, revision: 2 }]);

    // Bindings: dimension/metric must match; upserts claiming another model version are refused.
    await expect(
      core.createCollection({ name: 'bound', dimension: 8, metric: 'cosine', model: { name: 'enc', version: 1 } }),
    ).rejects.toMatchObject({
      field: 'dimension',
    });
    await core.createCollection({ name: 'bound', dimension: 4, metric: 'cosine', model: { name: 'enc', version: 1 } });
    expect((await core.getCollection('bound')).model).toEqual({ name: 'enc', version: 1 });
    const vs = vectors(3, 4, 9);
    const mismatch = await core
      .upsert('bound', vs, { modelVersion: { name: 'enc', version: 2 } })
      .catch((e: unknown) => e);
    expect(mismatch).toBeInstanceOf(ModelMismatchError);
    expect((mismatch as ModelMismatchError).field).toBe('modelVersion.version');
    expect(await core.upsert('bound', vs, { modelVersion: { name: 'enc', version: 1 } })).toEqual({ upserted: 3 });
    // Lineage: the index version records the model version its vectors come from.
    await indexer.buildNow('bound');
    const [built] = await core.listVersions('bound');
    expect(built).toMatchObject({
      version: 1,
      parent: 0,
      model: { name: 'enc', version: 1 },
      codeVersion: 'test',
      engine: 'hnsw',
    });
  });
});
