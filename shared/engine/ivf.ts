/**
 * IVF partitioning (docs/architecture.md §5.6): k-means centroids over a collection's vectors, the
 * assignment of rows to their nearest centroid, and the probe order of a query. Pure and
 * deterministic (seeded); the builder lays shards out by partition with it, the coordinator routes
 * queries with it.
 *
 * Geometry per metric: l2 partitions by Euclidean distance; cosine normalises rows and centroids
 * (spherical k-means) and ranks by dot product; ip ranks by dot product with plain mean centroids,
 * the usual IVF approximation for inner product (rows of large norm pull their cluster's mean).
 */
import { CorruptDataError, ValidationError } from '../errors.js';
import { mulberry32 } from '../random.js';
import type { Metric } from '../types.js';
import { dot, l2sq, norm } from './distance.js';

/**
 * Tuning knobs of partitioned collections. Each trades build work against search work:
 * - `TARGET_ROWS` (default 5,000): rows per partition the automatic rule aims at
 *   (P = ceil(rows / TARGET_ROWS)). Smaller partitions = a query searches fewer rows per probe and a
 *   smaller share of the collection for the same recall, but more shards (objects, manifest entries, one
 *   task each in a delta plan) and more centroids to rank; larger = the reverse. Measured on the 1M ×
 *   128-d mixture of `bench:scale` (exact search inside the probed partitions, `npm run bench:ivf-recall`):
 *   recall@10 0.95 needs 16 of 50 partitions (32 %) at 20,000 rows each, 16 of 100 (16 %) at 10,000 and
 *   2 of 200 (1 %) at 5,000; on MNIST, 1,875-row partitions need 3 of 32 (`bench:scale`). IVF practice
 *   (FAISS, Milvus: 4–16 × √N lists) partitions far finer still; 5,000 keeps a partition one HNSW shard
 *   worth building while P stays ≤ 4,096 up to 20M rows.
 * - `MIN_ROWS` (default 100,000): below it a collection is not partitioned unless asked
 *   (`index.partitions`). Under ~100k rows one HNSW graph per shard is already fast, and every
 *   partition boundary costs recall.
 * - `SAMPLE_PER_PARTITION` (default 256): k-means trains on this many sampled rows per
 *   centroid (FAISS's guidance is 30–256). More = better centroids, training time grows linearly.
 * - `ITERATIONS` (default 12): Lloyd iterations; assignments rarely move after ~10.
 * - `SPLIT_FACTOR` (default 2) and `SPLIT_MIN_ROWS` (default 5,000): a partition whose live rows exceed
 *   SPLIT_FACTOR × max(its fair share — rows at layout / P —, SPLIT_MIN_ROWS) is split in two by 2-means
 *   over its own rows (only its rows move). Lower = more even partitions, more split work. The floor
 *   keeps a collection laid out small (a forced P on its first 1,000 rows) from splitting on every delta;
 *   it equals TARGET_ROWS so a grown collection's partitions stay between one and two targets.
 * - `MERGE_FRACTION` (default 0.125): a partition whose live rows fall under this fraction of the
 *   fair share is dissolved into its neighbours (its rows move to their next-nearest centroids).
 * - `LAYOUT_MIN_ROWS_PER_PARTITION` (default 32): a forced P is laid out once there are this many rows
 *   per partition; before that the collection stays unpartitioned. Centroids trained on fewer rows
 *   route poorly, and splits alone would not repair them.
 * - `RELAYOUT_GROWTH` (default 2): a partitioned collection that has grown this many times past its
 *   layout's rows is laid out again (new k-means, P by the rule or the forced count). Geometric, so the
 *   rewrites add up to a constant factor of the rows (≤ 2× the rows at 2, ≤ 1.33× at 4); lower = fresher
 *   centroids, more rewrites. Splits between layouts keep partitions small but cannot move rows across
 *   partitions, so routing decays with growth: on the 1M mixture (`npm run bench:ivf-recall`), recall@10
 *   0.95 needs 16 of 184 partitions (9 %) laid out at 500,000 rows — the worst case at 2 — but 32 of 185
 *   (17 %) laid out at 250,000, the worst case at 4.
 * - `MAX_SHARDS_PER_PARTITION` (default 4): shards a partition accumulates before its smaller ones are
 *   merged (tiered per-partition compaction, never a global rebuild). Higher = less rebuild work, more
 *   shards per probe.
 * - `MAX_PARTITIONS` (default 4,096): the centroid table of a query is ranked in full per query
 *   (4,096 × 768-d ≈ 3 M multiply-adds, ~2 ms); beyond that a coarse index over centroids would be due.
 * - `TWO_LEVEL_MIN_PARTITIONS` (default 256): from this many partitions on, k-means is two-level — ⌈√P⌉
 *   coarse centroids, then each coarse cluster's rows split by their own k-means into a share of the P
 *   fine centroids proportional to their count. Flat Lloyd costs sample × P × dim per iteration, and the
 *   sample grows with P (SAMPLE_PER_PARTITION), so it is quadratic in P (at 4,096 × 768-d: ~18 core-hours);
 *   two-level costs sample × (√P + P/√P) × dim, ~32× less at 4,096. The price: a fine centroid only sees
 *   rows of its coarse cluster, so partitions along coarse boundaries are a little less balanced. Lower =
 *   cheaper training of mid-sized tables, higher = flat (slightly better) centroids for longer.
 */
export const IVF_POLICY = {
  TARGET_ROWS: 5_000,
  MIN_ROWS: 100_000,
  SAMPLE_PER_PARTITION: 256,
  ITERATIONS: 12,
  SPLIT_FACTOR: 2,
  SPLIT_MIN_ROWS: 5_000,
  MERGE_FRACTION: 0.125,
  LAYOUT_MIN_ROWS_PER_PARTITION: 32,
  RELAYOUT_GROWTH: 2,
  MAX_SHARDS_PER_PARTITION: 4,
  MAX_PARTITIONS: 4096,
  TWO_LEVEL_MIN_PARTITIONS: 256,
};

/**
 * Partitions probed by a search that does not say (`nprobe`) and whose line was never tuned:
 * 10 % of the partitions, at least 4 (all of them when there are fewer). `tune` replaces it with
 * the smallest nprobe that meets a recall target; more probes = higher recall, proportionally
 * more shards searched.
 */
export function defaultNprobe(partitions: number): number {
  return Math.min(partitions, Math.max(4, Math.ceil(partitions * 0.1)));
}

/** P for a collection of `rows` live rows: the forced count, else the automatic rule (0 = unpartitioned). */
export function partitionsFor(rows: number, forced: number | undefined, policy = IVF_POLICY): number {
  if (forced !== undefined) return forced;
  if (rows < policy.MIN_ROWS) return 0;
  return Math.min(policy.MAX_PARTITIONS, Math.ceil(rows / policy.TARGET_ROWS));
}

/** Centroids: `count` × `dim` float32, row-major. */
export interface Centroids {
  count: number;
  dim: number;
  data: Float32Array;
}

function similarityMetric(metric: Metric): 'l2' | 'dot' {
  return metric === 'l2' ? 'l2' : 'dot';
}

/** Lower is closer. */
function distance(
  kind: 'l2' | 'dot',
  a: Float32Array,
  aOff: number,
  b: Float32Array,
  bOff: number,
  dim: number,
): number {
  return kind === 'l2' ? l2sq(a, aOff, b, bOff, dim) : -dot(a, aOff, b, bOff, dim);
}

function normalizeInPlace(data: Float32Array, count: number, dim: number): void {
  for (let r = 0; r < count; r++) {
    const n = norm(data, r * dim, dim);
    if (n > 0) for (let j = 0; j < dim; j++) data[r * dim + j] /= n;
  }
}

/** The nearest centroid of row `row` of `data`. */
function nearest(c: Centroids, kind: 'l2' | 'dot', data: Float32Array, off: number): number {
  let best = 0;
  let bestD = Infinity;
  for (let p = 0; p < c.count; p++) {
    const d = distance(kind, data, off, c.data, p * c.dim, c.dim);
    if (d < bestD) {
      bestD = d;
      best = p;
    }
  }
  return best;
}

/**
 * Trains `k` centroids on `count` rows: flat k-means below `twoLevelMin` (IVF_POLICY.TWO_LEVEL_MIN_PARTITIONS)
 * centroids, two-level above it (see the policy). Deterministic for a seed; `data` is not modified.
 */
export function trainCentroids(
  data: Float32Array,
  count: number,
  dim: number,
  k: number,
  metric: Metric,
  seed: number,
  iterations = IVF_POLICY.ITERATIONS,
  twoLevelMin = IVF_POLICY.TWO_LEVEL_MIN_PARTITIONS,
): Centroids {
  if (!Number.isInteger(k) || k < 1)
    throw new ValidationError(`partitions must be ≥ 1, got ${k}`, { field: 'index.partitions' });
  if (count < k)
    throw new ValidationError(`cannot train ${k} partitions on ${count} rows`, { field: 'index.partitions' });
  return k >= twoLevelMin
    ? trainTwoLevel(data, count, dim, k, metric, seed, iterations)
    : trainFlat(data, count, dim, k, metric, seed, iterations);
}

/**
 * Two-level k-means: ⌈√k⌉ coarse centroids over all rows, then inside each coarse cluster a flat k-means
 * with that cluster's share of the k centroids (largest remainder, at least one, at most its row count).
 * Fine centroids are listed coarse cluster by coarse cluster.
 */
function trainTwoLevel(
  data: Float32Array,
  count: number,
  dim: number,
  k: number,
  metric: Metric,
  seed: number,
  iterations: number,
): Centroids {
  const coarse = trainFlat(data, count, dim, Math.ceil(Math.sqrt(k)), metric, seed, iterations);
  const kind = similarityMetric(metric);
  const members: number[][] = Array.from({ length: coarse.count }, () => []);
  for (let r = 0; r < count; r++) members[nearest(coarse, kind, data, r * dim)].push(r);
  const shares = allocate(
    members.map((m) => m.length),
    k,
  );
  const out: Centroids = { count: k, dim, data: new Float32Array(k * dim) };
  let next = 0;
  members.forEach((rows, c) => {
    if (shares[c] === 0) return;
    const sub = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => sub.set(data.subarray(r * dim, (r + 1) * dim), i * dim));
    const fine = trainFlat(sub, rows.length, dim, shares[c], metric, seed + 1 + c, iterations);
    out.data.set(fine.data, next * dim);
    next += fine.count;
  });
  return out;
}

/**
 * `total` split over groups in proportion to `sizes` (largest remainder), each share ≤ its size and ≥ 1
 * for a non-empty group while there is enough to go round. Σ sizes ≥ total.
 */
export function allocate(sizes: readonly number[], total: number): number[] {
  const sum = sizes.reduce((a, b) => a + b, 0);
  const exact = sizes.map((n) => (n * total) / sum);
  const out = exact.map((x, i) => Math.min(sizes[i], Math.max(sizes[i] > 0 ? 1 : 0, Math.floor(x))));
  let left = total - out.reduce((a, b) => a + b, 0);
  // Hand out (or take back) one at a time, largest remainder first; ties to the lower index.
  const order = exact.map((x, i) => ({ i, rem: x - Math.floor(x) })).sort((a, b) => b.rem - a.rem || a.i - b.i);
  while (left > 0) {
    const before = left;
    for (const { i } of order) {
      if (left === 0) break;
      if (out[i] < sizes[i]) {
        out[i]++;
        left--;
      }
    }
    if (left === before) break;
  }
  while (left < 0) {
    const before = left;
    for (const { i } of [...order].reverse()) {
      if (left === 0) break;
      if (out[i] > 1) {
        out[i]--;
        left++;
      }
    }
    if (left === before) break;
  }
  return out;
}

/**
 * Flat k-means (k-means++ seeding, then Lloyd iterations). Empty clusters are re-seeded from the row
 * farthest from its centroid, so every partition starts non-empty.
 */
function trainFlat(
  data: Float32Array,
  count: number,
  dim: number,
  k: number,
  metric: Metric,
  seed: number,
  iterations: number,
): Centroids {
  const kind = similarityMetric(metric);
  const rows = metric === 'cosine' ? data.slice(0, count * dim) : data.subarray(0, count * dim);
  if (metric === 'cosine') normalizeInPlace(rows, count, dim);
  const rnd = mulberry32(seed);
  const c: Centroids = { count: k, dim, data: new Float32Array(k * dim) };

  // k-means++: each next seed drawn with probability ∝ its distance to the nearest chosen one
  // (for dot geometry, 1 − similarity of normalised rows; ip approximates the same way).
  const best = new Float64Array(count).fill(Infinity);
  let pick = Math.floor(rnd() * count);
  for (let s = 0; s < k; s++) {
    c.data.set(rows.subarray(pick * dim, (pick + 1) * dim), s * dim);
    let total = 0;
    for (let r = 0; r < count; r++) {
      const d = Math.max(
        0,
        kind === 'l2' ? l2sq(rows, r * dim, c.data, s * dim, dim) : 1 - dot(rows, r * dim, c.data, s * dim, dim),
      );
      if (d < best[r]) best[r] = d;
      total += best[r];
    }
    if (s + 1 === k) break;
    let target = rnd() * total;
    pick = count - 1;
    for (let r = 0; r < count; r++) {
      target -= best[r];
      if (target <= 0) {
        pick = r;
        break;
      }
    }
  }

  const assign = new Int32Array(count);
  const sums = new Float64Array(k * dim);
  const sizes = new Int32Array(k);
  for (let it = 0; it < iterations; it++) {
    sums.fill(0);
    sizes.fill(0);
    let moved = 0;
    for (let r = 0; r < count; r++) {
      const p = nearest(c, kind, rows, r * dim);
      if (it === 0 || assign[r] !== p) moved++;
      assign[r] = p;
      sizes[p]++;
      for (let j = 0; j < dim; j++) sums[p * dim + j] += rows[r * dim + j];
    }
    for (let p = 0; p < k; p++) {
      if (sizes[p] === 0) {
        // Re-seed from the row worst served by its centroid: splits the loosest cluster.
        let worst = 0;
        let worstD = -Infinity;
        for (let r = 0; r < count; r++) {
          const d = distance(kind, rows, r * dim, c.data, assign[r] * dim, dim);
          if (d > worstD) {
            worstD = d;
            worst = r;
          }
        }
        c.data.set(rows.subarray(worst * dim, (worst + 1) * dim), p * dim);
        continue;
      }
      for (let j = 0; j < dim; j++) c.data[p * dim + j] = sums[p * dim + j] / sizes[p];
    }
    if (metric === 'cosine') normalizeInPlace(c.data, k, dim);
    if (moved === 0) break;
  }
  return c;
}

/**
 * Probe order for a query: the `n` nearest partitions, nearest first. A cosine query needs no
 * normalisation (ranking by dot product is the same up to the query's norm).
 */
export function nearestPartitions(c: Centroids, metric: Metric, query: Float32Array, n: number): number[] {
  const kind = similarityMetric(metric);
  const scored: Array<{ p: number; d: number }> = [];
  for (let p = 0; p < c.count; p++) scored.push({ p, d: distance(kind, query, 0, c.data, p * c.dim, c.dim) });
  scored.sort((a, b) => a.d - b.d || a.p - b.p);
  return scored.slice(0, Math.min(n, c.count)).map((s) => s.p);
}

/** The partition of one vector. */
export function assignPartition(c: Centroids, metric: Metric, vector: Float32Array): number {
  return nearest(c, similarityMetric(metric), vector, 0);
}

/** Rows grouped by their nearest centroid (the builder's deltas, a plan's assign tasks). */
export function groupByPartition<R extends { vector: Float32Array }>(
  c: Centroids,
  metric: Metric,
  rows: readonly R[],
): Map<number, R[]> {
  const out = new Map<number, R[]>();
  for (const r of rows) {
    const p = assignPartition(c, metric, r.vector);
    const list = out.get(p);
    if (list) list.push(r);
    else out.set(p, [r]);
  }
  return out;
}

/** A centroid table as bytes (what the manifest's `partitions.key` object holds): little-endian float32. */
export function encodeCentroids(c: Centroids): Uint8Array {
  const out = new Uint8Array(c.count * c.dim * 4);
  new Float32Array(out.buffer).set(c.data);
  return out;
}

export function decodeCentroids(bytes: Uint8Array, count: number, dim: number): Centroids {
  if (bytes.byteLength !== count * dim * 4) {
    throw new CorruptDataError(`centroid table holds ${bytes.byteLength} bytes, expected ${count} × ${dim} float32`);
  }
  const data = new Float32Array(count * dim);
  new Uint8Array(data.buffer).set(bytes);
  return { count, dim, data };
}

/** A copy of `c` without partition `drop` (indices above it shift down by one). */
export function withoutPartition(c: Centroids, drop: number): Centroids {
  const data = new Float32Array((c.count - 1) * c.dim);
  data.set(c.data.subarray(0, drop * c.dim));
  data.set(c.data.subarray((drop + 1) * c.dim), drop * c.dim);
  return { count: c.count - 1, dim: c.dim, data };
}

/** A copy of `c` with partition `p` replaced by `a` and `b` appended (a split). */
export function withSplit(c: Centroids, p: number, a: Float32Array, b: Float32Array): Centroids {
  const data = new Float32Array((c.count + 1) * c.dim);
  data.set(c.data);
  data.set(a, p * c.dim);
  data.set(b, c.count * c.dim);
  return { count: c.count + 1, dim: c.dim, data };
}
