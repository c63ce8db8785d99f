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
 *   npm run bench:ivf-recall -- --grown-from 250000,500000   # laid out at 250k / 500k rows, grown by splits
 *
 * `--grown-from L` adds a row per L for a collection as the builder keeps it: laid out (k-means, P by
 * TARGET_ROWS) on its first L rows, then the rest arriving in deltas of 50,000 rows, each to its nearest
 * partition, a partition past SPLIT_FACTOR × max(fair share, SPLIT_MIN_ROWS) split by 2-means over its own
 * rows. This is the measurement behind `IVF_POLICY.RELAYOUT_GROWTH`: splits keep partitions small but
 * cannot move rows between partitions, so routing decays the further the data grew past its layout.
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import {
  IVF_POLICY,
  assignPartition,
  nearestPartitions,
  trainCentroids,
  withSplit,
  type Centroids,
} from '../shared/engine/ivf.js';
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
    {
      flag: '--grown-from',
      arg: 'L,L,…',
      help: 'also: laid out at L rows, grown to all by splits (default: a quarter and half of the rows)',
    },
  ],
});

const ROWS = cli.int('--rows') ?? (cli.quick ? 200_000 : 1_000_000);
const PARTITIONS = (cli.value('--partitions') ?? (cli.quick ? '10,20,50' : '50,100,200')).split(',').map((p) => {
  const n = Number(p);
  return Number.isInteger(n) && n > 0 ? n : cli.fail(`--partitions: ${p} is not a positive integer`);
});
// By default the worst layouts RELAYOUT_GROWTH 4 and 2 leave at ROWS: laid out at a quarter and at half of it.
const GROWN_FROM = (
  cli.value('--grown-from')?.split(',') ??
  [ROWS / 4, ROWS / 2].map(Math.floor).filter((l) => l >= IVF_POLICY.TARGET_ROWS)
).map((l) => {
  const n = Number(l);
  return Number.isInteger(n) && n >= IVF_POLICY.TARGET_ROWS && n <= ROWS
    ? n
    : cli.fail(`--grown-from: ${l} must be an integer in [${IVF_POLICY.TARGET_ROWS}, ${ROWS}]`);
});
/** Rows per delta while a grown layout takes in the rest (a builder run's tail at this ingest rate). */
const DELTA_ROWS = 50_000;
// The same mixture as bench:scale (bench/scale.ts): 256 centres in [-1, 1]^128, σ 0.9, its seed.
const DIM = 128;
const SEED = 20_261_130;
const QUERIES = 200;
const K = 10;
const NPROBES = [1, 2, 4, 8, 12, 16, 24, 32];
const TARGET = 0.95;

interface Row {
  /** Rows k-means laid out (all of them, or L for a grown layout). */
  layoutRows: number;
  /** Partitions splits added after the layout. */
  splits: number;
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

const progress = new Progress(2 + PARTITIONS.length + GROWN_FROM.length);
progress.step(`mixture: ${ROWS.toLocaleString('en-US')} × ${DIM} and ${QUERIES} queries`);
const mix = new GaussianMixture({ dim: DIM, clusters: 256, centreScale: 1, sigma: 0.9, seed: SEED });
const base = new Float32Array(ROWS * DIM);
mix.sample(base, ROWS, 0);
const queries = new Float32Array(QUERIES * DIM);
mix.sample(queries, QUERIES, 1);
progress.step('exact top-10');
const truth = exactTopRows(base, ROWS, DIM, queries, QUERIES, K);

/** k-means as the builder trains it: SAMPLE_PER_PARTITION × k rows spread evenly over `members`. */
function train(members: ArrayLike<number>, k: number, seed: number, sampleAll = false): Centroids {
  const n = sampleAll ? members.length : Math.min(members.length, IVF_POLICY.SAMPLE_PER_PARTITION * k);
  const sample = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) {
    const from = members[Math.floor((i * members.length) / n)] * DIM;
    sample.set(base.subarray(from, from + DIM), i * DIM);
  }
  return trainCentroids(sample, n, DIM, k, 'l2', seed);
}

/** The table row of one layout: sizes and the recall bound per nprobe. */
function score(
  centroids: Centroids,
  partition: Int32Array,
  layout: { layoutRows: number; splits: number; started: number },
): Row {
  const P = centroids.count;
  const sizes = new Int32Array(P);
  for (const p of partition) sizes[p]++;
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
  return {
    layoutRows: layout.layoutRows,
    splits: layout.splits,
    partitions: P,
    rowsPerPartition: Math.round(ROWS / P),
    smallest: Math.min(...sizes),
    largest: Math.max(...sizes),
    recall,
    ...(nprobeFor95 !== undefined ? { nprobeFor95, fractionFor95: nprobeFor95 / P } : {}),
    trainAssignSec: Math.round((performance.now() - layout.started) / 100) / 10,
  };
}

const all = Int32Array.from({ length: ROWS }, (_, r) => r);
const rows: Row[] = [];
for (const P of PARTITIONS) {
  progress.step(`P = ${P}: train on ${IVF_POLICY.SAMPLE_PER_PARTITION} × P rows, assign all`);
  const started = performance.now();
  const centroids = train(all, P, SEED + P);
  const partition = new Int32Array(ROWS);
  for (let r = 0; r < ROWS; r++) partition[r] = assignPartition(centroids, 'l2', base.subarray(r * DIM, (r + 1) * DIM));
  rows.push(score(centroids, partition, { layoutRows: ROWS, splits: 0, started }));
}

for (const L of GROWN_FROM) {
  const P0 = Math.ceil(L / IVF_POLICY.TARGET_ROWS);
  progress.step(`laid out at ${L.toLocaleString('en-US')} rows (P = ${P0}), grown by splits`);
  const started = performance.now();
  let centroids = train(all.subarray(0, L), P0, SEED + P0);
  const partition = new Int32Array(ROWS);
  const members: number[][] = Array.from({ length: P0 }, () => []);
  const place = (r: number) => {
    partition[r] = assignPartition(centroids, 'l2', base.subarray(r * DIM, (r + 1) * DIM));
    members[partition[r]].push(r);
    return partition[r];
  };
  for (let r = 0; r < L; r++) place(r);
  const cap = IVF_POLICY.SPLIT_FACTOR * Math.max(L / P0, IVF_POLICY.SPLIT_MIN_ROWS);
  let splits = 0;
  for (let from = L; from < ROWS; from += DELTA_ROWS) {
    const touched = new Set<number>();
    for (let r = from; r < Math.min(ROWS, from + DELTA_ROWS); r++) touched.add(place(r));
    // As the builder's splitPartition: 2-means over all of the partition's rows, seed + partition.
    for (const p of [...touched].sort((a, b) => a - b)) {
      if (members[p].length <= cap) continue;
      const two = train(members[p], 2, SEED + p, true);
      const halves: number[][] = [[], []];
      for (const r of members[p]) halves[assignPartition(two, 'l2', base.subarray(r * DIM, (r + 1) * DIM))].push(r);
      if (!halves[0].length || !halves[1].length) continue;
      const next = centroids.count;
      centroids = withSplit(centroids, p, two.data.slice(0, DIM), two.data.slice(DIM, 2 * DIM));
      members[p] = halves[0];
      members[next] = halves[1];
      for (const r of halves[1]) partition[r] = next;
      splits++;
    }
  }
  rows.push(score(centroids, partition, { layoutRows: L, splits, started }));
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
  `Rows laid out at L < all: k-means (P = L / ${IVF_POLICY.TARGET_ROWS.toLocaleString('en-US')}) on the first L ` +
    `rows, then the rest in deltas of ${DELTA_ROWS.toLocaleString('en-US')} to their nearest partition, a ` +
    `partition past ${IVF_POLICY.SPLIT_FACTOR} × max(fair share, ` +
    `${IVF_POLICY.SPLIT_MIN_ROWS.toLocaleString('en-US')}) split by 2-means over its rows, as the builder ` +
    'does between layouts.',
  '',
  '| laid out at | splits | P | rows / partition | smallest | largest | ' +
    `${NPROBES.map((n) => `nprobe ${n}`).join(' | ')} | nprobe for ${TARGET} (fraction of P) | train + assign s |`,
  `|${'---:|'.repeat(6 + NPROBES.length + 2)}`,
  ...rows.map(
    (r) =>
      `| ${[
        r.layoutRows === ROWS ? 'all rows' : r.layoutRows.toLocaleString('en-US'),
        r.splits,
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
  parameters: {
    rows: ROWS,
    dim: DIM,
    queries: QUERIES,
    k: K,
    partitions: PARTITIONS,
    grownFrom: GROWN_FROM,
    seed: SEED,
  },
  rows,
  ...(cli.value('--rows') !== undefined ||
  cli.value('--partitions') !== undefined ||
  cli.value('--grown-from') !== undefined
    ? { variant: `${ROWS}-${PARTITIONS.join('-')}-${GROWN_FROM.join('-')}` }
    : {}),
});
