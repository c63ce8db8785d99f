import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CorruptDataError } from '../../shared/errors.js';
import { datasetDir, loadDataset } from '../../shared/io/datasets.js';
import { idxImagesToFloat32, readFvecs, readIdxUbyte, readIvecs } from '../../shared/io/vecfiles.js';

const dir = datasetDir();
const path = (...p: string[]): string => join(dir, ...p);

/** Builds fvecs/ivecs bytes from rows given as 4-byte words. */
function vecsBytes(rows: number[][], kind: 'f' | 'i'): Uint8Array {
  const total = rows.reduce((n, r) => n + 4 + 4 * r.length, 0);
  const dv = new DataView(new ArrayBuffer(total));
  let at = 0;
  for (const r of rows) {
    dv.setInt32(at, r.length, true);
    at += 4;
    for (const v of r) {
      if (kind === 'f') dv.setFloat32(at, v, true);
      else dv.setInt32(at, v, true);
      at += 4;
    }
  }
  return new Uint8Array(dv.buffer);
}

function idxBytes(dims: number[], body: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint8(2, 0x08);
  dv.setUint8(3, dims.length);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  out.set(body, 4 + 4 * dims.length);
  return out;
}

describe('readFvecs / readIvecs on the real datasets', () => {
  it('parses sift5k: 4500 × 128 base, 500 × 128 queries, 500 × 100 ground truth', () => {
    // Act
    const base = readFvecs(path('sift5k', 'sift4500_base.fvecs'));
    const queries = readFvecs(path('sift5k', 'sift500_query.fvecs'));
    const gt = readIvecs(path('sift5k', 'sift500_query_gt100.ivecs'));
    // Assess
    expect([base.count, base.dim, base.data.length]).toEqual([4500, 128, 4500 * 128]);
    expect([queries.count, queries.dim]).toEqual([500, 128]);
    expect([gt.count, gt.dim]).toEqual([500, 100]);
    expect(Math.min(...gt.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...gt.data)).toBeLessThan(4500);
    // SIFT components are small non-negative integers
    expect(base.data.every((v) => Number.isInteger(v) && v >= 0 && v < 256)).toBe(true);
  });

  it('parses glove50: 7349 × 50 base, 500 × 50 queries', () => {
    const base = readFvecs(path('glove50-subset', 'glove50_base.fvecs'));
    const queries = readFvecs(path('glove50-subset', 'glove50_query.fvecs'));
    expect([base.count, base.dim]).toEqual([7349, 50]);
    expect([queries.count, queries.dim]).toEqual([500, 50]);
  });

  it('parses bytes at an unaligned offset', () => {
    // Prepare
    const bytes = vecsBytes(
      [
        [1.5, 2],
        [3, -4],
      ],
      'f',
    );
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    // Act
    const got = readFvecs(shifted.subarray(1));
    // Assess
    expect(got).toEqual({ dim: 2, count: 2, data: Float32Array.from([1.5, 2, 3, -4]) });
  });

  it('rejects a truncated buffer, naming the file', () => {
    // Prepare
    const bytes = readFileSync(path('sift5k', 'sift500_query.fvecs'));
    const truncated = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength - 3);
    // Act / Assess
    expect(() => readFvecs(truncated, 'sift500_query.fvecs')).toThrow(CorruptDataError);
    expect(() => readFvecs(truncated, 'sift500_query.fvecs')).toThrow(/sift500_query\.fvecs/);
  });

  it('rejects rows of inconsistent dimension and non-positive dims', () => {
    expect(() => readIvecs(vecsBytes([[1, 2], [3]], 'i'), 'mixed.ivecs')).toThrow(CorruptDataError);
    // 36 bytes is a whole number of 2-d rows (12 bytes each), but row 1 declares 1 dimension.
    expect(() => readIvecs(vecsBytes([[1, 2], [3], [4], [5]], 'i'), 'mixed.ivecs')).toThrow(/row 1 has dimension 1/);
    expect(() => readFvecs(vecsBytes([[]], 'f'))).toThrow(CorruptDataError);
  });

  it('reads an empty file as zero rows', () => {
    expect(readFvecs(new Uint8Array(0))).toEqual({ dim: 0, count: 0, data: new Float32Array(0) });
  });
});

describe('readIdxUbyte', () => {
  it('parses MNIST: 60000 × 28 × 28 train images, 10000 test images, labels', () => {
    // Act
    const train = readIdxUbyte(path('mnist', 'train-images-idx3-ubyte.gz'));
    const test = readIdxUbyte(path('mnist', 't10k-images-idx3-ubyte.gz'));
    const labels = readIdxUbyte(path('mnist', 'train-labels-idx1-ubyte.gz'));
    // Assess
    expect(train.dims).toEqual([60000, 28, 28]);
    expect(train.data.length).toBe(60000 * 784);
    expect(test.dims).toEqual([10000, 28, 28]);
    expect(labels.dims).toEqual([60000]);
    expect(Math.max(...labels.data)).toBe(9);
  });

  it('converts images to float32 pixel vectors, optionally only the first rows', () => {
    // Prepare
    const idx = idxBytes([3, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]);
    // Act
    const all = idxImagesToFloat32(readIdxUbyte(gzipSync(idx)));
    const first = idxImagesToFloat32(readIdxUbyte(idx), 2);
    // Assess
    expect([all.count, all.dim]).toEqual([3, 4]);
    expect(all.data[11]).toBe(255);
    expect([first.count, first.dim, first.data.length]).toEqual([2, 4, 8]);
  });

  it('rejects truncated bodies, bad magic, wrong element type and broken gzip', () => {
    const ok = idxBytes([2, 3], [1, 2, 3, 4, 5, 6]);
    expect(() => readIdxUbyte(ok.subarray(0, ok.length - 1), 'short.idx')).toThrow(/short\.idx/);
    expect(() => readIdxUbyte(ok.subarray(0, ok.length - 1))).toThrow(CorruptDataError);
    expect(() => readIdxUbyte(ok.subarray(0, 6))).toThrow(CorruptDataError);
    const badMagic = ok.slice();
    badMagic[0] = 1;
    expect(() => readIdxUbyte(badMagic)).toThrow(CorruptDataError);
    const floats = ok.slice();
    floats[2] = 0x0d;
    expect(() => readIdxUbyte(floats)).toThrow(CorruptDataError);
    const gz = gzipSync(ok);
    expect(() => readIdxUbyte(gz.subarray(0, gz.length - 6))).toThrow(CorruptDataError);
  });
});

describe('loadDataset', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('loads sift5k with ground truth cut to the queries kept', () => {
    const ds = loadDataset('sift5k', { maxQueries: 10 });
    expect([ds.metric, ds.dim, ds.baseCount, ds.queryCount, ds.gtK]).toEqual(['l2', 128, 4500, 10, 100]);
    expect(ds.base.length).toBe(4500 * 128);
    expect(ds.queries.length).toBe(10 * 128);
    expect(ds.groundTruth?.length).toBe(10 * 100);
  });

  it('loads glove50 as cosine', () => {
    const ds = loadDataset('glove50');
    expect([ds.metric, ds.dim, ds.baseCount, ds.queryCount]).toEqual(['cosine', 50, 7349, 500]);
    expect(ds.groundTruth?.length).toBe(500 * 100);
  });

  it('loads an MNIST subset with labels and without the (now invalid) ground truth', () => {
    const ds = loadDataset('mnist', { maxBase: 1000, maxQueries: 5 });
    expect([ds.metric, ds.dim, ds.baseCount, ds.queryCount]).toEqual(['l2', 784, 1000, 5]);
    expect(ds.base.length).toBe(1000 * 784);
    expect(ds.queries.length).toBe(5 * 784);
    expect(ds.labels?.length).toBe(1000);
    expect(ds.groundTruth).toBeUndefined();
  });

  it('honours SHOAL_DATASETS', () => {
    vi.stubEnv('SHOAL_DATASETS', '/nonexistent/datasets');
    expect(datasetDir()).toBe('/nonexistent/datasets');
  });
});
