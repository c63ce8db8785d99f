/**
 * Champion/challenger experiments on an alias against the embedded emulators: one running
 * experiment per alias, split stickiness, shadow mode never changing the response, feedback
 * attribution through queryId, promote (history), abort, guardrail auto-abort.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ShoalCore } from '../../shared/core.js';
import { ConflictError, ValidationError } from '../../shared/errors.js';
import { chooseArm } from '../../shared/lifecycle/experiment-stats.js';
import { LifecycleCore } from '../../shared/lifecycle/service.js';
import type { SearchInput } from '../../shared/service.js';
import { lifecycleCores, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { mulberry32, randomVectors, vectorInputs } from '../helpers/random.js';

let stack: EmulatedStack;
let core: ShoalCore;
let life: LifecycleCore;
let clock = Date.now();
const alice = { actor: 'alice' };
const bob = { actor: 'key:0123456789ab' };

const vectors = (n: number, dim: number, seed: number, prefix = 'v') => vectorInputs(n, dim, seed, prefix);

function query(v: Float32Array, extra: Partial<SearchInput> = {}): SearchInput {
  return { queries: [v], k: 3, consistency: 'strong', includeMetadata: false, includeValues: false, ...extra };
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-exp', now: () => clock });
  ({ core, life } = lifecycleCores(stack, () => clock));
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
    await expect(life.startExperiment('exp', { challenger: { collection: 'e16' }, mode: 'split' }, alice)).rejects.toBeInstanceOf(ValidationError);
    const started = await life.startExperiment('exp', { challenger: { collection: 'eb' }, mode: 'split', weight: 50, overlapSample: 1 }, alice);
    const id = started.experiment.id;
    expect(started.experiment).toMatchObject({ state: 'running', mode: 'split', weight: 50, champion: { collection: 'ea' }, challenger: { collection: 'eb' } });
    expect(started.experiment.guardrails).toEqual({ maxErrorRateDelta: 0.05, maxP95Ratio: 1.5, minSamples: 100 });
    expect((await life.getAlias('exp')).experiment).toMatchObject({ id, mode: 'split', state: 'running' });
    await expect(life.startExperiment('exp', { challenger: { collection: 'eb' }, mode: 'shadow' }, bob)).rejects.toBeInstanceOf(ConflictError);

    // Stickiness: the same key always gets the same arm, and the arm decides the collection.
    const keys = Array.from({ length: 12 }, (_, i) => `user-${i}`);
    const seen = new Set<string>();
    for (const key of keys) {
      const arm = chooseArm(id, key, 50);
      for (let r = 0; r < 2; r++) {
        const out = await core.search('exp', query(qv(r), { stickyKey: key }));
        expect(out.servedBy).toMatchObject({ arm, experiment: id, collection: arm === 'champion' ? 'ea' : 'eb', alias: 'exp' });
        seen.add(arm);
      }
    }
    expect(seen).toEqual(new Set(['champion', 'challenger']));

    // Feedback goes to the arm that served the queryId; repeated clicks count once per query in the rate.
    const challengerKey = keys.find((k) => chooseArm(id, k, 50) === 'challenger')!;
    const onB = await core.search('exp', query(qv(7), { stickyKey: challengerKey }));
    expect(await life.feedback({ queryId: onB.queryId!, id: onB.results[0][0].id, event: 'click' })).toEqual({ attributed: true, experiment: id, alias: 'exp', arm: 'challenger' });
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
    expect(res.tests.click).toMatchObject({ z: expect.any(Number), p: expect.any(Number) });

    // Promote: the alias moves through a recorded `promote` move; the experiment is over.
    const promoted = await life.promoteExperiment('exp', {}, bob);
    expect(promoted.experiment).toMatchObject({ state: 'promoted', reason: `experiment ${id} promoted`, endedBy: bob.actor });
    const history = await life.aliasHistory('exp');
    expect(history[0]).toMatchObject({ action: 'promote', by: bob.actor, from: { collection: 'ea' }, to: { collection: 'eb' }, reason: `experiment ${id} promoted` });
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
    const e = await life.startExperiment('exp2', { challenger: { collection: 'fb' }, mode: 'split', weight: 99 }, alice);
    const aborted = await life.abortExperiment('exp2', { reason: 'not now' }, bob);
    expect(aborted.experiment).toMatchObject({ id: e.experiment.id, state: 'aborted', reason: 'not now' });
    expect(await life.getAlias('exp2')).toMatchObject({ collection: 'fa', revision: 1, experiment: null });
    expect((await core.search('exp2', query(qv(3), { stickyKey: 'k' }))).servedBy).toEqual({ collection: 'fa', version: 0, alias: 'exp2' });
    await expect(life.abortExperiment('exp2', {}, bob)).rejects.toBeInstanceOf(ConflictError);

    const again = await life.startExperiment('exp2', { challenger: { collection: 'fb' }, mode: 'split' }, alice);
    expect(again.experiment.id).not.toBe(e.experiment.id);
    await life.putAlias('exp2', { collection: 'fb' }, alice);
    expect((await life.getExperiment('exp2')).experiment).toMatchObject({ state: 'aborted', reason: expect.stringMatching(/alias moved/) });
  }, 30_000);

  it('shadow: the champion answers unchanged, the challenger is measured; a failing challenger trips the guardrail', async () => {
    await twoCollections('ga', 'gb');
    await core.createCollection({ name: 'gc', dimension: DIM, metric: 'l2' });
    await life.putAlias('exp3', { collection: 'ga' }, alice);
    const e = await life.startExperiment('exp3', { challenger: { collection: 'gb' }, mode: 'shadow', guardrails: { minSamples: 3, maxP95Ratio: 1000 } }, alice);
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
    const bad = await life.startExperiment('exp3', { challenger: { collection: 'gc' }, mode: 'shadow', guardrails: { minSamples: 3, maxP95Ratio: 1000 } }, alice);
    await core.deleteCollection('gc');
    for (let i = 0; i < 3; i++) {
      const direct = await core.search('ga', query(qv(i)));
      const via = await core.search('exp3', query(qv(i)));
      expect(via.results).toEqual(direct.results);
    }
    res = await life.getExperiment('exp3');
    expect(res.experiment).toMatchObject({ id: bad.experiment.id, state: 'aborted', endedBy: 'guardrail', reason: expect.stringMatching(/error rate/) });
    expect(res.arms.challenger).toMatchObject({ requests: 3, errors: 3, errorRate: 1 });
    // After the abort the alias serves the champion without an arm.
    expect((await core.search('exp3', query(qv(1)))).servedBy).toEqual({ collection: 'ga', version: 0, alias: 'exp3' });
  }, 30_000);
});
