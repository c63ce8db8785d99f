/**
 * Candidate index lines (docs/architecture.md §8.5) against the embedded emulators: building with new
 * params starts a candidate that the same builder runs keep up to date (upserts and
 * deletes), that serves only when promoted or pinned, whose promotion is gated by recall
 * and reversible, and whose lag holds back tombstone purging (so a promotion can never
 * resurrect deleted rows).
 */
import { DeleteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ShoalCore } from '../../shared/core.js';
import { HNSW_DEFAULTS } from '../../shared/engine/hnsw.js';
import {
  ConflictError,
  LimitExceededError,
  NotFoundError,
  QualityGateError,
  ValidationError,
} from '../../shared/errors.js';
import { loadDataset } from '../../shared/io/datasets.js';
import { Indexer } from '../../shared/indexing/indexer.js';
import { LifecycleCore } from '../../shared/lifecycle/service.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import type { SearchInput, VectorInput } from '../../shared/service.js';
import type { Catalog, Manifest } from '../../shared/storage/types.js';
import { lifecycleCores, searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { collectionKey } from '../../shared/storage/keys.js';

let stack: EmulatedStack;
let core: ShoalCore;
let life: LifecycleCore;
let indexer: Indexer;
let clock = Date.now();
const alice = { actor: 'alice' };

const sift = loadDataset('sift5k', { maxBase: 2000, maxQueries: 5 });
const row = (i: number): Float32Array => sift.base.slice(i * sift.dim, (i + 1) * sift.dim);
const inputs = (from: number, to: number): VectorInput[] =>
  Array.from({ length: to - from }, (_, j) => ({
    id: `s${from + j}`,
    values: row(from + j),
    metadata: { n: from + j },
  }));
const query = (v: Float32Array, extra: Partial<SearchInput> = {}): SearchInput =>
  searchInput(v, { k: 1, consistency: 'eventual', ...extra });

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-cand', now: () => clock });
  ({ core, life, indexer } = lifecycleCores(stack, () => clock));
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

beforeEach(() => {
  clock += 10 * 60_000;
});

/** An indexer whose catalog refuses to commit manifests of one line (as if it lost every race). */
function indexerRefusing(line: string): Indexer {
  const refusing: Catalog = Object.create(stack.catalog) as Catalog;
  refusing.commitManifest = async (m: Manifest) => (m.line === line ? false : stack.catalog.commitManifest(m));
  const cache = new ShardCache({ objects: stack.objects, memoryBytes: 64 * 2 ** 20 });
  return new Indexer({
    catalog: refusing,
    records: stack.records,
    objects: stack.objects,
    cache,
    codeVersion: 'test',
    now: () => clock,
    lifecycle: stack.lifecycle,
  });
}

describe('candidate index lines', () => {
  it(
    'tracks writes beside the serving line, ' +
      'serves only when promoted or pinned, and promotes behind the recall gate',
    async () => {
      // A deliberately weak serving index: tiny graph, tiny efSearch.
      await core.createCollection({
        name: 'items',
        dimension: sift.dim,
        metric: 'l2',
        index: { m: 4, efConstruction: 8, efSearch: 2 },
      });
      await core.upsert('items', inputs(0, 1500));
      const v1 = await indexer.buildNow('items');
      expect(v1).toMatchObject({ built: true, version: 1, kind: 'initial' });

      // Bad requests first: nothing is added.
      await expect(
        core.buildIndex('items', { index: { m: 4, efConstruction: 8, efSearch: 2 } }),
      ).rejects.toBeInstanceOf(ValidationError);
      await expect(core.buildIndex('items', { index: { m: 4, efConstruction: 8, efSearch: 64 } })).rejects.toThrow(
        /efSearch and nprobe are search-time parameters/,
      );
      await expect(core.buildIndex('items', { candidate: 'x' })).rejects.toMatchObject({ field: 'candidate' });
      await expect(core.buildIndex('items', { index: { m: 16 }, candidate: 'Bad Name' })).rejects.toMatchObject({
        field: 'candidate',
      });
      expect((await core.listLines('items')).candidates).toEqual([]);

      const queued = await core.buildIndex('items', { index: { m: 16, efConstruction: 100, efSearch: 64 } }, alice);
      const line = queued.candidate!.line;
      expect(line).toMatch(/^cand-[0-9a-f]{8}$/);
      expect(queued).toMatchObject({
        queued: true,
        version: 1,
        candidate: {
          serving: false,
          head: null,
          createdBy: 'alice',
          index: { engine: 'hnsw', m: 16, efConstruction: 100, efSearch: 64 },
        },
      });
      // The same settings again name the same candidate: 409, not a second line.
      await expect(
        core.buildIndex('items', { index: { m: 16, efConstruction: 100, efSearch: 64 } }),
      ).rejects.toBeInstanceOf(ConflictError);

      // The builder run builds the candidate from the serving head (nothing new to index in the serving line).
      const first = await indexer.buildNow('items');
      expect(first).toMatchObject({ built: false, reason: 'up-to-date', version: 1 });
      expect(first.candidates).toEqual([expect.objectContaining({ line, built: true, kind: 'candidate', version: 2 })]);
      const [v2] = await core.listVersions('items');
      expect(v2).toMatchObject({
        version: 2,
        line,
        parent: 1,
        params: { m: 16, efConstruction: 100, efSearch: 64 },
        stats: { liveRows: 1500 },
      });

      // Unpinned reads still get the serving line.
      const served = await core.search('items', query(row(7)));
      expect(served.servedBy).toEqual({ collection: 'items', version: 1 });

      // New writes and deletes reach both lines in the same run.
      await core.upsert('items', inputs(1500, 1600));
      await core.deleteVectors('items', { ids: ['s1', 's2', 's3', 's1550'] });
      const second = await indexer.buildNow('items');
      expect(second).toMatchObject({ built: true, version: 3, kind: 'delta' });
      expect(second.candidates).toEqual([expect.objectContaining({ line, built: true, kind: 'delta', version: 4 })]);
      const { serving, candidates } = await core.listLines('items');
      expect(serving).toMatchObject({ line: 'main', serving: true, head: { version: 3, liveRows: 1596 }, lagSeq: 0 });
      expect(candidates).toEqual([
        expect.objectContaining({
          line,
          head: expect.objectContaining({ version: 4, parent: 2, liveRows: 1596 }),
          lagSeq: 0,
        }),
      ]);

      // Pinned through an alias, the candidate serves (a snapshot of that version) without promotion.
      await life.putAlias('items-next', { collection: 'items', version: 4 }, alice);
      const pinned = await core.search('items-next', query(row(1550), { consistency: 'strong' }));
      expect(pinned.servedBy).toEqual({ collection: 'items', version: 4, line, alias: 'items-next' });
      expect(pinned.results[0][0].id).not.toBe('s1550');

      // The gate: with minRecall set, promotion needs an evaluation of the candidate line that reaches it.
      await life.updateCollection('items', { minRecall: 0.9 });
      await expect(core.promoteCandidate('items', line, {}, alice)).rejects.toBeInstanceOf(QualityGateError);
      const weak = await life.evaluateVersion('items', 3, { sample: 50, k: 10 }, alice);
      const strong = await life.evaluateVersion('items', 4, { sample: 50, k: 10 }, alice);
      expect(weak.ef).toBe(2);
      expect(strong.ef).toBe(64);
      expect(strong.recall).toBeGreaterThanOrEqual(0.9);
      expect(weak.recall).toBeLessThan(strong.recall);
      expect((await core.getCandidate('items', line)).evaluation).toMatchObject({
        version: 4,
        recall: strong.recall,
        k: 10,
      });

      const promoted = await core.promoteCandidate('items', line, { reason: 'better recall' }, alice);
      expect(promoted).toMatchObject({
        collection: 'items',
        previous: 'main',
        forced: false,
        serving: { line, serving: true, head: { version: 4 } },
      });
      const after = await core.search('items', query(row(1599)));
      expect(after.servedBy).toEqual({ collection: 'items', version: 4, line });
      expect(after.results[0][0].id).toBe('s1599');
      expect(await core.getCollection('items')).toMatchObject({
        indexLine: line,
        candidates: ['main'],
        index: { m: 16, efConstruction: 100, efSearch: 64 },
      });

      // The old serving line keeps tracking as a candidate; promoting it back is refused by the gate, unless forced.
      await core.upsert('items', inputs(1600, 1650));
      const third = await indexer.buildNow('items');
      expect(third).toMatchObject({ built: true, version: 5 });
      expect(third.candidates).toEqual([expect.objectContaining({ line: 'main', built: true, version: 6 })]);
      await expect(core.promoteCandidate('items', 'main', {}, alice)).rejects.toMatchObject({
        code: 'QUALITY_GATE',
        details: { recall: weak.recall, version: 3 },
      });
      const back = await core.promoteCandidate('items', 'main', { force: true, reason: 'rollback drill' }, alice);
      expect(back).toMatchObject({
        previous: line,
        forced: true,
        serving: { line: 'main', head: { version: 6, liveRows: 1646 } },
      });
      expect((await core.search('items', query(row(1640)))).servedBy).toEqual({ collection: 'items', version: 6 });

      // Every switch is recorded: who, when, from, to, why, forced, the version served.
      const { promotions } = await core.listLines('items');
      expect(promotions).toEqual([
        expect.objectContaining({
          from: line,
          to: 'main',
          version: 6,
          forced: true,
          by: 'alice',
          reason: 'rollback drill',
        }),
        expect.objectContaining({
          from: 'main',
          to: line,
          version: 4,
          forced: false,
          by: 'alice',
          reason: 'better recall',
        }),
      ]);
      expect(promotions[0].rev).toBeGreaterThan(promotions[1].rev);
      // A history item lost with a crashed request still shows, from the collection's lastPromotion.
      const ddb = (stack.catalog as unknown as { ddb: DynamoDBDocumentClient }).ddb;
      await ddb.send(
        new DeleteCommand({
          TableName: 'catalog',
          Key: { pk: 'COL#items', sk: `PROMO#${String(promotions[0].rev).padStart(10, '0')}` },
        }),
      );
      expect((await core.listLines('items')).promotions).toEqual(promotions);

      // Deleting the candidate stops its builds; its pinned version stays servable.
      await core.deleteCandidate('items', line);
      await expect(core.deleteCandidate('items', line)).rejects.toBeInstanceOf(NotFoundError);
      await core.upsert('items', inputs(1650, 1660));
      const fourth = await indexer.buildNow('items');
      expect(fourth.candidates).toBeUndefined();
      expect((await core.search('items-next', query(row(7)))).servedBy).toMatchObject({ version: 4, line });
    },
  );

  it('keeps tombstones a lagging candidate still needs, so promoting it cannot resurrect deletes', async () => {
    await core.createCollection({ name: 'lag', dimension: sift.dim, metric: 'l2', index: { m: 8 } });
    await core.upsert('lag', inputs(0, 300));
    await indexer.buildNow('lag');
    const { candidate } = await core.buildIndex('lag', { index: { engine: 'flat' }, candidate: 'exact' }, alice);
    expect(candidate?.line).toBe('exact');
    await indexer.buildNow('lag'); // the candidate's first version, at the serving watermark

    // The candidate falls behind: its commits fail while the serving line indexes deletes.
    await core.deleteVectors('lag', { ids: ['s10', 's11', 's12'] });
    const lagging = await indexerRefusing('exact').buildNow('lag');
    expect(lagging).toMatchObject({ built: true, kind: 'deletes' });
    expect(lagging.candidates).toEqual([expect.objectContaining({ line: 'exact', built: false, reason: 'lost-race' })]);
    const meta = await stack.catalog.getCollection('lag');
    const kept = await stack.records.get(collectionKey(meta), ['s10', 's11', 's12']);
    expect([...kept.values()].map((r) => r.deleted)).toEqual([true, true, true]);
    expect((await core.getCandidate('lag', 'exact')).lagSeq).toBeGreaterThan(0);

    // Promoted while lagging, strong reads still hide the deleted rows (the tombstones are in its tail).
    await core.promoteCandidate('lag', 'exact', {}, alice);
    const hit = await core.search('lag', query(row(10), { consistency: 'strong' }));
    expect(hit.servedBy.line).toBe('exact');
    expect(hit.results[0][0].id).not.toBe('s10');

    // Once every line has caught up, the tombstones are purged.
    await indexer.buildNow('lag');
    expect((await core.listLines('lag')).candidates[0]).toMatchObject({ line: 'main', lagSeq: 0 });
    expect((await stack.records.get(collectionKey(meta), ['s10', 's11', 's12'])).size).toBe(0);
    for (const consistency of ['eventual', 'strong'] as const) {
      expect((await core.search('lag', query(row(11), { consistency }))).results[0][0].id).not.toBe('s11');
    }
  });

  it('graph tuning sweeps m × efConstruction on a sample and starts the recommendation as a candidate', async () => {
    await core.createCollection({
      name: 'tuned',
      dimension: sift.dim,
      metric: 'l2',
      index: { m: 4, efConstruction: 8 },
    });
    await core.upsert('tuned', inputs(0, 1200));
    await indexer.buildNow('tuned');
    const ev = await life.tuneVersion(
      'tuned',
      1,
      { targetRecall: 0.95, k: 10, graph: { sample: 800, candidate: true } },
      alice,
    );
    const graph = ev.tuning!.graph!;
    expect(graph).toMatchObject({ sample: 800 });
    expect(graph.table.map((t) => [t.m, t.efConstruction])).toEqual([
      [8, 64],
      [8, 200],
      [16, 64],
      [16, 200],
      [32, 64],
      [32, 200],
    ]);
    const rec = graph.table.find(
      (t) => t.m === graph.recommendation.m && t.efConstruction === graph.recommendation.efConstruction,
    )!;
    expect(rec).toMatchObject({ meetsTarget: true, pareto: true, ef: graph.recommendation.efSearch });
    // Nothing meeting the target does less search work than the recommendation.
    for (const t of graph.table) if (t.meetsTarget) expect(t.searchCost).toBeGreaterThanOrEqual(rec.searchCost);
    expect(graph.table.some((t) => !t.pareto)).toBe(true);
    const line = await core.getCandidate('tuned', graph.candidate!);
    // The candidate keeps the efSearch the tuned version served with (the sample's ef is optimistic at full size).
    expect(line.index).toEqual({
      engine: 'hnsw',
      m: rec.m,
      efConstruction: rec.efConstruction,
      efSearch: HNSW_DEFAULTS.efSearch,
      seed: expect.any(Number),
    });
    // Stored with the version, and the built candidate reaches the target on the full data too.
    expect((await stack.lifecycle.getEvaluation('tuned', 1))?.tuning?.graph?.recommendation).toEqual(
      graph.recommendation,
    );
    const built = await indexer.buildNow('tuned');
    const head = built.candidates![0].version;
    expect((await life.evaluateVersion('tuned', head, { sample: 50, k: 10 }, alice)).recall).toBeGreaterThanOrEqual(
      0.9,
    );

    // Asking again starts nothing twice: the same name → 409, and nothing of the tune is stored.
    clock += 1000;
    await expect(
      life.tuneVersion(
        'tuned',
        1,
        { targetRecall: 0.95, k: 10, graph: { sample: 800, candidate: graph.candidate } },
        alice,
      ),
    ).rejects.toBeInstanceOf(ConflictError);
    expect((await stack.lifecycle.getEvaluation('tuned', 1))?.evaluatedAt).toBe(ev.evaluatedAt);
  });

  it('limits candidates per collection and validates settings', async () => {
    await core.createCollection({ name: 'few', dimension: 4, metric: 'l2' });
    await core.buildIndex('few', { index: { m: 8 } });
    await core.buildIndex('few', { index: { engine: 'flat' } });
    await expect(core.buildIndex('few', { index: { m: 32 } })).rejects.toBeInstanceOf(LimitExceededError);
    await expect(core.buildIndex('few', { index: { engine: 'flat', m: 8 } })).rejects.toMatchObject({ field: 'index' });
    await expect(core.promoteCandidate('few', 'nope', {})).rejects.toBeInstanceOf(NotFoundError);
    const lines = await core.listLines('few');
    expect(lines.candidates.map((c) => c.index.engine).sort()).toEqual(['flat', 'hnsw']);
    // Not built yet: nothing to promote.
    await expect(core.promoteCandidate('few', lines.candidates[0].line, {})).rejects.toBeInstanceOf(ConflictError);
    expect(lines.promotions).toEqual([]);
  });

  it('an alias can follow a candidate line (tracking writes), and an experiment can challenge with it', async () => {
    await core.createCollection({ name: 'fol', dimension: 4, metric: 'l2' });
    const unit = (i: number) => new Float32Array([i, 0, 0, 0]);
    await core.upsert(
      'fol',
      Array.from({ length: 20 }, (_, i) => ({ id: `f${i}`, values: unit(i) })),
    );
    await indexer.buildNow('fol');
    await core.buildIndex('fol', { index: { engine: 'flat' }, candidate: 'exact' });
    const built = await indexer.buildNow('fol');
    const head = built.candidates![0].version;

    const { alias } = await life.putAlias('fol-next', { collection: 'fol', line: 'exact' }, alice);
    expect(alias).toMatchObject({ collection: 'fol', version: null, line: 'exact' });
    expect((await core.search('fol-next', query(unit(3)))).servedBy).toEqual({
      collection: 'fol',
      version: head,
      line: 'exact',
      alias: 'fol-next',
    });
    // Unlike a pinned version, a followed line tracks writes: strong reads at once, its next version after a build.
    await core.upsert('fol', [{ id: 'new', values: unit(100) }]);
    expect((await core.search('fol-next', query(unit(100), { consistency: 'strong' }))).results[0][0].id).toBe('new');
    const next = (await indexer.buildNow('fol')).candidates![0].version;
    expect(next).toBeGreaterThan(head);
    const eventual = await core.search('fol-next', query(unit(100)));
    expect(eventual.servedBy.version).toBe(next);
    expect(eventual.results[0][0].id).toBe('new');

    // Champion: the serving line; challenger: the candidate line.
    await life.putAlias('fol-live', { collection: 'fol' }, alice);
    await expect(
      life.startExperiment('fol-live', { challenger: { collection: 'fol', line: 'nope' }, mode: 'split' }, alice),
    ).rejects.toMatchObject({ field: 'line' });
    const e = await life.startExperiment(
      'fol-live',
      {
        challenger: { collection: 'fol', line: 'exact' },
        mode: 'split',
        weight: 50,
        guardrails: { maxP95Ratio: 1000 },
      },
      alice,
    );
    const arms = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const out = await core.search('fol-live', query(unit(5), { stickyKey: `u${i}` }));
      arms.add(`${out.servedBy.arm}:${out.servedBy.line ?? 'main'}`);
    }
    expect([...arms].sort()).toEqual(['challenger:exact', 'champion:main']);
    await life.abortExperiment('fol-live', {}, alice);
    expect(e.experiment.challenger).toEqual({ collection: 'fol', line: 'exact' });

    // A deleted line is gone for its followers too (404 naming the line), not silently the serving one.
    await core.deleteCandidate('fol', 'exact');
    await expect(core.search('fol-next', query(unit(3)))).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'line' });
    // The deleted line's version is the newest manifest now; the collection still serves its own line.
    const [newest] = await core.listVersions('fol');
    expect(newest.line).toBe('exact');
    const served = await core.search('fol', query(unit(3)));
    expect(served.servedBy).toEqual({
      collection: 'fol',
      version: (await core.listLines('fol')).serving.head!.version,
    });
    expect(served.servedBy.version).toBeLessThan(newest.version);
  });

  it('forgets promotions with the collection (a re-created one starts with none)', async () => {
    await core.createCollection({ name: 'again', dimension: 4, metric: 'l2' });
    await core.upsert('again', [{ id: 'a', values: new Float32Array([1, 0, 0, 0]) }]);
    await core.buildIndex('again', { index: { engine: 'flat' }, candidate: 'exact' });
    await indexer.buildNow('again');
    await core.promoteCandidate('again', 'exact', {});
    expect((await core.listLines('again')).promotions).toHaveLength(1);
    await core.deleteCollection('again');
    await core.createCollection({ name: 'again', dimension: 4, metric: 'l2' });
    expect(await core.listLines('again')).toMatchObject({ serving: { line: 'main' }, candidates: [], promotions: [] });
  });
});
