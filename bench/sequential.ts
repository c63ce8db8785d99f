/**
 * Why experiment verdicts come from the always-valid sequential test (mSPRT) and not from the
 * z-test: seeded A/B simulations of an analyst who peeks every 50 requests and stops at the
 * first p < 0.05. Prints false-positive rates under no difference (naive peeking at the z-test,
 * the sequential test, and the z-test read once at the planned end), then the sequential test's
 * power and mean requests to a verdict for three mixing variances τ².
 *
 *   npm run bench:sequential               # a few seconds
 *   npm run bench:sequential -- --quick    # a tenth of the runs
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { DEFAULT_MSPRT_TAU2 } from '../shared/lifecycle/experiment-stats.js';
import { simulateAb } from '../test/helpers/ab-sim.js';
import { machineLine, parseCli } from './cli.js';

const cli = parseCli({
  name: 'sequential',
  summary: 'False positives of peeking at the z-test vs the sequential test (mSPRT); power per τ².',
  quick: 'a tenth of the simulated runs',
});
const runs = (n: number): number => (cli.quick ? n / 10 : n);
const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
const lines = [
  `# Peeking at experiments: z-test vs sequential test — ${cli.started.toISOString()}`,
  '',
  `Machine: ${machineLine(cli.machine)}. A look every 50 requests; α = 0.05; default τ² = ${DEFAULT_MSPRT_TAU2}.`,
  '',
  '## No true difference (every "win" is a false positive)',
  '',
  '| rates | split | requests | runs | z-test, peeking | sequential, peeking | z-test read once at the end |' +
    ' sequential CI coverage |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
];
const nullRows: object[] = [];
for (const s of [
  { seed: 20170601, runs: runs(1000), pA: 0.1, pB: 0.1, weight: 0.5, every: 50, total: 3000 },
  { seed: 7, runs: runs(600), pA: 0.02, pB: 0.02, weight: 0.2, every: 50, total: 5000 },
]) {
  const r = simulateAb(s);
  nullRows.push({ ...s, ...r });
  lines.push(
    `| ${pct(s.pA)} vs ${pct(s.pB)} | ${100 - s.weight * 100}/${s.weight * 100} | ${s.total} | ${s.runs} |` +
      ` ${pct(r.naive)} | ${pct(r.sequential)} | ${pct(r.once)} | ${pct(r.coverage)} |`,
  );
}
const powerRuns = runs(300);
lines.push(
  '',
  '## Real differences: power and mean requests until the sequential verdict' +
    ` (50/50 split, up to 10 000 requests, ${powerRuns} runs)`,
  '',
);
const effects = [
  [0.1, 0.12],
  [0.1, 0.15],
  [0.1, 0.3],
  [0.02, 0.03],
] as const;
lines.push(
  `| τ² | ${effects.map(([a, b]) => `${pct(a)} → ${pct(b)}`).join(' | ')} |`,
  `|---|${effects.map(() => '---:').join('|')}|`,
);
const powerRows: object[] = [];
for (const tau2 of [1e-4, 1e-3, 1e-2]) {
  const cells = effects.map(([pA, pB], i) => {
    const s = { seed: 1000 + i, runs: powerRuns, pA, pB, weight: 0.5, every: 50, total: 10_000, tau2 };
    const r = simulateAb(s);
    powerRows.push({ ...s, ...r });
    return `${pct(r.sequential)}${r.meanRequestsToDecide !== null ? `; ${Math.round(r.meanRequestsToDecide)}` : ''}`;
  });
  lines.push(`| ${tau2}${tau2 === DEFAULT_MSPRT_TAU2 ? ' (default)' : ''} | ${cells.join(' | ')} |`);
}
lines.push('');

cli.out({
  markdown: lines.join('\n'),
  parameters: { alpha: 0.05, every: 50, defaultTau2: DEFAULT_MSPRT_TAU2 },
  // One row per simulated scenario: its parameters and outcome (rates are shares of runs).
  rows: nullRows,
  tables: { power: powerRows },
});
