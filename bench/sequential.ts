/**
 * Why experiment verdicts come from the always-valid sequential test (mSPRT) and not from the
 * z-test: seeded A/B simulations of an analyst who peeks every 50 requests and stops at the
 * first p < 0.05. Prints false-positive rates under no difference (naive peeking at the z-test,
 * the sequential test, and the z-test read once at the planned end), then the sequential test's
 * power and mean requests to a verdict for three mixing variances τ².
 *
 *   npm run bench:sequential      (writes bench/results/sequential-<date>.md)
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { DEFAULT_MSPRT_TAU2 } from '../shared/lifecycle/experiment-stats.js';
import { simulateAb } from '../test/helpers/ab-sim.js';

const started = new Date();
const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
const lines = [
  `# Peeking at experiments: z-test vs sequential test — ${started.toISOString()}`,
  '',
  `Machine: ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, Node ${process.version}. A look every 50 requests; α = 0.05; default τ² = ${DEFAULT_MSPRT_TAU2}.`,
  '',
  '## No true difference (every "win" is a false positive)',
  '',
  '| rates | split | requests | runs | z-test, peeking | sequential, peeking | z-test read once at the end | sequential CI coverage |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
];
for (const s of [
  { seed: 20170601, runs: 1000, pA: 0.1, pB: 0.1, weight: 0.5, every: 50, total: 3000 },
  { seed: 7, runs: 600, pA: 0.02, pB: 0.02, weight: 0.2, every: 50, total: 5000 },
]) {
  const r = simulateAb(s);
  lines.push(
    `| ${pct(s.pA)} vs ${pct(s.pB)} | ${100 - s.weight * 100}/${s.weight * 100} | ${s.total} | ${s.runs} | ${pct(r.naive)} | ${pct(r.sequential)} | ${pct(r.once)} | ${pct(r.coverage)} |`,
  );
}
lines.push(
  '',
  '## Real differences: power and mean requests until the sequential verdict (50/50 split, up to 10 000 requests, 300 runs)',
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
for (const tau2 of [1e-4, 1e-3, 1e-2]) {
  const cells = effects.map(([pA, pB], i) => {
    const r = simulateAb({ seed: 1000 + i, runs: 300, pA, pB, weight: 0.5, every: 50, total: 10_000, tau2 });
    return `${pct(r.sequential)}${r.meanRequestsToDecide !== null ? `; ${Math.round(r.meanRequestsToDecide)}` : ''}`;
  });
  lines.push(`| ${tau2}${tau2 === DEFAULT_MSPRT_TAU2 ? ' (default)' : ''} | ${cells.join(' | ')} |`);
}
lines.push('');
const md = lines.join('\n');
console.log(md);
const file = `bench/results/sequential-${started.toISOString().slice(0, 10)}.md`;
await writeFile(file, md);
process.stderr.write(`wrote ${file}\n`);
