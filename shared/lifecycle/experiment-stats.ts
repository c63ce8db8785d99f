/**
 * Pure statistics of champion/challenger experiments: deterministic traffic splitting,
 * Wilson score intervals, the two-proportion z-test, a fixed-bucket latency histogram
 * (counts kept in DynamoDB with atomic ADD) and the guardrail verdict. No I/O.
 */
import { createHash } from 'node:crypto';
import type { Arm, Guardrails, Proportion, Verdict, ZTest } from '../service-types.js';

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
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? ans : 2 - ans;
}

/** Standard normal CDF. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
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

// --- sequential testing (always valid under continuous monitoring) ------------------------

/**
 * Why a second test: the fixed-horizon z-test above controls its 5 % false-positive rate
 * only when it is read ONCE, at a sample size fixed in advance. Reading the results endpoint
 * again and again and stopping at the first p < 0.05 ("peeking") inflates that rate to
 * 20–30 % over a few dozen looks (see test/unit/experiment-stats.test.ts). The mixture
 * sequential probability ratio test (mSPRT; Johari, Pekelis, Walsh 2017, "Peeking at A/B
 * tests", the basis of Optimizely's stats engine) gives a p-value and interval that stay
 * valid at ANY stopping time, however often and whenever they are read.
 *
 * Model: the difference of the two rates θ̂ = rate(challenger) − rate(champion) is
 * approximately N(θ, V) with V = p̂₁(1−p̂₁)/n₁ + p̂₂(1−p̂₂)/n₂. Mixing the likelihood ratio
 * of H1: θ against H0: θ0 over θ ~ N(θ0, τ²) gives the closed form
 *
 *     Λ(θ0) = sqrt(V / (V + τ²)) · exp( τ² (θ̂ − θ0)² / (2 V (V + τ²)) )
 *
 * a nonnegative martingale under H0 (in the Gaussian limit), so by Ville's inequality
 * P(Λ ever ≥ 1/α) ≤ α. Hence:
 * - always-valid p-value p_n = min(1, min over looks m ≤ n of 1/Λ_m(0)): non-increasing;
 * - always-valid (1−α) interval: the running intersection of { θ0 : Λ_m(θ0) < 1/α }, i.e.
 *   θ̂ ± sqrt( V (V + τ²) / τ² · (2 ln(1/α) + ln((V + τ²) / V)) ).
 * Both may be evaluated at any subset of times (each results read, feedback checkpoints):
 * a minimum over fewer looks is larger, never smaller, than over every observation, so the
 * guarantee holds; more looks only add power. With the same V in both, p_n ≤ α exactly when
 * the running interval excludes 0, so verdicts read off either agree.
 */

/** The always-valid tests' level: verdicts are at 95 %. */
export const SEQUENTIAL_ALPHA = 0.05;

/**
 * Variance τ² of the normal mixing distribution over the rate difference θ (absolute, in
 * rate units²). Default 1e-3, i.e. τ ≈ 0.03 = three percentage points. Every τ² > 0 keeps
 * the false-positive guarantee; τ² only moves power, towards effects |θ| of about τ at the
 * sample sizes the experiment reaches. Smaller τ² is kinder to small effects at large
 * samples but cannot reject anything until V ≪ τ², i.e. until n ≫ p(1−p)/τ² per arm, however
 * large the effect; larger τ² calls big effects within a few hundred requests but pays a
 * bigger sqrt(V/(V+τ²)) penalty on small ones. Seeded simulation, 50/50 split, a look every
 * 50 requests up to 10 000 (power; mean requests to a verdict):
 *
 *   τ²      10 %→12 %    10 %→15 %    10 %→30 %    2 %→3 %
 *   1e-4    0.56         1.00; 2 919  1.00; 837    0.65
 *   1e-3    0.67         1.00; 1 693  1.00; 334    0.59
 *   1e-2    0.55         1.00; 1 653  1.00; 194    0.46
 *
 * (false positives under H0 at 10 % and 2 %: ≤ 2.5 % for all three). 1e-3 is the best
 * all-rounder for click rates of 5–50 %; conversion rates of ~1 % want ~1e-4.
 */
export const DEFAULT_MSPRT_TAU2 = 1e-3;

/**
 * Minimum trials per arm before the sequential test looks at all. The Gaussian model of θ̂
 * is poor for a handful of Bernoulli trials, and the plug-in variance can be ~0 (no success
 * yet on one side), which would make Λ explode on noise. Default 30; larger is safer with
 * rare events but delays the first possible verdict (which, below ~100 trials per arm, no
 * realistic effect reaches anyway).
 */
export const SEQUENTIAL_MIN_TRIALS = 30;

/** One evaluation of the mixture likelihood ratio at the current counts. */
export interface MsprtLook {
  /** Observed rate difference, challenger − champion. */
  diff: number;
  /** Plug-in variance of `diff`. */
  variance: number;
  /** Λ(0): evidence against "no difference". */
  lambda: number;
  /** min(1, 1/Λ(0)) at this look alone (the reported p-value is the minimum over looks). */
  p: number;
  /** The (1−α) interval of this look alone (the reported one is the intersection over looks). */
  ci: [number, number];
}

/**
 * The mSPRT at the current counts (champion x1/n1, challenger x2/n2). Null below
 * SEQUENTIAL_MIN_TRIALS per arm. The variance uses the rates shrunk by one pseudo-success and
 * one pseudo-failure per arm ((x+1)/(n+2), as in the Agresti–Caffo interval) so that it is
 * never 0 while one arm has seen no success yet.
 */
export function msprtLook(
  x1: number,
  n1: number,
  x2: number,
  n2: number,
  tau2 = DEFAULT_MSPRT_TAU2,
  alpha = SEQUENTIAL_ALPHA,
): MsprtLook | null {
  if (n1 < SEQUENTIAL_MIN_TRIALS || n2 < SEQUENTIAL_MIN_TRIALS || !(tau2 > 0)) return null;
  const diff = x2 / n2 - x1 / n1;
  const s1 = (x1 + 1) / (n1 + 2);
  const s2 = (x2 + 1) / (n2 + 2);
  const variance = (s1 * (1 - s1)) / n1 + (s2 * (1 - s2)) / n2;
  const vt = variance + tau2;
  // log Λ keeps exp from overflowing when the evidence is overwhelming.
  const logLambda = 0.5 * Math.log(variance / vt) + (tau2 * diff * diff) / (2 * variance * vt);
  const half = Math.sqrt(((variance * vt) / tau2) * (2 * Math.log(1 / alpha) + Math.log(vt / variance)));
  return {
    diff,
    variance,
    lambda: Math.exp(Math.min(logLambda, 700)),
    p: Math.min(1, Math.exp(-logLambda)),
    ci: [Math.max(-1, diff - half), Math.min(1, diff + half)],
  };
}

/**
 * What persists across looks for one metric: the running minimum of the p-value and the
 * running intersection of the intervals. Merging is a lattice join (min / max / min), so
 * concurrent writers can apply it in any order and converge.
 */
export interface SequentialState {
  p: number;
  lo: number;
  hi: number;
}

export const SEQUENTIAL_START: SequentialState = { p: 1, lo: -1, hi: 1 };

/**
 * The join of two running states (min p, intersection of intervals): what two looks taken
 * by different processes amount to together. An empty intersection (probability ≤ α under
 * the model) collapses to a point rather than an impossible interval.
 */
export function joinSequential(a: SequentialState, b: SequentialState): SequentialState {
  let lo = Math.max(a.lo, b.lo);
  let hi = Math.min(a.hi, b.hi);
  if (lo > hi) lo = hi = (lo + hi) / 2;
  return { p: Math.min(a.p, b.p), lo, hi };
}

/** Folds a look (null: too few trials to look) into the running state. */
export function foldLook(prev: SequentialState, look: MsprtLook | null): SequentialState {
  return look ? joinSequential(prev, { p: look.p, lo: look.ci[0], hi: look.ci[1] }) : prev;
}

/** True when `next` is tighter than `prev` somewhere (worth a write). */
export function tightens(prev: SequentialState, next: SequentialState): boolean {
  return next.p < prev.p || next.lo > prev.lo || next.hi < prev.hi;
}

/** The verdict of the always-valid test: which arm's rate is higher, once the interval excludes 0. */
export function sequentialVerdict(s: SequentialState, alpha = SEQUENTIAL_ALPHA): Verdict {
  if (s.p > alpha) return 'inconclusive';
  if (s.lo > 0) return 'challenger';
  if (s.hi < 0) return 'champion';
  return 'inconclusive';
}
