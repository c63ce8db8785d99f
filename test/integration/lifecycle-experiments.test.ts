/**
 * Champion/challenger experiments on an alias against the embedded emulators: one running
 * experiment per alias, split stickiness, shadow mode never changing the response, feedback
 * attribution through queryId, promote (history), abort, guardrail auto-abort (error rate:
 * a challenger whose collection is gone; p95 latency: an exact `flat` challenger against an
 * HNSW champion over real SIFT vectors), and the sequential test's running state persisting
 * across reads.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ShoalCore } from '../../shared/core.js';
import { ConflictError, ValidationError } from '../../shared/errors.js';
import { loadDataset } from '../../shared/io/datasets.js';
import { chooseArm, msprtLook } from '../../shared/lifecycle/experiment-stats.js';
import type { Indexer } from '../../shared/indexing/indexer.js';
import { LifecycleCore } from '../../shared/lifecycle/service.js';
import type { SearchInput } from '../../shared/service.js';
import { lifecycleCores, searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { mulberry32, randomVectors, vectorInputs } from '../helpers/random.js';

let stack: EmulatedStack;
let core: ShoalCore;
let life: LifecycleCore;
let indexer: Indexer;
let clock = Date.now();
const alice = { actor: 'alice' };
const bob = { actor: 'key:0123456789ab' };

const vectors = (n: number, dim: number, seed: number, prefix = 'v') => vectorInputs(n, dim, seed, prefix);

const query = searchInput;

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-exp', now: () => clock });
  ({ core, life, indexer } = lifecycleCores(stack, () => clock));
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

beforeEach(() => {
  clock += 10 * 60_000;
});

const DIM = 8;
const qv = (seed: number): Float32Array => randomVectors(mulberry32(seed), 1, DIM);

async function twoCollections(a: string, b: string): Promise<void> {
  await core.createCollection({ name: a, dimension: DIM, metric: 'l2' });
  await core.createCollection({ name: b, dimension: DIM, metric: 'l2' });
  // The same ids, different "embeddings": results overlap only partly.
  await core.upsert(a, vectors(40, DIM, 1, 'item-'));
  await core.upsert(b, vectors(40, DIM, 2, 'item-'));
}

describe('experiments', () => {
  it('split: one running experiment per alias, sticky arms, queryIds, feedback attribution, results, promote', async () => {
    await twoCollections('ea', 'eb');
    await life.putAlias('exp', { collection: 'ea', reason: 'launch' }, alice);
    const plain = await core.search('exp', query(qv(1)));
    expect(plain.queryId).toMatch(/^[0-9a-f-]{36}$/);
    expect(plain.servedBy).toEqual({ collection: 'ea', version: 0, alias: 'exp' });

    await core.createCollection({ name: 'e16', dimension: 16, metric: 'l2' });
    await expect(
      life.startExperiment('exp', { challenger: { collection: 'e16' }, mode: 'split' }, alice),
    ).rejects.toBeInstanceOf(ValidationError);
    const started = await life.startExperiment(
      'exp',
      { challenger: { collection: 'eb' }, mode: 'split', weight: 50, overlapSample: 1 },
      alice,
    );
    const id = started.experiment.id;
    expect(started.experiment).toMatchObject({
      state: 'running',
      mode: 'split',
      weight: 50,
      champion: { collection: 'ea' },
      challenger: { collection: 'eb' },
    });
    expect(started.experiment.guardrails).toEqual({ maxErrorRateDelta: 0.05, maxP95Ratio: 1.5, minSamples: 100 });
    expect((await life.getAlias('exp')).experiment).toMatchObject({ id, mode: 'split', state: 'running' });
    await expect(
      life.startExperiment('exp', { challenger: { collection: 'eb' }, mode: 'shadow' }, bob),
    ).rejects.toBeInstanceOf(ConflictError);

    // Stickiness: the same key always gets the same arm, and the arm decides the collection.
    const keys = Array.from({ length: 12 }, (_, i) => `user-${i}`);
    const seen = new Set<string>();
    for (const key of keys) {
      const arm = chooseArm(id, key, 50);
      for (let r = 0; r < 2; r++) {
        const out = await core.search('exp', query(qv(r), { stickyKey: key }));
        expect(out.servedBy).toMatchObject({
          arm,
          experiment: id,
          collection: arm === 'champion' ? 'ea' : 'eb',
          alias: 'exp',
        });
        seen.add(arm);
      }
    }
    expect(seen).toEqual(new Set(['champion', 'challenger']));

    // Feedback goes to the arm that served the queryId; repeated clicks count once per query in the rate.
    const challengerKey = keys.find((k) => chooseArm(id, k, 50) === 'challenger')!;
    const onB = await core.search('exp', query(qv(7), { stickyKey: challengerKey }));
    expect(await life.feedback({ queryId: onB.queryId!, id: onB.results[0][0].id, event: 'click' })).toEqual({
      attributed: true,
      experiment: id,
      alias: 'exp',
      arm: 'challenger',
    });
    await life.feedback({ queryId: onB.queryId!, id: onB.results[0][1].id, event: 'click' });
    await life.feedback({ queryId: onB.queryId!, id: onB.results[0][0].id, event: 'convert' });
    expect(await life.feedback({ queryId: plain.queryId!, id: 'x', event: 'click' })).toEqual({ attributed: false });
    expect(await life.feedback({ queryId: 'nope', id: 'x', event: 'click' })).toEqual({ attributed: false });

    const res = await life.getExperiment('exp');
    const { champion, challenger } = res.arms;
    expect(champion.requests + challenger.requests).toBe(25);
    expect(challenger.clicks).toBe(2);
    expect(challenger.clickRate.successes).toBe(1);
    expect(challenger.convertRate).toMatchObject({ successes: 1, trials: challenger.requests });
    expect(champion.clickRate).toMatchObject({ successes: 0, trials: champion.requests, rate: 0 });
    expect(challenger.clickRate.ci95![0]).toBeLessThan(challenger.clickRate.rate!);
    expect(champion.errorRate).toBe(0);
    expect(champion.latencyMs.p95).toBeGreaterThan(0);
    expect(res.overlapAtK.samples).toBe(25);
    expect(res.overlapAtK.mean).toBeGreaterThanOrEqual(0);
    expect(res.overlapAtK.mean).toBeLessThan(1);
    // 25 requests: the z-test has a value, the sequential test has not looked yet (< 30 trials per arm).
    expect(res.tests.click).toMatchObject({
      fixedHorizon: { z: expect.any(Number), p: expect.any(Number) },
      sequential: { p: 1, ci95: [-1, 1] },
      verdict: 'inconclusive',
    });

    // Promote: the alias moves through a recorded `promote` move; the experiment is over.
    const promoted = await life.promoteExperiment('exp', {}, bob);
    expect(promoted.experiment).toMatchObject({
      state: 'promoted',
      reason: `experiment ${id} promoted`,
      endedBy: bob.actor,
    });
    const history = await life.aliasHistory('exp');
    expect(history[0]).toMatchObject({
      action: 'promote',
      by: bob.actor,
      from: { collection: 'ea' },
      to: { collection: 'eb' },
      reason: `experiment ${id} promoted`,
    });
    expect(await life.getAlias('exp')).toMatchObject({ collection: 'eb', experiment: null });
    const after = await core.search('exp', query(qv(1), { stickyKey: challengerKey }));
    expect(after.servedBy).toEqual({ collection: 'eb', version: 0, alias: 'exp' });
    await expect(life.promoteExperiment('exp', {}, bob)).rejects.toBeInstanceOf(ConflictError);
    // Results of the ended experiment stay readable.
    expect((await life.getExperiment('exp')).experiment.state).toBe('promoted');
  }, 30_000);

  it('abort leaves the alias unchanged; a manual move aborts the running experiment', async () => {
    await twoCollections('fa', 'fb');
    await life.putAlias('exp2', { collection: 'fa' }, alice);
    const e = await life.startExperiment(
      'exp2',
      { challenger: { collection: 'fb' }, mode: 'split', weight: 99 },
      alice,
    );
    const aborted = await life.abortExperiment('exp2', { reason: 'not now' }, bob);
    expect(aborted.experiment).toMatchObject({ id: e.experiment.id, state: 'aborted', reason: 'not now' });
    expect(await life.getAlias('exp2')).toMatchObject({ collection: 'fa', revision: 1, experiment: null });
    expect((await core.search('exp2', query(qv(3), { stickyKey: 'k' }))).servedBy).toEqual({
      collection: 'fa',
      version: 0,
      alias: 'exp2',
    });
    await expect(life.abortExperiment('exp2', {}, bob)).rejects.toBeInstanceOf(ConflictError);

    const again = await life.startExperiment('exp2', { challenger: { collection: 'fb' }, mode: 'split' }, alice);
    expect(again.experiment.id).not.toBe(e.experiment.id);
    await life.putAlias('exp2', { collection: 'fb' }, alice);
    expect((await life.getExperiment('exp2')).experiment).toMatchObject({
      state: 'aborted',
      reason: expect.stringMatching(/alias moved/),
    });
  }, 30_000);

  it('shadow: the champion answers unchanged, the challenger is measured; a failing challenger trips the guardrail', async () => {
    await twoCollections('ga', 'gb');
    await core.createCollection({ name: 'gc', dimension: DIM, metric: 'l2' });
    await life.putAlias('exp3', { collection: 'ga' }, alice);
    const e = await life.startExperiment(
      'exp3',
      { challenger: { collection: 'gb' }, mode: 'shadow', guardrails: { minSamples: 3, maxP95Ratio: 1000 } },
      alice,
    );
    for (let i = 0; i < 4; i++) {
      const direct = await core.search('ga', query(qv(i)));
      const via = await core.search('exp3', query(qv(i)));
      expect(via.results).toEqual(direct.results);
      expect(via.servedBy).toMatchObject({ collection: 'ga', arm: 'champion', experiment: e.experiment.id });
    }
    let res = await life.getExperiment('exp3');
    expect(res.arms.challenger.requests).toBe(4);
    expect(res.arms.challenger.errors).toBe(0);
    expect(res.overlapAtK.samples).toBe(4);
    expect(res.arms.challenger.clickRate.trials).toBe(0); // the challenger never serves in shadow mode
    expect(res.tests.click).toBeNull();
    await life.abortExperiment('exp3', {}, alice);

    // A challenger that fails on every query: responses are untouched, the guardrail aborts.
    const bad = await life.startExperiment(
      'exp3',
      { challenger: { collection: 'gc' }, mode: 'shadow', guardrails: { minSamples: 3, maxP95Ratio: 1000 } },
      alice,
    );
    await core.deleteCollection('gc');
    for (let i = 0; i < 3; i++) {
      const direct = await core.search('ga', query(qv(i)));
      const via = await core.search('exp3', query(qv(i)));
      expect(via.results).toEqual(direct.results);
    }
    res = await life.getExperiment('exp3');
    expect(res.experiment).toMatchObject({
      id: bad.experiment.id,
      state: 'aborted',
      endedBy: 'guardrail',
      reason: expect.stringMatching(/error rate/),
    });
    expect(res.arms.challenger).toMatchObject({ requests: 3, errors: 3, errorRate: 1 });
    // After the abort the alias serves the champion without an arm.
    expect((await core.search('exp3', query(qv(1)))).servedBy).toEqual({ collection: 'ga', version: 0, alias: 'exp3' });
  }, 30_000);
});

describe('experiments: guardrails and sequential tests end to end', () => {
  it('a genuinely slower challenger (exact scan vs HNSW, real SIFT vectors) trips the p95 latency guardrail in split mode', async () => {
    // 4 500 × 128 SIFT rows. Each request carries QUERIES query vectors, so the engine's work
    // dominates the fixed per-request DynamoDB round trips: the flat challenger scans all
    // 4 500 rows per query, HNSW visits a few hundred. Measured on 2 busy cores: p95 ≈ 20 ms
    // (champion) vs ≈ 90 ms (challenger), > 4× against the 1.5× limit, so timing noise cannot
    // flip the outcome; the whole test takes ~10 s, mostly ingest and the HNSW build.
    const QUERIES = 32;
    const ds = loadDataset('sift5k', { maxQueries: QUERIES });
    const rows = Array.from({ length: ds.baseCount }, (_, i) => ({
      id: `s${i}`,
      values: ds.base.subarray(i * ds.dim, (i + 1) * ds.dim),
    }));
    await core.createCollection({ name: 'lat-hnsw', dimension: ds.dim, metric: 'l2' });
    await core.createCollection({ name: 'lat-flat', dimension: ds.dim, metric: 'l2', index: { engine: 'flat' } });
    for (const name of ['lat-hnsw', 'lat-flat']) {
      await core.upsert(name, rows);
      await indexer.buildNow(name);
    }
    const queries = Array.from({ length: QUERIES }, (_, i) => ds.queries.subarray(i * ds.dim, (i + 1) * ds.dim));
    // Bounded reads: both arms search their shards only (no tail), and the shards are loaded
    // before the experiment so no cold load lands in either arm's histogram.
    const input: SearchInput = {
      queries,
      k: 10,
      consistency: 'eventual',
      includeMetadata: false,
      includeValues: false,
    };
    for (const name of ['lat-hnsw', 'lat-flat']) {
      const warm = await core.search(name, input);
      expect(warm.results).toHaveLength(QUERIES);
      expect(warm.servedBy.version).toBeGreaterThan(0);
    }

    await life.putAlias('lat', { collection: 'lat-hnsw' }, alice);
    const minSamples = 20;
    const started = await life.startExperiment(
      'lat',
      {
        challenger: { collection: 'lat-flat' },
        mode: 'split',
        weight: 50,
        overlapSample: 0,
        guardrails: { minSamples, maxP95Ratio: 1.5 },
      },
      alice,
    );
    const id = started.experiment.id;
    let requests = 0;
    const served = { champion: 0, challenger: 0 };
    // Each arm needs minSamples requests before the guardrail may judge; with a 50 % split
    // that takes ~2 × minSamples requests. The cap only bounds a failing run.
    while (requests < 200 && (await life.getAlias('lat')).experiment !== null) {
      const out = await core.search('lat', { ...input, stickyKey: `user-${requests}` });
      served[out.servedBy.arm!]++;
      requests++;
    }
    const res = await life.getExperiment('lat');
    expect(res.experiment).toMatchObject({
      id,
      state: 'aborted',
      endedBy: 'guardrail',
      reason: expect.stringMatching(/p95 latency/),
    });
    const { champion, challenger } = res.arms;
    expect(Math.min(champion.requests, challenger.requests)).toBeGreaterThanOrEqual(minSamples);
    expect(champion.errors + challenger.errors).toBe(0);
    expect(challenger.latencyMs.p95!).toBeGreaterThan(1.5 * champion.latencyMs.p95!);
    expect(served.challenger).toBeGreaterThan(0);
    // It aborted as soon as both arms had enough samples: no long tail of slow requests.
    expect(requests).toBeLessThan(120);
    // The alias was never moved and now serves the champion, without arms.
    expect(await life.getAlias('lat')).toMatchObject({ collection: 'lat-hnsw', revision: 1, experiment: null });
    for (let i = 0; i < 5; i++) {
      const out = await core.search('lat', { ...input, queries: queries.slice(0, 1), stickyKey: `user-${i}` });
      expect(out.servedBy).toEqual({ collection: 'lat-hnsw', version: expect.any(Number), alias: 'lat' });
    }
    console.log(
      `[latency guardrail] aborted after ${requests} requests: champion p95 ${champion.latencyMs.p95} ms, challenger p95 ${challenger.latencyMs.p95} ms`,
    );
  }, 60_000);

  it('the sequential p-value is a running minimum kept across reads (and feedback checkpoints), and decides the verdict', async () => {
    await twoCollections('sa', 'sb');
    await life.putAlias('seq', { collection: 'sa' }, alice);
    // Latency is not what this test is about: on unbuilt collections both arms are a few
    // DynamoDB reads, and the challenger's one extra catalog read alone can exceed 1.5×.
    const e = await life.startExperiment(
      'seq',
      {
        challenger: { collection: 'sb' },
        mode: 'split',
        weight: 50,
        overlapSample: 0,
        guardrails: { maxP95Ratio: 1000 },
      },
      alice,
    );
    const id = e.experiment.id;
    const keys = Array.from({ length: 400 }, (_, i) => `u${i}`);
    const challengerKeys = keys.filter((k) => chooseArm(id, k, 50) === 'challenger');
    const championKeys = keys.filter((k) => chooseArm(id, k, 50) === 'champion');
    // Bounded reads of unbuilt collections answer from no shards: fast, and feedback does not
    // check the clicked id, so the test measures the bookkeeping only.
    const serve = async (key: string, click: boolean) => {
      const out = await core.search('seq', query(qv(1), { stickyKey: key, consistency: 'eventual' }));
      if (click) await life.feedback({ queryId: out.queryId!, id: 'item-0', event: 'click' });
    };
    // Phase 1: 40 requests per arm; every challenger query is clicked, one in ten of the
    // champion's: overwhelming evidence for the challenger.
    for (let i = 0; i < 40; i++) {
      await serve(challengerKeys[i], true);
      await serve(championKeys[i], i % 10 === 0);
    }
    // Feedback checkpoints (every 20th clicked query of an arm) looked already, before any read.
    const checkpointed = (await stack.lifecycle.getSequential(id)).click!;
    expect(checkpointed.p).toBeLessThan(1e-6);
    const first = await life.getExperiment('seq');
    const t1 = first.tests.click!;
    expect(t1.sequential.p).toBeLessThanOrEqual(checkpointed.p);
    expect(t1.sequential.p).toBeLessThan(1e-6);
    expect(t1).toMatchObject({ significant: true, verdict: 'challenger' });
    expect(t1.sequential.ci95[0]).toBeGreaterThan(0);
    expect(t1.fixedHorizon).toMatchObject({
      z: expect.any(Number),
      p: expect.any(Number),
      validity: expect.stringMatching(/once/),
    });
    // No conversions: nothing to see.
    expect(first.tests.convert).toMatchObject({ significant: false, verdict: 'inconclusive', sequential: { p: 1 } });

    // Phase 2: 60 more requests per arm, both clicked at 10 %: the current counts alone are
    // much weaker evidence than at the first read, but the reported p-value never goes back up.
    for (let i = 40; i < 100; i++) {
      await serve(challengerKeys[i], i % 10 === 0);
      await serve(championKeys[i], i % 10 === 0);
    }
    const second = await life.getExperiment('seq');
    const c = second.arms;
    expect([
      c.champion.clickRate.successes,
      c.champion.clickRate.trials,
      c.challenger.clickRate.successes,
      c.challenger.clickRate.trials,
    ]).toEqual([10, 100, 46, 100]);
    const now = msprtLook(10, 100, 46, 100)!;
    expect(now.p).toBeGreaterThan(1e-3);
    expect(second.tests.click!.sequential.p).toBe(t1.sequential.p);
    expect(second.tests.click!.sequential.ci95[0]).toBeGreaterThanOrEqual(t1.sequential.ci95[0]);
    expect(second.tests.click!.verdict).toBe('challenger');
    await life.abortExperiment('seq', {}, alice);
  }, 60_000);

  it('uses the τ² fixed at start for every look', async () => {
    await twoCollections('ta', 'tb');
    await life.putAlias('tau', { collection: 'ta' }, alice);
    const e = await life.startExperiment(
      'tau',
      {
        challenger: { collection: 'tb' },
        mode: 'split',
        weight: 50,
        overlapSample: 0,
        tau2: 0.01,
        guardrails: { maxP95Ratio: 1000 },
      },
      alice,
    );
    expect(e.experiment).toMatchObject({ tau2: 0.01 });
    const keys = Array.from({ length: 200 }, (_, i) => `t${i}`);
    const challengerKeys = keys.filter((k) => chooseArm(e.experiment.id, k, 50) === 'challenger');
    const championKeys = keys.filter((k) => chooseArm(e.experiment.id, k, 50) === 'champion');
    // 35 requests per arm; 15 vs 3 clicks (under 20 per arm: no feedback checkpoint, so the one read is the only look).
    for (let i = 0; i < 35; i++) {
      for (const [key, click] of [
        [challengerKeys[i], i < 15],
        [championKeys[i], i < 3],
      ] as const) {
        const out = await core.search('tau', query(qv(1), { stickyKey: key, consistency: 'eventual' }));
        if (click) await life.feedback({ queryId: out.queryId!, id: 'item-0', event: 'click' });
      }
    }
    const seq = (await life.getExperiment('tau')).tests.click!.sequential;
    expect(seq.tau2).toBe(0.01);
    expect(seq.p).toBeCloseTo(msprtLook(3, 35, 15, 35, 0.01)!.p, 10);
    expect(Math.abs(seq.p - msprtLook(3, 35, 15, 35)!.p)).toBeGreaterThan(1e-4);
    await life.abortExperiment('tau', {}, alice);
  }, 60_000);
});
