/**
 * `npm run chaos [-- --kills 50 --seed 1 --json]`: the crash harness (test/chaos/harness.ts) at a size
 * worth a closing note. Prints a table (or one JSON document with --json); exits 1 when anything
 * acknowledged was lost, a phantom row was seen, or a job stayed stuck.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { runChaos } from './harness.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '50' },
    seed: { type: 'string', default: '1' },
    'settle-s': { type: 'string', default: '240' },
    json: { type: 'boolean', default: false },
  },
});
const kills = Number(values.kills);
const seed = Number(values.seed);
if (!Number.isInteger(kills) || kills < 1) throw new Error('--kills must be a positive integer');
const report = await runChaos({
  kills,
  seed,
  settleMs: Number(values['settle-s']) * 1000,
  progress: (line) => process.stderr.write(`${line}\n`),
});
const failed =
  report.lost.length +
    report.resurrected.length +
    report.phantoms.length +
    report.stuckJobs.length +
    report.importRowsMissing +
    report.errors.length >
    0 || report.countMismatch !== undefined;
if (values.json) {
  process.stdout.write(`${JSON.stringify({ ...report, machine: machine(), failed })}\n`);
} else {
  const rows: Array<[string, string]> = [
    ['machine', machine()],
    ['kills (SIGKILL) / seed', `${report.kills} / ${report.seed}`],
    ['elapsed', `${(report.elapsedMs / 1000).toFixed(0)} s`],
    [
      'acknowledged upserts / deletes / import files',
      `${report.acknowledged.upserts} / ${report.acknowledged.deletes} / ${report.acknowledged.imports}`,
    ],
    ['writes in flight at a kill (unacknowledged)', String(report.inFlightAtKill)],
    ['build requests', String(report.builds)],
    ['lost acknowledged writes', String(report.lost.length)],
    ['resurrected deletes', String(report.resurrected.length)],
    ['phantom rows', String(report.phantoms.length)],
    ['count ≠ visible rows', report.countMismatch ? JSON.stringify(report.countMismatch) : 'no'],
    ['stuck import jobs', String(report.stuckJobs.length)],
    ['rows missing from succeeded imports', String(report.importRowsMissing)],
    ['unexpected answers', String(report.errors.length)],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
  for (const line of [...report.lost, ...report.phantoms, ...report.stuckJobs, ...report.errors].slice(0, 20)) {
    process.stdout.write(`  ${line}\n`);
  }
}
process.exit(failed ? 1 : 0);

function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'cpu';
  const gib = (os.totalmem() / 2 ** 30).toFixed(0);
  return `${os.cpus().length} × ${cpu}, ${gib} GiB, Node ${process.versions.node}`;
}
