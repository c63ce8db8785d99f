/**
 * A champion/challenger experiment end to end over HTTP (`startLocalShoal`): alias
 * `products` on collection A, a split experiment with B as challenger, feedback favouring
 * B, the results endpoint showing B's higher click rate with a p-value, promote, then a
 * rollback that restores A for the very next request, and the three moves in the history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32, randomVectors } from '../helpers/random.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

const N = 300;
const DIM = 16;
// ~150 requests per arm: enough for the always-valid sequential test to call a 10 % → 50 %
// click-rate difference at any split the (random) experiment id produces; at ~100 per arm it is
// borderline (p ≈ 0.05), by design more conservative than the fixed-horizon z-test.
const REQUESTS = 300;

let server: HttpShoal;

const call: HttpShoal['call'] = (...args) => server.call(...args);

const rows = (seed: number): number[][] => {
  const data = randomVectors(mulberry32(seed), N, DIM);
  return Array.from({ length: N }, (_, i) => Array.from(data.subarray(i * DIM, (i + 1) * DIM)));
};

beforeAll(async () => {
  server = await startHttpShoal('exp');
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('champion/challenger over HTTP', () => {
  it('splits traffic, attributes feedback, reports B winning, promotes, rolls back for the next request', async () => {
    for (const [name, seed] of [
      ['cat-a', 1],
      ['cat-b', 2],
    ] as const) {
      expect((await call('POST', '/v1/collections', { name, dimension: DIM, metric: 'l2' })).status).toBe(201);
      const vectors = rows(seed).map((values, i) => ({ id: `item-${i}`, values }));
      expect((await call('POST', `/v1/collections/${name}/vectors`, { vectors })).status).toBe(200);
    }
    expect((await call('PUT', '/v1/aliases/products', { collection: 'cat-a', reason: 'launch' })).status).toBe(201);

    // Both arms are equally fast tiny collections: a loose latency guardrail keeps timer noise on a
    // loaded CI machine from aborting the scenario (the guardrail itself is proven in the integration suite).
    const started = await call('POST', '/v1/aliases/products/experiment', {
      challenger: { collection: 'cat-b' },
      mode: 'split',
      weight: 50,
      guardrails: { maxP95Ratio: 5 },
    });
    expect(started.status).toBe(201);
    const id = started.json.experiment.id as string;
    expect(started.json.experiment).toMatchObject({ state: 'running', weight: 50, champion: { collection: 'cat-a' } });
    expect(
      (await call('POST', '/v1/aliases/products/experiment', { challenger: { collection: 'cat-b' }, mode: 'shadow' }))
        .status,
    ).toBe(409);
    expect((await call('GET', '/v1/aliases/products')).json.experiment).toMatchObject({ id, state: 'running' });

    // Users click B's results far more often (seeded), A's rarely.
    const rng = mulberry32(7);
    const queries = randomVectors(mulberry32(99), REQUESTS, DIM);
    for (let i = 0; i < REQUESTS; i++) {
      const out = await call('POST', '/v1/collections/products/search', {
        vector: Array.from(queries.subarray(i * DIM, (i + 1) * DIM)),
        k: 5,
        stickyKey: `user-${i % 100}`,
      });
      expect(out.status).toBe(200);
      expect(out.json.queryId).toEqual(expect.any(String));
      const arm = out.json.servedBy.arm as string;
      expect(out.json.servedBy.collection).toBe(arm === 'challenger' ? 'cat-b' : 'cat-a');
      if (rng() < (arm === 'challenger' ? 0.5 : 0.1)) {
        const fb = await call('POST', '/v1/feedback', {
          queryId: out.json.queryId,
          id: out.json.results[0].id,
          event: 'click',
        });
        expect(fb.json).toMatchObject({ attributed: true, arm });
      }
    }
    const res = await call('GET', '/v1/aliases/products/experiment');
    expect(res.status).toBe(200);
    const { champion, challenger } = res.json.arms;
    expect(champion.requests + challenger.requests).toBe(REQUESTS);
    expect(challenger.requests).toBeGreaterThan(50);
    expect(champion.requests).toBeGreaterThan(50);
    expect(challenger.clickRate.rate).toBeGreaterThan(champion.clickRate.rate);
    expect(challenger.clickRate.ci95[0]).toBeGreaterThan(champion.clickRate.ci95[1] - 0.2);
    expect(res.json.tests.click.fixedHorizon.z).toBeGreaterThan(0);
    expect(res.json.tests.click.fixedHorizon.p).toBeLessThan(0.01);
    // The verdict comes from the always-valid sequential test (safe to read at any time).
    expect(res.json.tests.click, JSON.stringify(res.json.tests)).toMatchObject({
      significant: true,
      verdict: 'challenger',
    });
    expect(res.json.tests.click.sequential.ci95[0]).toBeGreaterThan(0);
    expect(champion.latencyMs.p95).toEqual(expect.any(Number));

    const promoted = await call('POST', '/v1/aliases/products/experiment/promote');
    expect(promoted.status).toBe(200);
    expect(promoted.json.experiment).toMatchObject({ state: 'promoted', reason: `experiment ${id} promoted` });
    const viaB = await call('POST', '/v1/collections/products/search', { vector: rows(2)[5], k: 1 });
    expect(viaB.json.servedBy).toEqual({ collection: 'cat-b', version: expect.any(Number), alias: 'products' });

    const back = await call('POST', '/v1/aliases/products/rollback', { reason: 'conversions dropped' });
    expect(back.json).toMatchObject({ collection: 'cat-a', revision: 3 });
    const viaA = await call('POST', '/v1/collections/products/search', { vector: rows(1)[5], k: 1 });
    expect(viaA.json.servedBy).toEqual({ collection: 'cat-a', version: expect.any(Number), alias: 'products' });
    expect(viaA.json.results[0].id).toBe('item-5');

    const history = await call('GET', '/v1/aliases/products/history');
    expect(
      history.json.history.map((h: { action: string; to: { collection: string }; reason: string }) => [
        h.action,
        h.to.collection,
        h.reason,
      ]),
    ).toEqual([
      ['rollback', 'cat-a', 'conversions dropped'],
      ['promote', 'cat-b', `experiment ${id} promoted`],
      ['create', 'cat-a', 'launch'],
    ]);
    expect((await call('POST', '/v1/aliases/products/experiment/abort')).status).toBe(409);
  }, 60_000);
});
