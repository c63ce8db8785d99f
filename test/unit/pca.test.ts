/**
 * The example's PCA (examples/models/pca.ts) on its Fashion-MNIST-like data: the components are
 * orthonormal and sorted by explained variance, agree with more iterations (the subspace has
 * converged), 128 components reconstruct better than 32, and the exported ONNX model run through
 * ModelRuntime gives the TypeScript projection.
 */
import { describe, expect, it } from 'vitest';
import { CLASS_NAMES, IMAGE_PIXELS, fashionData } from '../../examples/models/data.js';
import {
  covariance,
  pcaFromCovariance,
  pcaToOnnx,
  project,
  reconstructionError,
  symmetricEigen,
  type Pca,
} from '../../examples/models/pca.js';
import { readOnnxSignature } from '../../shared/models/onnx.js';
import { ModelRuntime, embeddingIO } from '../../shared/models/runtime.js';

const train = fashionData(3000, { seed: 11 });
const held = fashionData(200, { seed: 12 });
const stats = covariance(train.rows);
const pca32 = pcaFromCovariance(stats, 32);
const pca128 = pcaFromCovariance(stats, 128);

function dot(pca: Pca, a: number, b: number): number {
  let s = 0;
  for (let i = 0; i < pca.dim; i++) s += pca.basis[a * pca.dim + i]! * pca.basis[b * pca.dim + i]!;
  return s;
}

describe('fashionData', () => {
  it('is seeded, 784 values in [0, 1] per image, every class present', () => {
    const again = fashionData(50, { seed: 11 });
    expect(again.labels).toEqual(train.labels.slice(0, 50));
    expect(Array.from(again.rows[7]!)).toEqual(Array.from(train.rows[7]!));
    expect(train.rows.every((r) => r.length === IMAGE_PIXELS && r.every((x) => x >= 0 && x <= 1))).toBe(true);
    expect(new Set(train.labels).size).toBe(CLASS_NAMES.length);
    expect(fashionData(50, { seed: 99 }).labels).not.toEqual(again.labels);
  });
});

describe('PCA by block power iteration', () => {
  it('gives orthonormal components', () => {
    for (const pca of [pca32, pca128]) {
      for (let a = 0; a < pca.components; a++) {
        expect(dot(pca, a, a)).toBeCloseTo(1, 5);
        for (let b = a + 1; b < pca.components; b += 7) expect(Math.abs(dot(pca, a, b))).toBeLessThan(1e-5);
      }
    }
  });

  it('sorts components by explained variance, and 32 of them are the top of the 128', () => {
    for (const pca of [pca32, pca128]) {
      for (let c = 1; c < pca.components; c++) expect(pca.variance[c]!).toBeLessThanOrEqual(pca.variance[c - 1]!);
      const total = pca.explained.reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThan(0);
      expect(total).toBeLessThan(1);
    }
    // The same leading variances from either block (to the trailing ones' slower convergence).
    for (let c = 0; c < 32; c++) {
      expect(Math.abs(pca32.variance[c]! - pca128.variance[c]!) / pca128.variance[c]!).toBeLessThan(0.01);
    }
    // More iterations move the captured variance by well under a percent: the subspace has converged.
    const longer = pcaFromCovariance(stats, 32, { iterations: 30 });
    const sum = (p: Pca) => p.explained.reduce((a, b) => a + b, 0);
    expect(Math.abs(sum(longer) - sum(pca32)) / sum(longer)).toBeLessThan(0.005);
  });

  it('reconstructs held-out images better with 128 components than with 32', () => {
    const e32 = reconstructionError(pca32, held.rows);
    const e128 = reconstructionError(pca128, held.rows);
    expect(e128).toBeLessThan(e32);
    // And either beats the mean image alone.
    const meanOnly = reconstructionError({ ...pca32, components: 0 }, held.rows);
    expect(e32).toBeLessThan(meanOnly);
  });

  it('symmetricEigen recovers a known decomposition', () => {
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 0, 1, 2, 0, 0, 0, 5]), 3);
    expect(values.map((v) => Number(v.toFixed(9)))).toEqual([5, 3, 1]);
    expect(Math.abs(vectors[2 * 3 + 0]!)).toBeCloseTo(1, 9);
  });
});

describe('the ONNX export', () => {
  it('run through ModelRuntime equals the TypeScript projection (1e-4), normalised or not', async () => {
    for (const runtimeName of ['node', 'wasm'] as const) {
      const runtime = new ModelRuntime({ runtime: runtimeName, maxLoadedBytes: 1 << 26 });
      for (const [pca, normalize] of [
        [pca32, true],
        [pca128, true],
        [pca128, false],
      ] as const) {
        const bytes = pcaToOnnx(pca, { normalize });
        const signature = readOnnxSignature(bytes);
        expect(signature.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', IMAGE_PIXELS] }]);
        const io = embeddingIO(signature, pca.components, 'embedding');
        const session = await runtime.session(`pca-${pca.components}-${normalize}`, bytes.length, async () => bytes);
        const rows = held.rows.slice(0, 40);
        const out = await runtime.embed(session, io, rows);
        rows.forEach((row, i) => {
          const expected = project(pca, row, normalize);
          let worst = 0;
          for (let c = 0; c < pca.components; c++) worst = Math.max(worst, Math.abs(out[i]![c]! - expected[c]!));
          expect(worst, `${runtimeName} pca-${pca.components} normalize=${normalize} row ${i}`).toBeLessThan(1e-4);
        });
      }
    }
  });
});
