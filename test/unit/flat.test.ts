import { describe, expect, it } from 'vitest';
import { exactTopK, exactTopKBatch, l2sq } from '../../shared/engine/distance.js';
import { createFlatIndex, flatEngine } from '../../shared/engine/flat.js';
import { CorruptDataError, EngineError } from '../../shared/errors.js';
import { loadDataset, type Dataset } from '../../shared/io/datasets.js';
import { METRICS, type Metric } from '../../shared/types.js';
import { mulberry32, randomVectors } from '../helpers/random.js';

const DIM = 24;
const COUNT = 200;

async function buildAndLoad(vectors: Float32Array, metric: Metric, count = COUNT) {
  const { bytes, params } = await flatEngine.build({ dim: DIM, metric, count, vectors });
  const index = await flatEngine.load(bytes, { dim: DIM, metric, count, params });
  return { bytes, params, index };
}

/** recall@k of exact search against the dataset's ground truth (row ids). */
function recallAtK(ds: Dataset, hits: { row: number }[][], k: number): number {
  let found = 0;
  for (let q = 0; q < ds.queryCount; q++) {
    const truth = new Set(ds.groundTruth!.subarray(q * ds.gtK!, q * ds.gtK! + k));
    for (const h of hits[q]) if (truth.has(h.row)) found++;
  }
  return found / (ds.queryCount * k);
}

describe('flatEngine', () => {
  const rng = mulberry32(11);
  const vectors = randomVectors(rng, COUNT, DIM);
  const query = randomVectors(rng, 1, DIM);

  it('is named flat with no parameters', () => {
    expect(flatEngine.name).toBe('flat');
    expect(flatEngine.defaultParams).toEqual({});
  });

  for (const metric of METRICS) {
    it(`round-trips build → load and searches exactly (${metric})`, async () => {
      // Act
      const { bytes, params, index } = await buildAndLoad(vectors, metric);
      // Assess
      expect(params).toEqual({});
      expect(bytes.byteLength).toBe(COUNT * DIM * 4);
      expect(new Float32Array(bytes.buffer, bytes.byteOffset, COUNT * DIM)).toEqual(vectors);
      expect([index.engine, index.dim, index.metric, index.count]).toEqual(['flat', DIM, metric, COUNT]);
      expect(index.vectors().data).toEqual(vectors);
      const view = { data: vectors, offset: 0, stride: DIM, dim: DIM, count: COUNT, normalized: false };
      const got = index.search(query, { k: 10 });
      const want = exactTopK(view, metric, query, 10);
      expect(got.map((h) => h.row)).toEqual(want.map((h) => h.row));
      got.forEach((h, i) => expect(h.score).toBeCloseTo(want[i].score, 5));
    });
  }

  it('writes little-endian bytes into a fresh buffer, not a view of the input', async () => {
    // Prepare
    const input = Float32Array.from([1.5, -2, 0, 3]);
    // Act
    const { bytes } = await flatEngine.build({ dim: 2, metric: 'l2', count: 2, vectors: input });
    input[0] = 99;
    // Assess
    expect(bytes.buffer).not.toBe(input.buffer);
    expect(new DataView(bytes.buffer, bytes.byteOffset).getFloat32(0, true)).toBe(1.5);
  });

  it('loads aligned bytes without copying', async () => {
    const { bytes, index } = await buildAndLoad(vectors, 'l2');
    expect(index.vectors().data.buffer).toBe(bytes.buffer);
  });

  it('rejects bytes of the wrong length with CorruptDataError', async () => {
    // Prepare
    const { bytes } = await flatEngine.build({ dim: DIM, metric: 'l2', count: COUNT, vectors });
    const info = { dim: DIM, metric: 'l2' as const, count: COUNT, params: {} };
    // Act / Assess
    await expect(flatEngine.load(bytes.subarray(0, bytes.byteLength - 4), info)).rejects.toThrow(CorruptDataError);
    await expect(flatEngine.load(bytes, { ...info, count: COUNT + 1 })).rejects.toThrow(CorruptDataError);
  });

  it('loads unaligned bytes (copying) with the same results', async () => {
    // Prepare: the same bytes starting at byte offset 1 of a bigger buffer
    const { bytes } = await flatEngine.build({ dim: DIM, metric: 'ip', count: COUNT, vectors });
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    const unaligned = shifted.subarray(1);
    // Act
    const index = await flatEngine.load(unaligned, { dim: DIM, metric: 'ip', count: COUNT, params: {} });
    // Assess
    expect(index.vectors().data).toEqual(vectors);
    const aligned = await flatEngine.load(bytes, { dim: DIM, metric: 'ip', count: COUNT, params: {} });
    expect(index.search(query, { k: 5 })).toEqual(aligned.search(query, { k: 5 }));
  });

  it('honours allow and ignores ef', async () => {
    const { index } = await buildAndLoad(vectors, 'cosine');
    const hits = index.search(query, { k: 20, ef: 3, allow: (r) => r < 50 });
    expect(hits).toHaveLength(20);
    expect(hits.every((h) => h.row < 50)).toBe(true);
  });

  it('refuses use after dispose', async () => {
    const { index } = await buildAndLoad(vectors, 'l2');
    index.dispose();
    expect(() => index.search(query, { k: 1 })).toThrow(EngineError);
    expect(() => index.vectors()).toThrow(EngineError);
  });
});

describe('createFlatIndex', () => {
  it('searches in-memory vectors without copying them', () => {
    // Prepare
    const rng = mulberry32(5);
    const vecs = randomVectors(rng, 37, 6);
    const q = randomVectors(rng, 1, 6);
    // Act
    const index = createFlatIndex(vecs, 6, 'l2');
    const hits = index.search(q, { k: 3 });
    // Assess
    expect(index.count).toBe(37);
    expect(index.vectors().data).toBe(vecs);
    let best = 0;
    for (let r = 1; r < 37; r++) if (l2sq(q, 0, vecs, r * 6, 6) < l2sq(q, 0, vecs, best * 6, 6)) best = r;
    expect(hits[0].row).toBe(best);
  });
});

describe('recall against real ground truth', () => {
  it('is exactly 1.0 at k=10 on sift5k (4500 base, first 100 queries)', async () => {
    // Prepare
    const ds = loadDataset('sift5k', { maxQueries: 100 });
    const { bytes } = await flatEngine.build({ dim: ds.dim, metric: 'l2', count: ds.baseCount, vectors: ds.base });
    const index = await flatEngine.load(bytes, { dim: ds.dim, metric: 'l2', count: ds.baseCount, params: {} });
    // Act
    const hits = Array.from({ length: ds.queryCount }, (_, q) =>
      index.search(ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim), { k: 10 }),
    );
    // Assess
    expect(ds.baseCount).toBe(4500);
    expect(recallAtK(ds, hits, 10)).toBe(1);
  });

  it('is 1.0 at k=10 on glove50 (cosine, 100 queries)', async () => {
    const ds = loadDataset('glove50', { maxQueries: 100 });
    const index = createFlatIndex(ds.base, ds.dim, 'cosine');
    const hits = Array.from({ length: ds.queryCount }, (_, q) =>
      index.search(ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim), { k: 10 }),
    );
    expect(recallAtK(ds, hits, 10)).toBe(1);
  });

  it('matches MNIST ground truth up to exact distance ties (20 queries)', () => {
    // Prepare
    const ds = loadDataset('mnist', { maxQueries: 20 });
    const view = { data: ds.base, offset: 0, stride: ds.dim, dim: ds.dim, count: ds.baseCount, normalized: false };
    // Act
    const hits = exactTopKBatch(view, 'l2', ds.queries, ds.queryCount, 10);
    // Assess: any id that differs from the ground truth must tie with the 10th distance
    for (let q = 0; q < ds.queryCount; q++) {
      const truth = Array.from(ds.groundTruth!.subarray(q * ds.gtK!, q * ds.gtK! + 10));
      const tenth = l2sq(ds.queries, q * ds.dim, ds.base, truth[9] * ds.dim, ds.dim);
      for (const h of hits[q]) if (!truth.includes(h.row)) expect(h.score).toBe(tenth);
    }
    expect(recallAtK(ds, hits, 10)).toBeGreaterThanOrEqual(0.99);
  });
});
