import { describe, expect, it } from 'vitest';
import {
  DEFAULT_GUARDRAILS,
  bucketUpperMs,
  chooseArm,
  guardrailVerdict,
  histogramQuantile,
  latencyBucket,
  LAT_BUCKETS,
  normalCdf,
  overlapAtK,
  proportion,
  splitBucket,
  twoProportionZTest,
  wilson,
} from '../../shared/lifecycle/experiment-stats.js';

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
    expect(guardrailVerdict(champ, { requests: 100, errors: 10, latency: lat(2, 90) }, DEFAULT_GUARDRAILS)).toMatch(/error rate/);
    expect(guardrailVerdict(champ, { requests: 100, errors: 5, latency: lat(2, 95) }, DEFAULT_GUARDRAILS)).toBeUndefined();
    expect(guardrailVerdict(champ, { requests: 100, errors: 1, latency: lat(4, 99) }, DEFAULT_GUARDRAILS)).toMatch(/p95/);
    expect(guardrailVerdict(champ, { requests: 99, errors: 99, latency: lat(4, 0) }, DEFAULT_GUARDRAILS)).toBeUndefined();
  });
  it('overlap@k', () => {
    expect(overlapAtK(['a', 'b', 'c'], ['c', 'b', 'x'])).toBeCloseTo(2 / 3);
    expect(overlapAtK([], [])).toBe(1);
    expect(overlapAtK(['a'], [])).toBe(0);
  });
});
