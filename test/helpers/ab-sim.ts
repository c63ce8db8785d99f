/**
 * A seeded A/B simulation of an analyst peeking at a running experiment: requests arrive one
 * at a time, each goes to the challenger with probability `weight` and converts with its arm's
 * rate; every `every` requests the analyst looks at both tests and would stop at the first
 * p < 0.05. Shared by the unit tests (which assert the error rates) and `npm run bench:sequential`
 * (which prints them).
 */
import {
  SEQUENTIAL_START,
  foldLook,
  msprtLook,
  twoProportionZTest,
  DEFAULT_MSPRT_TAU2,
} from '../../shared/lifecycle/experiment-stats.js';
import { mulberry32 } from './random.js';

export interface AbScenario {
  seed: number;
  runs: number;
  pA: number;
  pB: number;
  weight: number;
  every: number;
  total: number;
  tau2?: number;
}

export interface AbOutcome {
  /** Share of runs in which some peek at the fixed-horizon z-test showed p < 0.05. */
  naive: number;
  /** Share of runs in which the always-valid sequential p reached ≤ 0.05. */
  sequential: number;
  /** Share of runs whose z-test, read once at the end, showed p < 0.05. */
  once: number;
  /** Share of runs whose final sequential interval holds the true difference. */
  coverage: number;
  /** Mean requests until the sequential test decided, over the runs that decided (null if none). */
  meanRequestsToDecide: number | null;
}

export function simulateAb(o: AbScenario): AbOutcome {
  const rng = mulberry32(o.seed);
  let naive = 0;
  let sequential = 0;
  let once = 0;
  let covered = 0;
  let decidedAtSum = 0;
  for (let r = 0; r < o.runs; r++) {
    let xa = 0;
    let na = 0;
    let xb = 0;
    let nb = 0;
    let naiveStopped = false;
    let decidedAt = 0;
    let s = SEQUENTIAL_START;
    for (let i = 1; i <= o.total; i++) {
      if (rng() < o.weight) {
        nb++;
        if (rng() < o.pB) xb++;
      } else {
        na++;
        if (rng() < o.pA) xa++;
      }
      if (i % o.every === 0) {
        const z = twoProportionZTest(xa, na, xb, nb);
        if (z && z.p < 0.05) naiveStopped = true;
        s = foldLook(s, msprtLook(xa, na, xb, nb, o.tau2 ?? DEFAULT_MSPRT_TAU2));
        if (!decidedAt && s.p <= 0.05) decidedAt = i;
      }
    }
    const z = twoProportionZTest(xa, na, xb, nb);
    if (z && z.p < 0.05) once++;
    if (naiveStopped) naive++;
    if (s.p <= 0.05) {
      sequential++;
      decidedAtSum += decidedAt;
    }
    if (s.lo <= o.pB - o.pA && o.pB - o.pA <= s.hi) covered++;
  }
  return {
    naive: naive / o.runs,
    sequential: sequential / o.runs,
    once: once / o.runs,
    coverage: covered / o.runs,
    meanRequestsToDecide: sequential ? decidedAtSum / sequential : null,
  };
}
