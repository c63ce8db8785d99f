/**
 * Exact-search kernels. Used by the `flat` engine, by the in-memory tail of recent writes,
 * and by every engine for exact scans over small filtered subsets.
 *
 * Written for V8: only Float32Array reads (monomorphic element kind), float64
 * accumulation (JS numbers; float32×float32 products are exact in float64, so only the
 * sums round), no allocation per row, four independent accumulators per dot product so
 * the adds do not serialise on one register.
 *
 * Determinism: every score for a (query, row) pair is computed by the same arithmetic in
 * the same order whichever entry point is used, so `exactTopKBatch` returns exactly what
 * `exactTopK` returns per query, and the top-k selector breaks ties by lower row.
 */
import { ValidationError, CorruptDataError } from '../errors.js';
import { higherIsBetter, type Metric, type RowHit } from '../types.js';
import type { VectorView } from './types.js';
import { TopK } from './topk.js';

/**
 * Queries scored together against each row in `exactTopKBatch`. Default 8: each row is
 * read from memory once per block instead of once per query, and 8 queries × dim floats
 * (4 KiB at dim 128, 25 KiB at dim 784) still fit in L1 next to the row. Larger blocks
 * cut row traffic further but start evicting the query block from L1 at high dims;
 * smaller blocks re-read rows more often. Measured on sift5k (dim 128), 16 was no faster
 * than 8. Queries within a block are scored in pairs (`dot2`/`l2sq2`), so even is best.
 */
export const QUERY_BLOCK = 8;

/** Dot product of `dim` floats starting at a[aOff] and b[bOff]. */
export function dot(a: Float32Array, aOff: number, b: Float32Array, bOff: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n4 = dim - (dim & 3);
  let i = 0;
  for (; i < n4; i += 4) {
    s0 += a[aOff + i] * b[bOff + i];
    s1 += a[aOff + i + 1] * b[bOff + i + 1];
    s2 += a[aOff + i + 2] * b[bOff + i + 2];
    s3 += a[aOff + i + 3] * b[bOff + i + 3];
  }
  for (; i < dim; i++) s0 += a[aOff + i] * b[bOff + i];
  return s0 + s1 + (s2 + s3);
}

/** Squared Euclidean distance of `dim` floats starting at a[aOff] and b[bOff]. */
export function l2sq(a: Float32Array, aOff: number, b: Float32Array, bOff: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n4 = dim - (dim & 3);
  let i = 0;
  for (; i < n4; i += 4) {
    const d0 = a[aOff + i] - b[bOff + i];
    const d1 = a[aOff + i + 1] - b[bOff + i + 1];
    const d2 = a[aOff + i + 2] - b[bOff + i + 2];
    const d3 = a[aOff + i + 3] - b[bOff + i + 3];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < dim; i++) {
    const d = a[aOff + i] - b[bOff + i];
    s0 += d * d;
  }
  return s0 + s1 + (s2 + s3);
}

/** Euclidean norm of `dim` floats starting at a[aOff]. */
export function norm(a: Float32Array, aOff: number, dim: number): number {
  return Math.sqrt(dot(a, aOff, a, aOff, dim));
}

/** 1/‖x‖, or 0 for a zero vector so its cosine with anything is 0 rather than NaN. */
function invNormOf(a: Float32Array, aOff: number, dim: number): number {
  const n = norm(a, aOff, dim);
  return n > 0 ? 1 / n : 0;
}

/**
 * Two dot products sharing one row: the row element is loaded once for both queries.
 * Each query keeps its own four accumulators combined in the same order as `dot`, so the
 * results are bit-identical to two `dot` calls.
 */
function dot2(
  q: Float32Array,
  qa: number,
  qb: number,
  x: Float32Array,
  xo: number,
  dim: number,
  out: Float64Array,
  o: number,
): void {
  let a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0;
  let b0 = 0,
    b1 = 0,
    b2 = 0,
    b3 = 0;
  const n4 = dim - (dim & 3);
  let i = 0;
  for (; i < n4; i += 4) {
    const x0 = x[xo + i];
    const x1 = x[xo + i + 1];
    const x2 = x[xo + i + 2];
    const x3 = x[xo + i + 3];
    a0 += q[qa + i] * x0;
    a1 += q[qa + i + 1] * x1;
    a2 += q[qa + i + 2] * x2;
    a3 += q[qa + i + 3] * x3;
    b0 += q[qb + i] * x0;
    b1 += q[qb + i + 1] * x1;
    b2 += q[qb + i + 2] * x2;
    b3 += q[qb + i + 3] * x3;
  }
  for (; i < dim; i++) {
    const xi = x[xo + i];
    a0 += q[qa + i] * xi;
    b0 += q[qb + i] * xi;
  }
  out[o] = a0 + a1 + (a2 + a3);
  out[o + 1] = b0 + b1 + (b2 + b3);
}

/** Pair version of `l2sq`; bit-identical to two `l2sq` calls (see `dot2`). */
function l2sq2(
  q: Float32Array,
  qa: number,
  qb: number,
  x: Float32Array,
  xo: number,
  dim: number,
  out: Float64Array,
  o: number,
): void {
  let a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0;
  let b0 = 0,
    b1 = 0,
    b2 = 0,
    b3 = 0;
  const n4 = dim - (dim & 3);
  let i = 0;
  for (; i < n4; i += 4) {
    const x0 = x[xo + i];
    const x1 = x[xo + i + 1];
    const x2 = x[xo + i + 2];
    const x3 = x[xo + i + 3];
    const c0 = q[qa + i] - x0;
    const c1 = q[qa + i + 1] - x1;
    const c2 = q[qa + i + 2] - x2;
    const c3 = q[qa + i + 3] - x3;
    a0 += c0 * c0;
    a1 += c1 * c1;
    a2 += c2 * c2;
    a3 += c3 * c3;
    const e0 = q[qb + i] - x0;
    const e1 = q[qb + i + 1] - x1;
    const e2 = q[qb + i + 2] - x2;
    const e3 = q[qb + i + 3] - x3;
    b0 += e0 * e0;
    b1 += e1 * e1;
    b2 += e2 * e2;
    b3 += e3 * e3;
  }
  for (; i < dim; i++) {
    const xi = x[xo + i];
    const c = q[qa + i] - xi;
    const e = q[qb + i] - xi;
    a0 += c * c;
    b0 += e * e;
  }
  out[o] = a0 + a1 + (a2 + a3);
  out[o + 1] = b0 + b1 + (b2 + b3);
}

export interface ExactSearchOptions {
  /** Scan only these rows (the filtered-subset path). Duplicates are ignored. */
  rows?: ArrayLike<number>;
  /** Only rows for which this returns true may be returned; called at most once per row per call. */
  allow?: (row: number) => boolean;
  /** Cosine only: precomputed 1/‖row‖ per row (0 for zero rows), indexed by row number. */
  invNorms?: Float32Array;
}

function checkView(view: VectorView): void {
  const { data, offset, stride, dim, count } = view;
  if (!Number.isInteger(dim) || dim <= 0)
    throw new ValidationError(`vector view dim must be a positive integer, got ${dim}`, { field: 'dim' });
  if (!Number.isInteger(count) || count < 0)
    throw new ValidationError(`vector view count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(stride) || stride < dim) {
    throw new ValidationError(
      `vector view needs offset ≥ 0 and stride ≥ dim, got offset ${offset}, stride ${stride}, dim ${dim}`,
    );
  }
  if (count > 0 && offset + (count - 1) * stride + dim > data.length) {
    throw new CorruptDataError(
      `vector view overruns its data: ${count} rows × stride ${stride} + offset ${offset} > ${data.length} floats`,
    );
  }
}

function checkK(k: number): number {
  if (typeof k !== 'number' || Number.isNaN(k) || k < 0)
    throw new ValidationError(`k must be a non-negative number, got ${k}`, { field: 'k' });
  return Math.min(Math.floor(k), 0x7fffffff);
}

/**
 * Resolves `rows`/`allow` into one list of distinct, allowed, in-range rows, or null for
 * "every row". Done once per call so `allow` (often a closure over a metadata bitmap) is
 * paid once per row, not once per query of a batch.
 */
function candidateRows(count: number, opts: ExactSearchOptions | undefined): Int32Array | null {
  const rows = opts?.rows;
  const allow = opts?.allow;
  if (rows === undefined) {
    if (allow === undefined) return null;
    const out = new Int32Array(count);
    let n = 0;
    for (let r = 0; r < count; r++) if (allow(r)) out[n++] = r;
    return out.subarray(0, n);
  }
  const seen = new Uint8Array(count);
  const out = new Int32Array(rows.length);
  let n = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!Number.isInteger(r) || r < 0 || r >= count) {
      throw new ValidationError(`rows[${i}] = ${r} is not a row of this index (0..${count - 1})`, { field: 'rows' });
    }
    if (seen[r] !== 0) continue;
    seen[r] = 1;
    if (allow !== undefined && !allow(r)) continue;
    out[n++] = r;
  }
  return out.subarray(0, n);
}

/**
 * Scores queries [q0, q0+nb) against every candidate row and offers them to heaps[0..nb).
 * The row loop is outermost so each row is read once for the whole block.
 * `rowInv` (cosine only) holds 1/‖row‖ per candidate position, or null to compute it here.
 */
function scanBlock(
  view: VectorView,
  metric: Metric,
  queries: Float32Array,
  q0: number,
  nb: number,
  qInv: Float64Array,
  heaps: TopK[],
  cand: Int32Array | null,
  invNorms: Float32Array | undefined,
  rowInv: Float64Array | null,
  scratch: Float64Array,
): void {
  const { data, offset, stride, dim } = view;
  const n = cand === null ? view.count : cand.length;
  const pairs = nb - (nb & 1);
  const isL2 = metric === 'l2';
  const isCos = metric === 'cosine';
  const unit = view.normalized;
  for (let i = 0; i < n; i++) {
    const r = cand === null ? i : cand[i];
    const xo = offset + r * stride;
    let b = 0;
    if (isL2) {
      for (; b < pairs; b += 2) l2sq2(queries, (q0 + b) * dim, (q0 + b + 1) * dim, data, xo, dim, scratch, b);
      if (b < nb) scratch[b] = l2sq(queries, (q0 + b) * dim, data, xo, dim);
      for (b = 0; b < nb; b++) heaps[b].offer(r, scratch[b]);
      continue;
    }
    for (; b < pairs; b += 2) dot2(queries, (q0 + b) * dim, (q0 + b + 1) * dim, data, xo, dim, scratch, b);
    if (b < nb) scratch[b] = dot(queries, (q0 + b) * dim, data, xo, dim);
    if (isCos) {
      const inv =
        invNorms !== undefined ? invNorms[r] : unit ? 1 : rowInv !== null ? rowInv[i] : invNormOf(data, xo, dim);
      for (b = 0; b < nb; b++) heaps[b].offer(r, scratch[b] * qInv[b] * inv);
    } else {
      for (b = 0; b < nb; b++) heaps[b].offer(r, scratch[b]);
    }
  }
}

function runSearch(
  view: VectorView,
  metric: Metric,
  queries: Float32Array,
  nq: number,
  k: number,
  opts: ExactSearchOptions | undefined,
): RowHit[][] {
  checkView(view);
  const kk = checkK(k);
  const dim = view.dim;
  if (!Number.isInteger(nq) || nq < 0)
    throw new ValidationError(`query count must be a non-negative integer, got ${nq}`);
  if (queries.length !== nq * dim) {
    throw new ValidationError(`expected ${nq} queries × ${dim} floats = ${nq * dim}, got ${queries.length}`, {
      field: 'vector',
    });
  }
  const invNorms = metric === 'cosine' ? opts?.invNorms : undefined;
  if (invNorms !== undefined && invNorms.length < view.count) {
    throw new ValidationError(`invNorms has ${invNorms.length} entries for ${view.count} rows`, { field: 'invNorms' });
  }
  const results: RowHit[][] = new Array<RowHit[]>(nq);
  if (kk === 0 || view.count === 0) {
    for (let q = 0; q < nq; q++) results[q] = [];
    return results;
  }
  const cand = candidateRows(view.count, opts);
  const hib = higherIsBetter(metric);
  const blockSize = Math.min(QUERY_BLOCK, nq);
  const heaps: TopK[] = [];
  for (let b = 0; b < blockSize; b++) heaps.push(new TopK(kk, hib));
  const qInv = new Float64Array(blockSize);
  const scratch = new Float64Array(blockSize);

  // With several blocks, row norms would be recomputed once per block; compute them once
  // instead. Same function, same doubles, so scores do not depend on the block count.
  let rowInv: Float64Array | null = null;
  if (metric === 'cosine' && invNorms === undefined && !view.normalized && nq > blockSize) {
    const n = cand === null ? view.count : cand.length;
    rowInv = new Float64Array(n);
    for (let i = 0; i < n; i++)
      rowInv[i] = invNormOf(view.data, view.offset + (cand === null ? i : cand[i]) * view.stride, dim);
  }

  for (let q0 = 0; q0 < nq; q0 += blockSize) {
    const nb = Math.min(blockSize, nq - q0);
    if (metric === 'cosine') for (let b = 0; b < nb; b++) qInv[b] = invNormOf(queries, (q0 + b) * dim, dim);
    scanBlock(view, metric, queries, q0, nb, qInv, heaps, cand, invNorms, rowInv, scratch);
    for (let b = 0; b < nb; b++) results[q0 + b] = heaps[b].drain();
  }
  return results;
}

/**
 * Exact top-k of one query against a vector view. Best first: cosine similarity and inner
 * product descending, squared L2 ascending; ties by lower row. Zero vectors have cosine 0.
 * Returns min(k, candidate count) hits.
 */
export function exactTopK(
  view: VectorView,
  metric: Metric,
  query: Float32Array,
  k: number,
  opts?: ExactSearchOptions,
): RowHit[] {
  if (query.length !== view.dim) {
    throw new ValidationError(`query has ${query.length} dimensions, index has ${view.dim}`, { field: 'vector' });
  }
  return runSearch(view, metric, query, 1, k, opts)[0];
}

/**
 * Exact top-k for `nq` queries stored row-major in `queries` (nq × dim). Same results as
 * `exactTopK` per query, but rows are streamed once per block of QUERY_BLOCK queries.
 */
export function exactTopKBatch(
  view: VectorView,
  metric: Metric,
  queries: Float32Array,
  nq: number,
  k: number,
  opts?: ExactSearchOptions,
): RowHit[][] {
  return runSearch(view, metric, queries, nq, k, opts);
}
