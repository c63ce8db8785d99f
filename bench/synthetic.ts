/**
 * Seeded synthetic vectors for the scale bench: a Gaussian mixture (cluster centres uniform in
 * [-scale, scale]^dim, points = centre + N(0, σ²) per coordinate), `.npy` bytes to import them, and
 * the exact top-k to measure recall against. The same seed gives the same vectors on every machine.
 */
import { exactTopKBatch } from '../shared/engine/distance.js';
import type { VectorView } from '../shared/engine/types.js';
import { mulberry32, normals } from '../shared/random.js';

export interface MixtureSpec {
  dim: number;
  clusters: number;
  /** Centres are drawn uniform in [-centreScale, centreScale]^dim. */
  centreScale: number;
  /** Standard deviation of every coordinate around its centre. */
  sigma: number;
  seed: number;
}

export { normals };

export class GaussianMixture {
  readonly centres: Float32Array;

  constructor(readonly spec: MixtureSpec) {
    const rand = mulberry32(spec.seed);
    this.centres = new Float32Array(spec.clusters * spec.dim);
    for (let i = 0; i < this.centres.length; i++) this.centres[i] = (rand() * 2 - 1) * spec.centreScale;
  }

  /**
   * Writes `rows` points into `out` (row-major) and returns each point's cluster. `stream` picks an
   * independent sequence, so base rows and queries come from the same mixture without sharing points.
   */
  sample(out: Float32Array, rows: number, stream: number): Uint16Array {
    const { dim, clusters, sigma, seed } = this.spec;
    if (out.length < rows * dim) throw new RangeError(`sample: ${out.length} floats cannot hold ${rows} × ${dim}`);
    // Mixing the stream into the seed with an odd multiplier keeps streams apart for nearby seeds.
    const rand = mulberry32((seed ^ Math.imul(stream + 1, 0x9e3779b1)) >>> 0);
    const gauss = normals(rand);
    const labels = new Uint16Array(rows);
    for (let i = 0; i < rows; i++) {
      const c = Math.floor(rand() * clusters);
      labels[i] = c;
      const at = i * dim;
      const from = c * dim;
      for (let j = 0; j < dim; j++) out[at + j] = this.centres[from + j] + sigma * gauss();
    }
    return labels;
  }
}

/**
 * An empty `.npy` (format 1.0, `<f4`, C order) of rows × dim, with a Float32Array over its data
 * section: filling the view fills the file, so a 512 MB dataset is not held twice while uploading.
 */
export function npyFile(rows: number, dim: number): { bytes: Uint8Array; data: Float32Array } {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  // numpy pads the header (with its newline) so the data starts 64-byte aligned; that also aligns the view.
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const dataOffset = 10 + header.length;
  const bytes = new Uint8Array(dataOffset + rows * dim * 4);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  bytes.set(new TextEncoder().encode(header), 10);
  return { bytes, data: new Float32Array(bytes.buffer, dataOffset, rows * dim) };
}

/** Exact top-k rows (best first) of each query under squared L2, as one Int32Array of nq × k. */
export function exactTopRows(
  base: Float32Array,
  count: number,
  dim: number,
  queries: Float32Array,
  nq: number,
  k: number,
): Int32Array {
  const view: VectorView = { data: base, offset: 0, stride: dim, dim, count, normalized: false };
  const out = new Int32Array(nq * k).fill(-1);
  exactTopKBatch(view, 'l2', queries, nq, k).forEach((hits, q) => hits.forEach((h, i) => (out[q * k + i] = h.row)));
  return out;
}
