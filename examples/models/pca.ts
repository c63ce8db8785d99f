/**
 * PCA in TypeScript, small enough to read: the mean, the covariance matrix, then the top-k principal
 * components by block power (subspace) iteration on it, re-orthonormalised with modified Gram–Schmidt
 * after every step and finished with a Rayleigh–Ritz rotation (a Jacobi eigendecomposition of the
 * k×k projected matrix), so the components come out sorted by the variance they explain.
 *
 * Cost at 784-d: the covariance is one pass of n·d²/2 multiply-adds over at most `maxRows` rows (the
 * bulk of the time, shared by every k through `covariance`); each iteration is d²·(k+p). The export
 * is a `linearProjectionModel` (`(x − mean)·W`, optionally L2-normalised), which any ONNX runtime,
 * and a Shoal collection's embedding function, runs.
 */
import { linearProjectionModel } from '../../shared/models/onnx.js';
import { mulberry32, sampleRows } from '../../shared/random.js';

/** Mean and covariance of a set of rows (float64: the sums of 10⁴ squared pixels lose float32 digits). */
export interface Covariance {
  dim: number;
  rows: number;
  mean: Float64Array;
  /** Row-major dim×dim, divided by rows − 1. */
  cov: Float64Array;
  /** Trace of `cov`: the total variance the components' variances are fractions of. */
  totalVariance: number;
}

export interface Pca {
  dim: number;
  components: number;
  mean: Float32Array;
  /** Row-major components×dim: component c is `basis[c·dim … (c+1)·dim)`, unit length, orthogonal. */
  basis: Float32Array;
  /** Variance along each component, decreasing. */
  variance: number[];
  /** Fraction of the total variance each component explains. */
  explained: number[];
  /** How many block iterations ran. */
  iterations: number;
}

export interface PcaOptions {
  /** Seed of the starting block (default 1). */
  seed?: number;
  /**
   * Block iterations (default 6). Each shrinks the error of component i by roughly λ(k+p+1)/λ(i)
   * and costs d²·(k+p) multiply-adds (~0.1 s at k = 128 in JS). With the oversampling below, the
   * variance captured is within a fraction of a percent of the exact top-k after a handful: more
   * sharpen the individual trailing components (which are nearly tied anyway), not the subspace.
   */
  iterations?: number;
  /**
   * Extra columns carried in the block and dropped at the end (default 16): they absorb the slowly
   * converging directions just below the k-th, so the k kept ones converge in fewer iterations;
   * each costs as much per iteration as a kept one.
   */
  oversample?: number;
}

export interface CovarianceOptions {
  /**
   * Rows the covariance is estimated from (default 4,000; a seeded sample when there are more).
   * The pass costs n·d²/2 multiply-adds — about 1.2·10⁹ at 4,000 × 784, a second or two in JS —
   * while the leading components of 784-d images are settled well before that: more rows buy
   * little accuracy at a linear cost. 0 = every row.
   */
  maxRows?: number;
  /** Seed of the sample (default 1). */
  seed?: number;
}

/** Mean and covariance of `rows` (each `dim` long). */
export function covariance(rows: readonly Float32Array[], options: CovarianceOptions = {}): Covariance {
  const dim = rows[0]?.length ?? 0;
  const maxRows = options.maxRows ?? 4000;
  const used =
    maxRows > 0 && rows.length > maxRows
      ? sampleRows(rows.length, maxRows, options.seed ?? 1).map((i) => rows[i]!)
      : rows;
  const n = used.length;
  if (n < 2) throw new RangeError(`covariance needs at least 2 rows, got ${n}`);
  const mean = new Float64Array(dim);
  for (const row of used) for (let i = 0; i < dim; i++) mean[i] += row[i]!;
  for (let i = 0; i < dim; i++) mean[i] /= n;
  // The centered rows transposed (pixel-major, padded to a multiple of 4 pixels with zeros), so each
  // covariance cell is a dot product of two contiguous arrays, computed 2 × 4 cells at a time: eight
  // accumulators in registers per six loads, about twice the rate of a row-at-a-time update in JS.
  const dp = Math.ceil(dim / 4) * 4;
  const xt = new Float64Array(dp * n);
  used.forEach((row, r) => {
    for (let i = 0; i < dim; i++) xt[i * n + r] = row[i]! - mean[i]!;
  });
  const cov = new Float64Array(dim * dim);
  const put = (i: number, j: number, v: number): void => {
    if (i < dim && j < dim && j >= i) cov[i * dim + j] = v / (n - 1);
  };
  for (let i = 0; i < dp; i += 2) {
    const i0 = i * n;
    const i1 = i0 + n;
    for (let j = i - (i % 4); j < dp; j += 4) {
      const j0 = j * n;
      const j1 = j0 + n;
      const j2 = j1 + n;
      const j3 = j2 + n;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let r = 0; r < n; r++) {
        const a = xt[i0 + r]!;
        const b = xt[i1 + r]!;
        const x0 = xt[j0 + r]!;
        const x1 = xt[j1 + r]!;
        const x2 = xt[j2 + r]!;
        const x3 = xt[j3 + r]!;
        s00 += a * x0;
        s01 += a * x1;
        s02 += a * x2;
        s03 += a * x3;
        s10 += b * x0;
        s11 += b * x1;
        s12 += b * x2;
        s13 += b * x3;
      }
      put(i, j, s00);
      put(i, j + 1, s01);
      put(i, j + 2, s02);
      put(i, j + 3, s03);
      put(i + 1, j, s10);
      put(i + 1, j + 1, s11);
      put(i + 1, j + 2, s12);
      put(i + 1, j + 3, s13);
    }
  }
  let totalVariance = 0;
  for (let i = 0; i < dim; i++) {
    for (let j = i + 1; j < dim; j++) cov[j * dim + i] = cov[i * dim + j]!;
    totalVariance += cov[i * dim + i]!;
  }
  return { dim, rows: n, mean, cov, totalVariance };
}

/**
 * Z = C·Q for symmetric d×d C and a block Q of b columns stored column by column (column j is
 * `q[j·d … (j+1)·d)`): four columns per pass over C, so each of its values loaded feeds four sums.
 */
function multiply(cov: Float64Array, q: Float64Array, d: number, b: number): Float64Array {
  const z = new Float64Array(d * b);
  let j = 0;
  for (; j + 3 < b; j += 4) {
    const q0 = j * d;
    const q1 = q0 + d;
    const q2 = q1 + d;
    const q3 = q2 + d;
    for (let i = 0; i < d; i++) {
      const ci = i * d;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let l = 0; l < d; l++) {
        const c = cov[ci + l]!;
        s0 += c * q[q0 + l]!;
        s1 += c * q[q1 + l]!;
        s2 += c * q[q2 + l]!;
        s3 += c * q[q3 + l]!;
      }
      z[q0 + i] = s0;
      z[q1 + i] = s1;
      z[q2 + i] = s2;
      z[q3 + i] = s3;
    }
  }
  for (; j < b; j++) {
    const qj = j * d;
    for (let i = 0; i < d; i++) {
      const ci = i * d;
      let s = 0;
      for (let l = 0; l < d; l++) s += cov[ci + l]! * q[qj + l]!;
      z[qj + i] = s;
    }
  }
  return z;
}

/**
 * Orthonormalises the b columns of `q` (column j is `q[j·d … (j+1)·d)`) in place with modified
 * Gram–Schmidt: each column is made orthogonal to the finished ones one at a time, which keeps
 * rounding error from accumulating as it does in the classical form. A column that collapses into
 * the span of the others is replaced by a seeded random one.
 */
export function orthonormalize(q: Float64Array, d: number, b: number, rnd: () => number = mulberry32(7)): void {
  for (let j = 0; j < b; j++) {
    const qj = j * d;
    for (let attempt = 0; ; attempt++) {
      for (let p = 0; p < j; p++) {
        const qp = p * d;
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[qj + i]! * q[qp + i]!;
        for (let i = 0; i < d; i++) q[qj + i] -= dot * q[qp + i]!;
      }
      let norm = 0;
      for (let i = 0; i < d; i++) norm += q[qj + i]! ** 2;
      norm = Math.sqrt(norm);
      if (norm > 1e-10) {
        for (let i = 0; i < d; i++) q[qj + i] /= norm;
        break;
      }
      if (attempt > 3) throw new Error(`orthonormalize: column ${j} stays in the span of the others`);
      for (let i = 0; i < d; i++) q[qj + i] = rnd() - 0.5;
    }
  }
}

/**
 * Eigenvalues and eigenvectors of a small symmetric matrix (cyclic Jacobi rotations). Returns them
 * sorted by decreasing eigenvalue; `vectors` is row-major n×n with eigenvector c in column c.
 */
export function symmetricEigen(matrix: Float64Array, n: number): { values: number[]; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cos = 1 / Math.sqrt(t * t + 1);
        const sin = t * cos;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = cos * akp - sin * akq;
          a[k * n + q] = sin * akp + cos * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = cos * apk - sin * aqk;
          a[q * n + k] = sin * apk + cos * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = cos * vkp - sin * vkq;
          v[k * n + q] = sin * vkp + cos * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y]! - a[x * n + x]!);
  const vectors = new Float64Array(n * n);
  order.forEach((from, to) => {
    for (let k = 0; k < n; k++) vectors[k * n + to] = v[k * n + from]!;
  });
  return { values: order.map((i) => a[i * n + i]!), vectors };
}

/** The top `k` principal components of a covariance. */
export function pcaFromCovariance(stats: Covariance, k: number, options: PcaOptions = {}): Pca {
  const d = stats.dim;
  if (!Number.isInteger(k) || k < 1 || k > d) throw new RangeError(`components must be in [1, ${d}], got ${k}`);
  const b = Math.min(d, k + (options.oversample ?? 16));
  const iterations = options.iterations ?? 6;
  const rnd = mulberry32(options.seed ?? 1);
  let q: Float64Array = Float64Array.from({ length: d * b }, () => rnd() - 0.5);
  orthonormalize(q, d, b, rnd);
  for (let it = 0; it < iterations; it++) {
    q = multiply(stats.cov, q, d, b);
    orthonormalize(q, d, b, rnd);
  }
  // Rayleigh–Ritz: the best rotation of the block is the eigenbasis of Qᵀ·C·Q.
  const cq = multiply(stats.cov, q, d, b);
  const small = new Float64Array(b * b);
  for (let i = 0; i < b; i++) {
    for (let j = i; j < b; j++) {
      let s = 0;
      for (let r = 0; r < d; r++) s += q[i * d + r]! * cq[j * d + r]!;
      small[i * b + j] = s;
      small[j * b + i] = s;
    }
  }
  const { values, vectors } = symmetricEigen(small, b);
  const basis = new Float32Array(k * d);
  for (let c = 0; c < k; c++) {
    const row = new Float64Array(d);
    for (let j = 0; j < b; j++) {
      const w = vectors[j * b + c]!;
      for (let r = 0; r < d; r++) row[r] += w * q[j * d + r]!;
    }
    basis.set(row, c * d);
  }
  const variance = values.slice(0, k).map((v) => Math.max(0, v));
  return {
    dim: d,
    components: k,
    mean: Float32Array.from(stats.mean),
    basis,
    variance,
    explained: variance.map((v) => v / stats.totalVariance),
    iterations,
  };
}

/** PCA of `rows` in one call (use `covariance` + `pcaFromCovariance` to fit several k on one pass). */
export function fitPca(rows: readonly Float32Array[], k: number, options: PcaOptions & CovarianceOptions = {}): Pca {
  return pcaFromCovariance(covariance(rows, options), k, options);
}

/** The projection of one row, `(x − mean)·Bᵀ`, L2-normalised with `normalize` (what the ONNX export computes). */
export function project(pca: Pca, row: ArrayLike<number>, normalize = false): Float32Array {
  const { dim, components, mean, basis } = pca;
  const out = new Float32Array(components);
  let norm = 0;
  for (let c = 0; c < components; c++) {
    let s = 0;
    const off = c * dim;
    for (let i = 0; i < dim; i++) s += (row[i]! - mean[i]!) * basis[off + i]!;
    out[c] = s;
    norm += s * s;
  }
  if (normalize) {
    // ONNX LpNormalization divides by the norm as is; a zero vector stays zero either way.
    const n = Math.sqrt(norm);
    if (n > 0) for (let c = 0; c < components; c++) out[c] /= n;
  }
  return out;
}

/** Mean squared error per pixel of reconstructing `rows` from their projections. */
export function reconstructionError(pca: Pca, rows: readonly Float32Array[]): number {
  const { dim, components, mean, basis } = pca;
  let total = 0;
  for (const row of rows) {
    const z = project(pca, row);
    for (let i = 0; i < dim; i++) {
      let x = mean[i]!;
      for (let c = 0; c < components; c++) x += z[c]! * basis[c * dim + i]!;
      total += (row[i]! - x) ** 2;
    }
  }
  return total / (rows.length * dim);
}

/**
 * The PCA as an ONNX model: input `input` [batch, dim] float32, output `embedding` [batch, k].
 * `normalize` appends an L2 normalisation (what a cosine collection wants).
 */
export function pcaToOnnx(pca: Pca, options: { normalize?: boolean; name?: string } = {}): Uint8Array {
  const { dim, components, basis } = pca;
  // linearProjectionModel takes W row-major dim×k; the basis is k×dim.
  const weights = new Float32Array(dim * components);
  for (let c = 0; c < components; c++) for (let i = 0; i < dim; i++) weights[i * components + c] = basis[c * dim + i]!;
  return linearProjectionModel({
    inputDim: dim,
    outputDim: components,
    weights,
    mean: pca.mean,
    normalize: options.normalize ?? false,
    name: options.name ?? `pca-${components}`,
    metadata: {
      trainer: 'examples/models/pca.ts',
      components: String(components),
      explained: pca.explained.reduce((a, b) => a + b, 0).toFixed(4),
    },
  });
}
