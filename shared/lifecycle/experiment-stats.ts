/**
 * Pure statistics of champion/challenger experiments: deterministic traffic splitting,
 * Wilson score intervals, the two-proportion z-test, a fixed-bucket latency histogram
 * (counts kept in DynamoDB with atomic ADD) and the guardrail verdict. No I/O.
 */
import { createHash } from 'node:crypto';

export type Arm = 'champion' | 'challenger';

/** z for a two-sided 95 % interval. */
export const Z95 = 1.959963984540054;

/**
 * The arm of a request: a hash of (experiment id, sticky key) mapped to [0, 100) in steps of
 * 0.01, compared against the challenger's weight in percent. The same key always lands on the
 * same arm within one experiment; another experiment re-shuffles the keys.
 */
export function splitBucket(experimentId: string, key: string): number {
  const h = createHash('sha256').update(experimentId).update('\0').update(key).digest();
  return (h.readUInt32BE(0) % 10_000) / 100;
}

export function chooseArm(experimentId: string, key: string, weightPercent: number): Arm {
  return splitBucket(experimentId, key) < weightPercent ? 'challenger' : 'champion';
}

/** Complementary error function (Numerical Recipes `erfcc`, fractional error < 1.2e-7 everywhere). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const ans =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? ans : 2 - ans;
}

/** Standard normal CDF. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

export interface Proportion {
  successes: number;
  trials: number;
  /** successes / trials; null without trials. */
  rate: number | null;
  /** Wilson score interval at 95 %; null without trials. */
  ci95: [number, number] | null;
}

/** Wilson score interval for x successes out of n (z = 1.96 by default). */
export function wilson(x: number, n: number, z = Z95): [number, number] | null {
  if (n <= 0) return null;
  const p = x / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return [Math.max(0, center - half), Math.min(1, center + half)];
}

export function proportion(x: number, n: number): Proportion {
  return { successes: x, trials: n, rate: n > 0 ? x / n : null, ci95: wilson(x, n) };
}

export interface ZTest {
  /** Positive when the second proportion (the challenger's) is higher. */
  z: number;
  /** Two-sided p-value. */
  p: number;
}

/**
 * Two-proportion z-test with the pooled standard error: H0 p1 = p2. Null when either group
 * has no trials or the pooled rate is 0 or 1 (no variance: the test is undefined).
 */
export function twoProportionZTest(x1: number, n1: number, x2: number, n2: number): ZTest | null {
  if (n1 <= 0 || n2 <= 0) return null;
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (!(se > 0)) return null;
  const z = (x2 / n2 - x1 / n1) / se;
  return { z, p: Math.min(1, erfc(Math.abs(z) / Math.SQRT2)) };
}

// --- latency histogram ---------------------------------------------------------------------

/** Bucket i holds latencies in (LAT_BASE·LAT_GROWTH^(i-1), LAT_BASE·LAT_GROWTH^i] ms; bucket 0 everything ≤ LAT_BASE. */
export const LAT_BASE_MS = 0.05;
export const LAT_GROWTH = 1.2;
export const LAT_BUCKETS = 80; // upper bound of the last bucket ≈ 50 s; slower requests land there too

export function latencyBucket(ms: number): number {
  if (!(ms > LAT_BASE_MS)) return 0;
  const i = Math.ceil(Math.log(ms / LAT_BASE_MS) / Math.log(LAT_GROWTH) - 1e-9);
  return Math.min(LAT_BUCKETS - 1, Math.max(0, i));
}

export function bucketUpperMs(i: number): number {
  return LAT_BASE_MS * LAT_GROWTH ** i;
}

/**
 * The q-quantile of a histogram (counts per bucket), as the upper bound of the bucket that
 * holds it: conservative, at most 20 % above the true value. Null when empty.
 */
export function histogramQuantile(counts: readonly number[], q: number): number | null {
  const n = counts.reduce((s, c) => s + c, 0);
  if (n <= 0) return null;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i] ?? 0;
    if (seen >= rank) return Number(bucketUpperMs(i).toPrecision(4));
  }
  return Number(bucketUpperMs(counts.length - 1).toPrecision(4));
}

// --- guardrails ----------------------------------------------------------------------------

export interface Guardrails {
  maxErrorRateDelta: number;
  maxP95Ratio: number;
  minSamples: number;
}

export const DEFAULT_GUARDRAILS: Guardrails = { maxErrorRateDelta: 0.05, maxP95Ratio: 1.5, minSamples: 100 };

export interface ArmHealth {
  requests: number;
  errors: number;
  /** Latency histogram counts (successful requests). */
  latency: readonly number[];
}

/** The reason to abort, or undefined when the challenger is within its guardrails (or samples are too few). */
export function guardrailVerdict(champion: ArmHealth, challenger: ArmHealth, g: Guardrails): string | undefined {
  if (champion.requests < g.minSamples || challenger.requests < g.minSamples) return undefined;
  const errA = champion.errors / champion.requests;
  const errB = challenger.errors / challenger.requests;
  if (errB - errA > g.maxErrorRateDelta) {
    return `guardrail: challenger error rate ${errB.toFixed(4)} exceeds the champion's ${errA.toFixed(4)} by more than ${g.maxErrorRateDelta}`;
  }
  const p95A = histogramQuantile(champion.latency, 0.95);
  const p95B = histogramQuantile(challenger.latency, 0.95);
  if (p95A !== null && p95B !== null && p95B > g.maxP95Ratio * p95A) {
    return `guardrail: challenger p95 latency ${p95B} ms exceeds ${g.maxP95Ratio} × the champion's ${p95A} ms`;
  }
  return undefined;
}

/** overlap@k of two result lists: |ids(a) ∩ ids(b)| / max(|a|, |b|) (1 when both are empty). */
export function overlapAtK(a: readonly string[], b: readonly string[]): number {
  const n = Math.max(a.length, b.length);
  if (n === 0) return 1;
  const set = new Set(a);
  let common = 0;
  for (const id of new Set(b)) if (set.has(id)) common++;
  return common / n;
}
