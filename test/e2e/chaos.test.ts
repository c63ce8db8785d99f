/**
 * The crash harness (test/chaos/harness.ts) at CI size: a few SIGKILLs of the local server during
 * upserts, deletes, builds and an S3-triggered import. `npm run chaos` runs it with ≥ 50 kills.
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../chaos/harness.js';

describe('kill -9 at random points', () => {
  it('loses no acknowledged write, shows no phantom row and leaves no job stuck', async () => {
    const report = await runChaos({ kills: 4, seed: 7, maxRoundMs: 1_500, importEvery: 2, importRows: 1_500 });

    expect(report.errors).toEqual([]);
    expect(report.lost).toEqual([]);
    expect(report.resurrected).toEqual([]);
    expect(report.phantoms).toEqual([]);
    expect(report.countMismatch).toBeUndefined();
    expect(report.stuckJobs).toEqual([]);
    expect(report.importRowsMissing).toBe(0);
    // The workload really ran: writes were acknowledged and some were cut off by a kill.
    expect(report.acknowledged.upserts).toBeGreaterThan(0);
    expect(report.acknowledged.deletes).toBeGreaterThan(0);
  }, 600_000);
});
