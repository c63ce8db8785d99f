/**
 * The scale model's request-latency arithmetic (bench/scale-model.ts; docs/operations.md §6): the fullest
 * searcher's median load is exact, and a row is the sum the docs state.
 */
import { describe, expect, it } from 'vitest';
import { SCENARIO, loadInputs, medianFullestBin, model } from '../../bench/scale-model.js';

describe('medianFullestBin', () => {
  it('is the median of the fullest bin, exactly', () => {
    // Two balls in two bins: apart (max 1) or together (max 2), each half the time.
    expect(medianFullestBin(2, 2)).toBe(1);
    expect(medianFullestBin(7, 1)).toBe(7);
    expect(medianFullestBin(0, 10)).toBe(0);
    expect(medianFullestBin(1, 10)).toBe(1);
    // Cross-checked against 40,000 seeded throws each: P(max ≤ m) 0.72 at (100, 64, 5), 0.74 at (200, 64, 8),
    // 0.65 at (100, 26, 8), 0.50 at (200, 128, 5).
    expect(medianFullestBin(100, 64)).toBe(5);
    expect(medianFullestBin(200, 64)).toBe(8);
    expect(medianFullestBin(100, 26)).toBe(8);
    expect(medianFullestBin(200, 128)).toBe(5);
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
