/**
 * The scale model's request-latency arithmetic (bench/scale-model.ts; docs/operations.md §6): the fullest
 * searcher's median load is exact, and a row is the sum the docs state.
 */
import { describe, expect, it } from 'vitest';
import { SCENARIO, loadInputs, medianFullestBin, model } from '../../bench/scale-model.js';
import { mulberry32 } from '../../shared/random.js';

describe('medianFullestBin', () => {
  it('is the median of the fullest bin, exactly', () => {
    // Two balls in two bins: apart (max 1) or together (max 2), each half the time.
    expect(medianFullestBin(2, 2)).toBe(1);
    expect(medianFullestBin(7, 1)).toBe(7);
    expect(medianFullestBin(0, 10)).toBe(0);
    expect(medianFullestBin(1, 10)).toBe(1);
    expect(medianFullestBin(100, 64)).toBe(5);
    expect(medianFullestBin(200, 64)).toBe(8);
    expect(medianFullestBin(100, 26)).toBe(8);
    expect(medianFullestBin(200, 128)).toBe(5);
  });

  it('agrees with seeded throws', () => {
    const rnd = mulberry32(17);
    for (const [balls, bins] of [
      [100, 64],
      [200, 64],
      [100, 26],
      [200, 128],
    ]) {
      const m = medianFullestBin(balls, bins);
      let atMost = 0;
      let below = 0;
      const trials = 4000;
      for (let t = 0; t < trials; t++) {
        const counts = new Array<number>(bins).fill(0);
        for (let b = 0; b < balls; b++) counts[Math.floor(rnd() * bins)]++;
        const max = Math.max(...counts);
        if (max <= m) atMost++;
        if (max <= m - 1) below++;
      }
      // The median: P(max ≤ m) ≥ ½ > P(max ≤ m − 1), within the sampling noise of 4,000 throws (σ ≈ 0.008).
      expect(atMost / trials, `${balls} into ${bins}`).toBeGreaterThan(0.46);
      expect(below / trials, `${balls} into ${bins}`).toBeLessThan(0.5);
    }
  });
});

describe('warm search latency rows', () => {
  it('add API Gateway, the longer of the GetItem and the work, and the answer', () => {
    const x = loadInputs(undefined);
    const tenM = SCENARIO.workloads.find((w) => w.label === '10M × 768')!;
    const r = model(x, tenM);
    for (const l of r.latency) {
      const work = l.routingMs + l.waveMs + l.engineMs;
      expect(l.eventualMs).toBeCloseTo(x.apiGatewayMs.value + Math.max(x.getItemMs.value, work) + x.respondMs.value);
      expect(l.strongMs).toBeCloseTo(x.apiGatewayMs.value + x.getItemMs.value + work + x.respondMs.value);
    }
    const nodes = r.latency.find((l) => l.path.startsWith('search nodes, 64 slots × 1') && l.nprobeFraction === 0.05)!;
    expect(nodes).toMatchObject({ shardsProbed: 100, searchers: 64, fullest: 5 });
    expect(nodes.eventualMs).toBeLessThanOrEqual(15);
    const lambdas = r.latency.find((l) => l.path.includes('Lambda') && l.nprobeFraction === 0.05)!;
    expect(lambdas.eventualMs).toBeGreaterThan(30);
  });
});
