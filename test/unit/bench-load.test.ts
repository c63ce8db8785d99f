/**
 * bench:load's report (bench/load.ts) without running the load: the verdict against issue 12's
 * target, the markdown table, the JSON rows, and the command line it documents.
 */
import { describe, expect, it } from 'vitest';
import { usage } from '../../bench/cli.js';
import { MIX, SPEC, TARGET_RATIO, formatReport, summarize, type PhaseRow } from '../../bench/load.js';

function phase(name: PhaseRow['phase'], p99: number, extra: Partial<PhaseRow> = {}): PhaseRow {
  const ops = { requests: 10, p99_ms: p99 };
  return {
    phase: name,
    duration_s: 60,
    requests: 1200,
    rps: 20,
    p50_ms: p99 / 4,
    p99_ms: p99,
    max_ms: p99 * 2,
    errors: 0,
    timeouts: 0,
    non2xx: 0,
    ops: { strong: ops, eventual: ops, upsert: ops, delete: ops },
    ...extra,
  };
}

const build = { seconds: 42.5, finishedInPhase: true, rows: 20_000 };
const info = {
  started: '2026-11-29T10:00:00.000Z',
  machine: 'test cpu × 2',
  command: 'npm run bench:load',
  parameters: {
    dataset: 'mnist',
    rows: 20_000,
    dim: 784,
    metric: 'l2',
    rate: 20,
    connections: 4,
    duration_s: 60,
    k: 10,
  },
};

describe('bench:load report', () => {
  it('compares p99 during the build with p99 without one, against the 3× target', () => {
    // Act
    const met = summarize([phase('no build', 100), phase('during build', 250), phase('after build', 120)], build);
    const missed = summarize([phase('no build', 100), phase('during build', 301)], build);
    // Assess
    expect(met).toMatchObject({ ratio: 2.5, target: TARGET_RATIO, pass: true });
    expect(missed).toMatchObject({ ratio: 3.01, pass: false });
  });

  it('fails the run on any error, timeout or non-2xx answer, whatever the ratio', () => {
    const s = summarize([phase('no build', 100), phase('during build', 100, { non2xx: 1 })], build);
    expect(s.pass).toBe(false);
  });

  it('prints one row per phase, the per-operation p99s and the verdict; the rows survive JSON', () => {
    // Prepare
    const rows = [phase('no build', 100), phase('during build', 400), phase('after build', 150)];
    // Act
    const md = formatReport(summarize(rows, build), info);
    // Assess
    expect(md).toContain('| no build | 60.0 | 1200 | 20.0 | 25.0 | 100.0 | 200.0 | 0 | 0 | 0 |');
    expect(md).toContain('| during build | 60.0 | 1200 | 20.0 | 100.0 | 400.0 | 800.0 | 0 | 0 | 0 |');
    expect(md).toContain('**4.00×** (target ≤ 3×) — NOT met');
    expect(md).toContain('Machine: test cpu × 2. Command: `npm run bench:load`.');
    expect(md).toContain('mnist (20000 rows × 784, l2)');
    expect(md.split('\n').every((l) => l.length <= 200)).toBe(true);
    expect(JSON.parse(JSON.stringify(rows))).toEqual(rows);
    expect(Object.values(MIX).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
  });

  it('documents its options', () => {
    const text = usage(SPEC);
    for (const flag of ['--dataset <name>', '--rows <n>', '--rate <req/s>', '--duration <s>', '--connections <n>'])
      expect(text).toContain(flag);
    expect(text).toContain('npm run -s bench:load');
  });
});
