/**
 * Routing a query on a partitioned version: scoring it against all P centroids and ordering them
 * (docs/architecture.md §5.6), the step every search of a partitioned version takes before any shard.
 * Shoal's ranker (the engine's SIMD kernels, `shared/engine/centroid-ranker.ts`) beside the JavaScript
 * scan it replaced (`nearestPartitions`), on the same centroids and queries in the same run, with how
 * often the two pick the same nprobe = 5 % of P partitions.
 *
 * Centroids: P rows sampled from MNIST's 60,000 training images (784-d, the dataset nearest the 768-d the
 * scale model assumes; seeded), queries: MNIST test images.
 *
 *   npm run bench:routing
 *   npm run bench:routing -- --quick   # P = 256 and 2,000, 100 queries
 *
 * Common options (--json, --record, --help): bench/cli.ts.
 */
import { centroidRanker } from '../shared/engine/centroid-ranker.js';
import { nearestPartitions, type Centroids } from '../shared/engine/ivf.js';
import { loadDataset } from '../shared/io/datasets.js';
import { sampleRows } from '../shared/random.js';
import type { Metric } from '../shared/types.js';
import { machineLine, parseCli } from './cli.js';

const cli = parseCli({
  name: 'routing',
  summary: 'Centroid ranking per query (P centroids × 784-d): the engine SIMD ranker beside the JavaScript scan.',
  quick: 'P = 256 and 2,000, 100 queries',
});

const SIZES = cli.quick ? [256, 2000] : [256, 2000, 4096];
const QUERIES = cli.quick ? 100 : 500;
const METRICS: Metric[] = ['l2', 'cosine'];
const SEED = 7;

const ds = loadDataset('mnist', { maxQueries: QUERIES });
const dim = ds.dim;
const queries = Array.from({ length: ds.queryCount }, (_, i) => ds.queries.slice(i * dim, (i + 1) * dim));
const ranker = await centroidRanker();

interface Row {
  partitions: number;
  metric: Metric;
  dim: number;
  queries: number;
  /** ms per query, best of 3 passes. */
  shoalMs: number;
  javascriptMs: number;
  speedup: number;
  /** Queries whose nprobe = 5 % nearest partitions are the same set under both. */
  sameProbeSet: number;
}

function centroidsOf(p: number): Centroids {
  const data = new Float32Array(p * dim);
  sampleRows(ds.baseCount, p, SEED).forEach((r, i) => data.set(ds.base.subarray(r * dim, (r + 1) * dim), i * dim));
  return { count: p, dim, data };
}

function best(pass: () => void): number {
  let min = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    pass();
    min = Math.min(min, performance.now() - t);
  }
  return min / queries.length;
}

const rows: Row[] = [];
for (const p of SIZES) {
  const c = centroidsOf(p);
  for (const metric of METRICS) {
    const nprobe = Math.max(1, Math.round(p * 0.05));
    let same = 0;
    for (const q of queries) {
      const a = new Set(ranker.nearest(c, metric, q, nprobe));
      const b = nearestPartitions(c, metric, q, nprobe);
      if (b.every((x) => a.has(x))) same++;
    }
    const shoalMs = best(() => queries.forEach((q) => ranker.nearest(c, metric, q, p)));
    const javascriptMs = best(() => queries.forEach((q) => nearestPartitions(c, metric, q, p)));
    rows.push({
      partitions: p,
      metric,
      dim,
      queries: queries.length,
      shoalMs: Math.round(shoalMs * 1000) / 1000,
      javascriptMs: Math.round(javascriptMs * 1000) / 1000,
      speedup: Math.round((javascriptMs / shoalMs) * 100) / 100,
      sameProbeSet: same / queries.length,
    });
  }
}

cli.out({
  markdown: [
    `# Routing: centroid ranking per query — ${cli.started.toISOString().slice(0, 10)}`,
    '',
    `Machine: ${machineLine(cli.machine)}. Command: \`${cli.command}\`. Centroids: P MNIST training rows ` +
      `(seed ${SEED}); ${queries.length} MNIST test queries; full order of all P (the coordinator ranks every ` +
      'partition, for widening); ms per query, best of 3 passes. Same probe set: queries whose 5 % nearest ' +
      'partitions are the same under both.',
    '',
    '| P | metric | dim | Shoal ranker ms | JavaScript scan ms | speed-up | same probe set |',
    '|---:|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.partitions} | ${r.metric} | ${r.dim} | ${r.shoalMs} | ${r.javascriptMs} | ${r.speedup}× | ` +
        `${(r.sameProbeSet * 100).toFixed(1)} % |`,
    ),
    '',
  ].join('\n'),
  parameters: { sizes: SIZES, queries: queries.length, metrics: METRICS, seed: SEED, dataset: 'mnist' },
  rows,
});
