/**
 * Embedding drift statistics (docs/architecture.md §8.8, docs/drift.md): pure functions, no I/O.
 *
 * A **reference** summarises a sample of a collection's live rows: for each of a few seeded random
 * directions the decile edges of the projections, the deciles of the vector norms, k seeded k-means
 * centroids and the deciles of each row's distance to its nearest centroid. A **window** counts how the
 * vectors seen since (queries or upserts) fall into those bins. Windows are plain counters, so windows of
 * many containers merge by addition (the Catalog item is updated with DynamoDB `ADD`). The population
 * stability index (PSI) of each distribution against the reference says how far the window moved.
 */
import { dot as dotAt, l2sq } from '../engine/distance.js';
import { mulberry32 } from '../random.js';

/**
 * Random projection directions (default 16). Each costs one dot product per observed vector and
 * `dimension` floats of memory; more directions catch a shift confined to fewer dimensions, at that cost.
 */
export const DRIFT_PROJECTIONS = 16;
/** Bins per distribution: the reference's deciles (9 edges). The usual PSI binning; more bins = more noise. */
export const DRIFT_BINS = 10;
/** Centroids of the reference (default 8): coarse clusters; more = finer "off-cluster" signal, more distances. */
export const DRIFT_CENTROIDS = 8;
/** Lloyd iterations of the reference's k-means (default 6): the centroids only anchor distances. */
export const DRIFT_KMEANS_ITERATIONS = 6;
/**
 * PSI below this is `ok` (default 0.1, the customary "no significant shift" bound). Lower flags smaller
 * shifts and more sampling noise.
 */
export const PSI_WARN = 0.1;
/**
 * PSI above this is `alert` (default 0.25, the customary "significant shift" bound; the CDK alarm uses it).
 * Lower pages sooner on moderate shifts; higher only on gross ones (a wrong model, unnormalised vectors).
 */
export const PSI_ALERT = 0.25;
/**
 * Vectors a window needs before its PSI means anything (default 200). A window drawn from the reference
 * itself has PSI ≈ (bins − 1) / n from sampling alone: 0.045 at 200, half the warn bound; fewer would
 * warn on noise. Below it the status is `insufficient` and no metric is emitted.
 */
export const DRIFT_MIN_COUNT = 200;
/** Floor of a bin's share in the PSI (empty bins would make ln(p/q) infinite). */
export const PSI_EPSILON = 1e-4;

export type DriftKind = 'query' | 'ingest';
export const DRIFT_KINDS: readonly DriftKind[] = ['query', 'ingest'];
export type DriftStatus = 'ok' | 'warn' | 'alert' | 'insufficient';

/** The model part of drift keys: `<model>@<version>`, or `none` for an unbound collection. */
export function modelKey(model: { name: string; version: number } | undefined): string {
  return model ? `${model.name}@${model.version}` : 'none';
}

/** FNV-1a of `collection` and `model`: the seed of the projections and the sample. */
export function driftSeed(collection: string, model: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${collection}\u0000${model}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * `count` seeded unit directions in `dimension` dimensions (Gaussian components, normalised): regenerated
 * from the seed wherever needed, never stored.
 */
export function projections(dimension: number, seed: number, count = DRIFT_PROJECTIONS): Float32Array[] {
  const rnd = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  return Array.from({ length: count }, () => {
    const v = new Float32Array(dimension);
    let s = 0;
    for (let i = 0; i < dimension; i++) {
      v[i] = gauss();
      s += v[i] * v[i];
    }
    const inv = 1 / Math.sqrt(s || 1);
    for (let i = 0; i < dimension; i++) v[i] *= inv;
    return v;
  });
}

// Every observed query pays 16 projections and 8 centroid distances, on the request path: the engine's
// loops keep four independent sums the CPU overlaps, where one running sum waits on each addition.
function dot(a: Float32Array, b: Float32Array): number {
  return dotAt(a, 0, b, 0, a.length);
}

function dist(a: Float32Array, b: Float32Array): number {
  return Math.sqrt(l2sq(a, 0, b, 0, a.length));
}

/**
 * The bin of `x`: the number of edges ≤ x (0 … edges.length). A value equal to an edge goes to the bin
 * above it, as the reference's own rows did when its shares were counted.
 */
export function binOf(edges: readonly number[], x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The 9 decile edges of `values` (sorted copy; the value at each tenth). */
export function decileEdges(values: readonly number[]): number[] {
  const sorted = Float64Array.from(values).sort();
  return Array.from({ length: DRIFT_BINS - 1 }, (_, j) => sorted[Math.floor(((j + 1) * sorted.length) / DRIFT_BINS)]);
}

/**
 * The share of `values` in each bin of `edges`. Not assumed to be 0.1 each: ties (the norms of normalised
 * embeddings, quantised components) put unequal mass in decile bins, and a window from the very same
 * distribution would otherwise look drifted.
 */
function shares(edges: readonly number[], values: readonly number[]): number[] {
  const out = new Array<number>(DRIFT_BINS).fill(0);
  for (const x of values) out[binOf(edges, x)]++;
  return out.map((c) => c / Math.max(1, values.length));
}

export interface DistributionRef {
  /** 9 ascending cut points. */
  edges: number[];
  /** Share of the reference sample in each of the 10 bins. */
  shares: number[];
}

export interface DriftReference {
  dimension: number;
  /** Collection generation it was built for: a re-created collection never uses the old one's reference. */
  generation: number;
  /** Seed of the projection directions (`driftSeed`). */
  seed: number;
  /** Rows in the sample. */
  rows: number;
  createdAt: string;
  /** Per projection: edges and shares, mean and standard deviation. */
  projections: Array<DistributionRef & { mean: number; std: number }>;
  norm: DistributionRef;
  /** k × dimension. */
  centroids: Float32Array[];
  /** Distance of each row to its nearest centroid. */
  centroidDistance: DistributionRef;
}

/** k seeded k-means centroids of `rows` (k-means++-free: k distinct seeded rows, then Lloyd iterations). */
export function kmeans(rows: readonly Float32Array[], k: number, seed: number, iterations: number): Float32Array[] {
  const rnd = mulberry32(seed ^ 0x9e3779b9);
  const dim = rows[0].length;
  const picked = new Set<number>();
  while (picked.size < Math.min(k, rows.length)) picked.add(Math.floor(rnd() * rows.length));
  let centroids = [...picked].map((i) => Float32Array.from(rows[i]));
  for (let it = 0; it < iterations; it++) {
    const sums = centroids.map(() => new Float64Array(dim));
    const counts = new Array<number>(centroids.length).fill(0);
    for (const r of rows) {
      const c = nearest(centroids, r).index;
      counts[c]++;
      const s = sums[c];
      for (let i = 0; i < dim; i++) s[i] += r[i];
    }
    // An emptied centroid keeps its place: it still anchors distances, and re-seeding would cost a pass.
    centroids = centroids.map((old, c) => (counts[c] ? Float32Array.from(sums[c], (x) => x / counts[c]) : old));
  }
  return centroids;
}

function nearest(centroids: readonly Float32Array[], v: Float32Array): { index: number; distance: number } {
  let index = 0;
  let distance = Infinity;
  for (let c = 0; c < centroids.length; c++) {
    const d = dist(centroids[c], v);
    if (d < distance) {
      distance = d;
      index = c;
    }
  }
  return { index, distance };
}

/** The reference of a sample of rows (all of one dimension; at least a handful). */
export function buildReference(
  sample: readonly Float32Array[],
  opts: { seed: number; generation: number; createdAt: string },
): DriftReference {
  if (sample.length === 0) throw new RangeError('a drift reference needs at least one row');
  const dimension = sample[0].length;
  const dirs = projections(dimension, opts.seed);
  const proj = dirs.map((d) => {
    const values = sample.map((v) => dot(d, v));
    const edges = decileEdges(values);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.reduce((a, b) => a + (b - mean) * (b - mean), 0) / values.length;
    return { edges, shares: shares(edges, values), mean, std: Math.sqrt(variance) };
  });
  const norms = sample.map((v) => Math.sqrt(dot(v, v)));
  const normEdges = decileEdges(norms);
  const centroids = kmeans(sample, DRIFT_CENTROIDS, opts.seed, DRIFT_KMEANS_ITERATIONS);
  const distances = sample.map((v) => nearest(centroids, v).distance);
  const distanceEdges = decileEdges(distances);
  return {
    dimension,
    generation: opts.generation,
    seed: opts.seed,
    rows: sample.length,
    createdAt: opts.createdAt,
    projections: proj,
    norm: { edges: normEdges, shares: shares(normEdges, norms) },
    centroids,
    centroidDistance: { edges: distanceEdges, shares: shares(distanceEdges, distances) },
  };
}

/** Counters of the vectors seen in one window: add two windows by adding their counters. */
export interface DriftWindow {
  count: number;
  /** Per projection: 10 bin counts. */
  projBins: number[][];
  projSum: number[];
  projSumSq: number[];
  normBins: number[];
  normSum: number;
  centroidBins: number[];
  centroidSum: number;
}

export function emptyWindow(): DriftWindow {
  const bins = () => new Array<number>(DRIFT_BINS).fill(0);
  return {
    count: 0,
    projBins: Array.from({ length: DRIFT_PROJECTIONS }, bins),
    projSum: new Array<number>(DRIFT_PROJECTIONS).fill(0),
    projSumSq: new Array<number>(DRIFT_PROJECTIONS).fill(0),
    normBins: bins(),
    normSum: 0,
    centroidBins: bins(),
    centroidSum: 0,
  };
}

/** A reference and the directions it was built with (regenerated once per reference, not per vector). */
export interface ReadyReference {
  ref: DriftReference;
  dirs: Float32Array[];
}

export function ready(ref: DriftReference): ReadyReference {
  return { ref, dirs: projections(ref.dimension, ref.seed, ref.projections.length) };
}

/**
 * Counts `v` into `w`: 16 dot products, 8 distances, 18 binary searches over 9 edges. False (nothing
 * counted) for a vector of another dimension or with non-finite components.
 */
export function observeVector({ ref, dirs }: ReadyReference, w: DriftWindow, v: Float32Array): boolean {
  if (v.length !== ref.dimension) return false;
  const norm = Math.sqrt(dot(v, v));
  if (!Number.isFinite(norm)) return false;
  for (let p = 0; p < dirs.length; p++) {
    const x = dot(dirs[p], v);
    w.projBins[p][binOf(ref.projections[p].edges, x)]++;
    w.projSum[p] += x;
    w.projSumSq[p] += x * x;
  }
  w.normBins[binOf(ref.norm.edges, norm)]++;
  w.normSum += norm;
  const { distance } = nearest(ref.centroids, v);
  w.centroidBins[binOf(ref.centroidDistance.edges, distance)]++;
  w.centroidSum += distance;
  w.count++;
  return true;
}

/** a + b, counter by counter. */
export function mergeWindows(a: DriftWindow, b: DriftWindow): DriftWindow {
  const add = (x: number[], y: number[]) => x.map((v, i) => v + y[i]);
  return {
    count: a.count + b.count,
    projBins: a.projBins.map((bins, p) => add(bins, b.projBins[p])),
    projSum: add(a.projSum, b.projSum),
    projSumSq: add(a.projSumSq, b.projSumSq),
    normBins: add(a.normBins, b.normBins),
    normSum: a.normSum + b.normSum,
    centroidBins: add(a.centroidBins, b.centroidBins),
    centroidSum: a.centroidSum + b.centroidSum,
  };
}

/**
 * The window as flat counters with short attribute names (`cnt`, `p3b7` bin 7 of projection 3, `p3s` /
 * `p3q` its sum / sum of squares, `n4`, `ns`, `c2`, `cs`), zeros left out: what one DynamoDB `ADD` adds.
 */
export function windowCounters(w: DriftWindow): Record<string, number> {
  const out: Record<string, number> = {};
  const put = (name: string, v: number) => {
    if (v !== 0) out[name] = v;
  };
  put('cnt', w.count);
  w.projBins.forEach((bins, p) => {
    bins.forEach((c, b) => put(`p${p}b${b}`, c));
    put(`p${p}s`, w.projSum[p]);
    put(`p${p}q`, w.projSumSq[p]);
  });
  w.normBins.forEach((c, b) => put(`n${b}`, c));
  put('ns', w.normSum);
  w.centroidBins.forEach((c, b) => put(`c${b}`, c));
  put('cs', w.centroidSum);
  return out;
}

/** The inverse of `windowCounters` (absent counters are 0). */
export function windowFromCounters(item: Readonly<Record<string, unknown>>): DriftWindow {
  const n = (name: string) => {
    const v = item[name];
    return typeof v === 'number' && Number.isFinite(v) ? v : 0;
  };
  const w = emptyWindow();
  w.count = n('cnt');
  for (let p = 0; p < DRIFT_PROJECTIONS; p++) {
    for (let b = 0; b < DRIFT_BINS; b++) w.projBins[p][b] = n(`p${p}b${b}`);
    w.projSum[p] = n(`p${p}s`);
    w.projSumSq[p] = n(`p${p}q`);
  }
  for (let b = 0; b < DRIFT_BINS; b++) {
    w.normBins[b] = n(`n${b}`);
    w.centroidBins[b] = n(`c${b}`);
  }
  w.normSum = n('ns');
  w.centroidSum = n('cs');
  return w;
}

/**
 * PSI of bin counts against reference shares: Σ (p − q)·ln(p/q), both floored at PSI_EPSILON. 0 for an
 * empty window.
 */
export function psi(counts: readonly number[], refShares: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  let s = 0;
  for (let b = 0; b < counts.length; b++) {
    const p = Math.max(counts[b] / total, PSI_EPSILON);
    const q = Math.max(refShares[b], PSI_EPSILON);
    s += (p - q) * Math.log(p / q);
  }
  return s;
}

/** `ok` below PSI_WARN, `alert` above PSI_ALERT, `warn` between. */
export function driftStatus(value: number): Exclude<DriftStatus, 'insufficient'> {
  if (value > PSI_ALERT) return 'alert';
  if (value >= PSI_WARN) return 'warn';
  return 'ok';
}

export interface WindowStats {
  count: number;
  meanNorm: number;
  /** Mean PSI over the projections. */
  psi: number;
  /** Largest PSI of one projection (a shift along few directions shows here first). */
  psiMax: number;
  normPsi: number;
  centroidPsi: number;
  /** |window mean − reference mean| / reference std, averaged over the projections. */
  meanShift: number;
  /** max(psi, normPsi, centroidPsi): what the status and the EmbeddingDriftPSI metric follow. */
  score: number;
  status: DriftStatus;
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/** How far window `w` is from `ref`. */
export function windowStats(ref: DriftReference, w: DriftWindow): WindowStats {
  const projPsi = ref.projections.map((p, i) => psi(w.projBins[i], p.shares));
  const mean = projPsi.reduce((a, b) => a + b, 0) / Math.max(1, projPsi.length);
  const shifts = ref.projections.map((p, i) => {
    if (w.count === 0) return 0;
    const d = Math.abs(w.projSum[i] / w.count - p.mean);
    return p.std > 0 ? d / p.std : d === 0 ? 0 : d;
  });
  const normPsi = psi(w.normBins, ref.norm.shares);
  const centroidPsi = psi(w.centroidBins, ref.centroidDistance.shares);
  const score = Math.max(mean, normPsi, centroidPsi);
  return {
    count: w.count,
    meanNorm: round(w.count ? w.normSum / w.count : 0),
    psi: round(mean),
    psiMax: round(Math.max(0, ...projPsi)),
    normPsi: round(normPsi),
    centroidPsi: round(centroidPsi),
    meanShift: round(shifts.reduce((a, b) => a + b, 0) / Math.max(1, shifts.length)),
    score: round(score),
    status: w.count < DRIFT_MIN_COUNT ? 'insufficient' : driftStatus(score),
  };
}

/** The hour a time falls in, as the window key spells it: `2026-11-30T09`. */
export function windowHour(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13);
}

/** Start of the hour `windowHour` names, in ms. */
export function hourStartMs(hour: string): number {
  return Date.parse(`${hour}:00:00.000Z`);
}
