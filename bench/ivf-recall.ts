/**
 * How the partition count P shapes IVF routing on the scale bench's 128-d Gaussian mixture, without the
 * stack: k-means (the builder's `trainCentroids`, 256 × P sampled rows) and nearest-centroid assignment of
 * every row, then, per nprobe, the fraction of each query's exact top-10 that lies in its nprobe nearest
 * partitions — the recall an exact search of the probed partitions would reach (an upper bound for the
 * HNSW shards inside them). This is the measurement behind `IVF_POLICY.TARGET_ROWS`.
 *
 *   npm run bench:ivf-recall                          # 1,000,000 rows, P = 50, 100, 200
 *   npm run bench:ivf-recall -- --quick               # 200,000 rows, P = 10, 20, 50
 *   npm run bench:ivf-recall -- --rows 500000 --partitions 25,50
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { IVF_POLICY, assignPartition, nearestPartitions, trainCentroids } from '../shared/engine/ivf.js';
import { machineLine, parseCli } from './cli.js';
import { Progress } from './progress.js';
import { GaussianMixture, exactTopRows } from './synthetic.js';

const cli = parseCli({
  name: 'ivf-recall',
  summary: 'Recall@10 bound per (partitions, nprobe) on the 128-d mixture: the cost of routing, without the stack.',
  quick: '200,000 rows and P = 10, 20, 50 instead of 1,000,000 and P = 50, 100, 200',
  options: [
    { flag: '--rows', arg: 'n', help: 'rows (default 1,000,000; 200,000 with --quick)' },
    { flag: '--partitions', arg: 'P,P,…', help: 'partition counts (default 50,100,200; 10,20,50 with --quick)' },
  ],
});

const ROWS = cli.int('--rows') ?? (cli.quick ? 200_000 : 1_000_000);
const PARTITIONS = (cli.value('--partitions') ?? (cli.quick ? '10,20,50' : '50,100,200')).split(',').map((p) => {
  const n = Number(p);
  return Number.isInteger(n) && n > 0 ? n : cli.fail(`--partitions: ${p} is not a positive integer`);
});
// The same mixture as bench:scale (bench/scale.ts): 256 centres in [-1, 1]^128, σ 0.9, its seed.
const DIM = 128;
const SEED = 20_261_130;
const QUERIES = 200;
const K = 10;
const NPROBES = [1, 2, 4, 8, 12, 16, 24, 32];
const TARGET = 0.95;

interface Row {
  partitions: number;
  rowsPerPartition: number;
  smallest: number;
  largest: number;
  /** recall@10 bound per nprobe */
  recall: Record<string, number>;
  /** fewest probes reaching TARGET, and that as a fraction of P */
  nprobeFor95?: number;
  fractionFor95?: number;
  trainAssignSec: number;
}

const progress = new Progress(2 + PARTITIONS.length);
progress.step(`mixture: ${ROWS.toLocaleString('en-US')} × ${DIM} and ${QUERIES} queries`);
const mix = new GaussianMixture({ dim: DIM, clusters: 256, centreScale: 1, sigma: 0.9, seed: SEED });
const base = new Float32Array(ROWS * DIM);
mix.sample(base, ROWS, 0);
const queries = new Float32Array(QUERIES * DIM);
mix.sample(queries, QUERIES, 1);
progress.step('exact top-10');
const truth = exactTopRows(base, ROWS, DIM, queries, QUERIES, K);

const rows: Row[] = [];
for (const P of PARTITIONS) {
  progress.step(`P = ${P}: train on ${IVF_POLICY.SAMPLE_PER_PARTITION} × P rows, assign all`);
  const started = performance.now();
  const sampleRows = Math.min(ROWS, IVF_POLICY.SAMPLE_PER_PARTITION * P);
  const sample = new Float32Array(sampleRows * DIM);
  for (let i = 0; i < sampleRows; i++) {
    const from = Math.floor((i * ROWS) / sampleRows) * DIM;
    sample.set(base.subarray(from, from + DIM), i * DIM);
  }
  const centroids = trainCentroids(sample, sampleRows, DIM, P, 'l2', SEED + P);
  const partition = new Int32Array(ROWS);
  const sizes = new Int32Array(centroids.count);
  for (let r = 0; r < ROWS; r++) {
    partition[r] = assignPartition(centroids, 'l2', base.subarray(r * DIM, (r + 1) * DIM));
    sizes[partition[r]]++;
  }
  const recall: Record<string, number> = {};
  let nprobeFor95: number | undefined;
  for (const nprobe of NPROBES.filter((n) => n <= P)) {
    let hits = 0;
    for (let q = 0; q < QUERIES; q++) {
      const probed = new Set(nearestPartitions(centroids, 'l2', queries.subarray(q * DIM, (q + 1) * DIM), nprobe));
      for (let j = 0; j < K; j++) if (probed.has(partition[truth[q * K + j]])) hits++;
    }
    recall[nprobe] = hits / (QUERIES * K);
    if (nprobeFor95 === undefined && recall[nprobe] >= TARGET) nprobeFor95 = nprobe;
  }
  rows.push({
    partitions: P,
    rowsPerPartition: Math.round(ROWS / P),
    smallest: Math.min(...sizes),
    largest: Math.max(...sizes),
    recall,
    ...(nprobeFor95 !== undefined ? { nprobeFor95, fractionFor95: nprobeFor95 / P } : {}),
    trainAssignSec: Math.round((performance.now() - started) / 100) / 10,
  });
}
progress.done();

const markdown = [
  `# IVF routing on the 128-d mixture — ${ROWS.toLocaleString('en-US')} rows`,
  '',
  `Machine: ${machineLine(cli.machine)}. Mixture of bench:scale ` +
    `(256 centres in [-1, 1]^${DIM}, σ 0.9, seed ${SEED}); ${QUERIES} queries from the same mixture; ` +
    `k-means as the builder trains it (${IVF_POLICY.SAMPLE_PER_PARTITION} × P sampled rows).` +
    ' Cells: the fraction of each query’s exact top-10 inside its nprobe nearest partitions — the ' +
    'recall@10 an exact search of the probed partitions reaches (HNSW inside them can only lose more).',
  '',
  `| P | rows / partition | smallest | largest | ${NPROBES.map((n) => `nprobe ${n}`).join(' | ')} | ` +
    `nprobe for ${TARGET} (fraction of P) | train + assign s |`,
  `|${'---:|'.repeat(4 + NPROBES.length + 2)}`,
  ...rows.map(
    (r) =>
      `| ${[
        r.partitions,
        r.rowsPerPartition.toLocaleString('en-US'),
        r.smallest.toLocaleString('en-US'),
        r.largest.toLocaleString('en-US'),
        ...NPROBES.map((n) => (r.recall[n] === undefined ? '—' : r.recall[n].toFixed(3))),
        r.nprobeFor95 === undefined ? 'not reached' : `${r.nprobeFor95} (${(100 * r.fractionFor95!).toFixed(0)} %)`,
        r.trainAssignSec,
      ].join(' | ')} |`,
  ),
  '',
  `Reproduce: \`${cli.command}\``,
].join('\n');
cli.out({
  markdown,
  parameters: { rows: ROWS, dim: DIM, queries: QUERIES, k: K, partitions: PARTITIONS, seed: SEED },
  rows,
  ...(cli.value('--rows') !== undefined || cli.value('--partitions') !== undefined
    ? { variant: `${ROWS}-${PARTITIONS.join('-')}` }
    : {}),
});
