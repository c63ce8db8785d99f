import { describe, expect, it } from 'vitest';
import {
  DEFAULT_GUARDRAILS,
  DEFAULT_MSPRT_TAU2,
  SEQUENTIAL_MIN_TRIALS,
  SEQUENTIAL_START,
  bucketUpperMs,
  chooseArm,
  foldLook,
  guardrailVerdict,
  histogramQuantile,
  joinSequential,
  latencyBucket,
  LAT_BUCKETS,
  msprtLook,
  normalCdf,
  overlapAtK,
  proportion,
  sequentialVerdict,
  splitBucket,
  tightens,
  twoProportionZTest,
  wilson,
  type SequentialState,
} from '../../shared/lifecycle/experiment-stats.js';
import { experimentResults } from '../../shared/lifecycle/experiments.js';
import type { ArmCounters } from '../../shared/lifecycle/types.js';
import { simulateAb } from '../helpers/ab-sim.js';
import type { Experiment } from '../../shared/service-types.js';

describe('Wilson score interval', () => {
  it('matches known values', () => {
    const [lo, hi] = wilson(5, 10)!;
    expect(lo).toBeCloseTo(0.2366, 4);
    expect(hi).toBeCloseTo(0.7634, 4);
    const [lo0, hi0] = wilson(0, 10)!;
    expect(lo0).toBe(0);
    expect(hi0).toBeCloseTo(0.2775, 4);
    const [lo1, hi1] = wilson(81, 263)!; // Wilson (1927)-style textbook example: 0.2553–0.3662
    expect(lo1).toBeCloseTo(0.2553, 3);
    expect(hi1).toBeCloseTo(0.3662, 3);
    expect(wilson(0, 0)).toBeNull();
    expect(proportion(3, 0)).toEqual({ successes: 3, trials: 0, rate: null, ci95: null });
  });
});

describe('two-proportion z-test', () => {
  it('matches known values', () => {
    const t = twoProportionZTest(10, 100, 20, 100)!;
    expect(t.z).toBeCloseTo(1.9803, 3);
    expect(t.p).toBeCloseTo(0.0477, 3);
    const r = twoProportionZTest(20, 100, 10, 100)!;
    expect(r.z).toBeCloseTo(-1.9803, 3);
    expect(r.p).toBeCloseTo(t.p, 10);
    expect(twoProportionZTest(5, 50, 5, 50)).toEqual({ z: 0, p: 1 });
    expect(twoProportionZTest(0, 10, 0, 10)).toBeNull();
    expect(twoProportionZTest(1, 0, 1, 10)).toBeNull();
  });

  it('normal CDF', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-2.575829)).toBeCloseTo(0.005, 6);
  });
});

describe('deterministic split', () => {
  it('hashes (experiment, key) to fixed buckets', () => {
    expect(splitBucket('exp-1', 'user-1')).toBe(79.84);
    expect(splitBucket('exp-1', 'user-2')).toBe(27.43);
    expect(splitBucket('exp-2', 'user-1')).toBe(82.51);
    expect(chooseArm('exp-1', 'user-2', 30)).toBe('challenger');
    expect(chooseArm('exp-1', 'user-2', 27)).toBe('champion');
    for (let i = 0; i < 50; i++) expect(chooseArm('e', `k${i}`, 50)).toBe(chooseArm('e', `k${i}`, 50));
  });

  it('sends about weight % of keys to the challenger', () => {
    let n = 0;
    for (let i = 0; i < 10_000; i++) if (chooseArm('exp-1', `u${i}`, 10) === 'challenger') n++;
    expect(n).toBe(999);
  });
});

describe('latency histogram', () => {
  it('buckets and quantiles', () => {
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(0.05)).toBe(0);
    expect(latencyBucket(0.06)).toBe(1);
    expect(latencyBucket(1e9)).toBe(LAT_BUCKETS - 1);
    for (const ms of [0.3, 1, 7.5, 120]) {
      const b = latencyBucket(ms);
      expect(bucketUpperMs(b)).toBeGreaterThanOrEqual(ms * (1 - 1e-9));
      expect(bucketUpperMs(b - 1)).toBeLessThan(ms);
    }
    const counts = new Array<number>(LAT_BUCKETS).fill(0);
    for (let i = 0; i < 95; i++) counts[latencyBucket(1)]++;
    for (let i = 0; i < 5; i++) counts[latencyBucket(100)]++;
    expect(histogramQuantile(counts, 0.5)).toBeCloseTo(bucketUpperMs(latencyBucket(1)), 3);
    expect(histogramQuantile(counts, 0.95)).toBeCloseTo(bucketUpperMs(latencyBucket(1)), 3);
    expect(histogramQuantile(counts, 0.96)).toBeCloseTo(bucketUpperMs(latencyBucket(100)), 1);
    expect(histogramQuantile(new Array<number>(LAT_BUCKETS).fill(0), 0.5)).toBeNull();
  });
});

describe('guardrails and overlap', () => {
  const lat = (ms: number, n: number): number[] => {
    const c = new Array<number>(LAT_BUCKETS).fill(0);
    c[latencyBucket(ms)] = n;
    return c;
  };
  it('aborts on error rate and p95, only with enough samples', () => {
    const champ = { requests: 100, errors: 1, latency: lat(2, 99) };
    expect(guardrailVerdict(champ, { requests: 100, errors: 10, latency: lat(2, 90) }, DEFAULT_GUARDRAILS)).toMatch(
      /error rate/,
    );
    expect(
      guardrailVerdict(champ, { requests: 100, errors: 5, latency: lat(2, 95) }, DEFAULT_GUARDRAILS),
    ).toBeUndefined();
    expect(guardrailVerdict(champ, { requests: 100, errors: 1, latency: lat(4, 99) }, DEFAULT_GUARDRAILS)).toMatch(
      /p95/,
    );
    expect(
      guardrailVerdict(champ, { requests: 99, errors: 99, latency: lat(4, 0) }, DEFAULT_GUARDRAILS),
    ).toBeUndefined();
  });
  it('overlap@k', () => {
    expect(overlapAtK(['a', 'b', 'c'], ['c', 'b', 'x'])).toBeCloseTo(2 / 3);
    expect(overlapAtK([], [])).toBe(1);
    expect(overlapAtK(['a'], [])).toBe(0);
  });
});

describe('mSPRT (always-valid sequential test of two proportions)', () => {
  /**
   * Λ(θ0) by brute-force numerical integration of its definition — the likelihood ratio of
   * θ̂ ~ N(θ, V) against N(θ0, V), averaged over θ ~ N(θ0, τ²) — independent of the closed
   * form under test.
   */
  function lambdaByIntegration(diff: number, v: number, tau2: number, theta0: number): number {
    const tau = Math.sqrt(tau2);
    const lo = theta0 - 12 * tau;
    const hi = theta0 + 12 * tau;
    const steps = 200_000;
    const h = (hi - lo) / steps;
    let sum = 0;
    for (let i = 0; i <= steps; i++) {
      const t = lo + i * h;
      const ratio = Math.exp(((diff - theta0) ** 2 - (diff - t) ** 2) / (2 * v));
      const prior = Math.exp(-((t - theta0) ** 2) / (2 * tau2)) / Math.sqrt(2 * Math.PI * tau2);
      sum += (i === 0 || i === steps ? 0.5 : 1) * ratio * prior;
    }
    return sum * h;
  }

  it('matches the mixture integral, and its interval bounds are exactly where Λ(θ0) = 1/α', () => {
    const look = msprtLook(100, 1000, 130, 1000)!;
    expect(look.diff).toBeCloseTo(0.03, 12);
    // Variance from the (x+1)/(n+2)-shrunk rates.
    const s1 = 101 / 1002;
    const s2 = 131 / 1002;
    expect(look.variance).toBeCloseTo((s1 * (1 - s1)) / 1000 + (s2 * (1 - s2)) / 1000, 12);
    const integral = lambdaByIntegration(look.diff, look.variance, DEFAULT_MSPRT_TAU2, 0);
    expect(look.lambda / integral).toBeCloseTo(1, 6);
    expect(look.p).toBeCloseTo(1 / look.lambda, 12);
    for (const bound of look.ci)
      expect(lambdaByIntegration(look.diff, look.variance, DEFAULT_MSPRT_TAU2, bound)).toBeCloseTo(20, 3);
    // The same data at a fixed horizon: z = 2.06, p = 0.04 — "significant" by the z-test,
    // while the always-valid test asks for more evidence.
    const z = twoProportionZTest(100, 1000, 130, 1000)!;
    expect(z.p).toBeLessThan(0.05);
    expect(look.p).toBeGreaterThan(0.05);
    expect(look.ci[0]).toBeLessThan(0);
  });

  it('does not look below the minimum trials; p is capped at 1; huge evidence does not overflow', () => {
    expect(msprtLook(0, SEQUENTIAL_MIN_TRIALS - 1, 5, 100)).toBeNull();
    expect(msprtLook(0, 100, 0, 100)).toMatchObject({ diff: 0, p: 1 });
    const big = msprtLook(0, 1_000_000, 1_000_000, 1_000_000)!;
    expect(big.p).toBe(0);
    expect(Number.isFinite(big.lambda)).toBe(true);
    expect(big.ci[1]).toBeLessThanOrEqual(1);
  });

  it('the running state only tightens, joins in any order, and gives the verdict', () => {
    const a: SequentialState = { p: 0.2, lo: -0.1, hi: 0.3 };
    const b: SequentialState = { p: 0.04, lo: 0.01, hi: 0.5 };
    expect(joinSequential(a, b)).toEqual({ p: 0.04, lo: 0.01, hi: 0.3 });
    expect(joinSequential(b, a)).toEqual(joinSequential(a, b));
    expect(tightens(a, joinSequential(a, b))).toBe(true);
    expect(tightens(joinSequential(a, b), a)).toBe(false);
    // A later, weaker look never loosens what an earlier one showed.
    const strong = foldLook(SEQUENTIAL_START, msprtLook(100, 2000, 200, 2000));
    const weaker = foldLook(strong, msprtLook(400, 4000, 420, 4000));
    expect(weaker.p).toBe(strong.p);
    expect(weaker.lo).toBeGreaterThanOrEqual(strong.lo);
    expect(sequentialVerdict(strong)).toBe('challenger');
    expect(sequentialVerdict(foldLook(SEQUENTIAL_START, msprtLook(200, 2000, 100, 2000)))).toBe('champion');
    expect(sequentialVerdict(foldLook(SEQUENTIAL_START, msprtLook(100, 1000, 130, 1000)))).toBe('inconclusive');
    expect(sequentialVerdict(SEQUENTIAL_START)).toBe('inconclusive');
  });

  const simulate = simulateAb;

  it('under H0, peeking inflates the z-test false-positive rate; the sequential test stays ≤ 5 %', () => {
    // 1000 runs: the binomial standard error of a 5 % rate is 0.7 points.
    const h0 = simulate({ seed: 20170601, runs: 1000, pA: 0.1, pB: 0.1, weight: 0.5, every: 50, total: 3000 });
    // The seeded figures: `npm run bench:sequential`.
    expect(h0.naive).toBeGreaterThan(0.15);
    expect(h0.sequential).toBeLessThanOrEqual(0.05 + 0.02);
    // The z-test itself is calibrated when read once, at the planned sample size.
    expect(h0.once).toBeGreaterThan(0.03);
    expect(h0.once).toBeLessThan(0.07);
    expect(h0.coverage).toBeGreaterThanOrEqual(0.95 - 0.02);
    // Rare events and an uneven split (the Gaussian approximation's worst case here).
    const rare = simulate({ seed: 7, runs: 600, pA: 0.02, pB: 0.02, weight: 0.2, every: 50, total: 5000 });
    expect(rare.naive).toBeGreaterThan(0.15);
    expect(rare.sequential).toBeLessThanOrEqual(0.05 + 0.02);
  });

  it('detects a real effect (power) and its interval covers the true difference', () => {
    const h1 = simulate({ seed: 42, runs: 500, pA: 0.1, pB: 0.15, weight: 0.5, every: 50, total: 5000 });
    // (A fixed-horizon test read once at 5000 has more power: the price of being allowed to
    // look at any time is needing somewhat more data.)
    expect(h1.sequential).toBeGreaterThan(0.8);
    expect(h1.coverage).toBeGreaterThanOrEqual(0.95 - 0.02);
  });
});

describe('experiment results', () => {
  const counters = (requests: number, clicked: number): ArmCounters => ({
    requests,
    errors: 0,
    latency: new Array<number>(LAT_BUCKETS).fill(0),
    latencySumMs: 0,
    overlapSum: 0,
    overlapN: 0,
    clicks: clicked,
    clickedQueries: clicked,
    converts: 0,
    convertedQueries: 0,
  });
  const exp = (mode: 'split' | 'shadow'): Experiment => ({
    id: 'e',
    alias: 'a',
    mode,
    weight: 50,
    champion: { collection: 'A' },
    challenger: { collection: 'B' },
    guardrails: DEFAULT_GUARDRAILS,
    overlapSample: 0.1,
    state: 'running',
    createdAt: '2024-01-01T00:00:00Z',
    createdBy: 'x',
  });

  it('reports both tests, labels the fixed-horizon one, and takes the verdict from the sequential one', () => {
    // z-test p ≈ 0.04 but the sequential evidence is not there yet: not significant.
    const r = experimentResults(exp('split'), { champion: counters(1000, 100), challenger: counters(1000, 130) });
    const click = r.tests.click!;
    expect(click.difference).toBeCloseTo(0.03, 12);
    expect(click.fixedHorizon!.p).toBeLessThan(0.05);
    expect(click.fixedHorizon!.validity).toMatch(/once/);
    expect(click.sequential.p).toBeGreaterThan(0.05);
    expect(click).toMatchObject({ significant: false, verdict: 'inconclusive' });
    // A stored running state (an earlier look was decisive) is what the verdict follows.
    const stored = { click: { p: 0.01, lo: 0.005, hi: 0.08 } };
    expect(
      experimentResults(exp('split'), { champion: counters(1000, 100), challenger: counters(1000, 130) }, stored).tests
        .click,
    ).toMatchObject({
      sequential: { p: 0.01, ci95: [0.005, 0.08] },
      significant: true,
      verdict: 'challenger',
    });
    expect(
      experimentResults(exp('shadow'), { champion: counters(100, 10), challenger: counters(100, 0) }).tests,
    ).toEqual({ click: null, convert: null });
  });
});
