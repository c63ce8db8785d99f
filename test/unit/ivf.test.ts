import { describe, expect, it } from 'vitest';
import {
  IVF_POLICY,
  allocate,
  assignPartition,
  decodeCentroids,
  defaultNprobe,
  encodeCentroids,
  nearestPartitions,
  partitionsFor,
  trainCentroids,
  withSplit,
  withoutPartition,
} from '../../shared/engine/ivf.js';
import { CorruptDataError, ValidationError } from '../../shared/errors.js';
import { mulberry32 } from '../../shared/random.js';

/** `perCluster` points around each of `centres` (±0.05 noise), cluster by cluster. */
function blobs(centres: number[][], perCluster: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const dim = centres[0].length;
  const out = new Float32Array(centres.length * perCluster * dim);
  centres.forEach((c, ci) => {
    for (let i = 0; i < perCluster; i++) {
      for (let d = 0; d < dim; d++) out[(ci * perCluster + i) * dim + d] = c[d] + (rnd() - 0.5) * 0.1;
    }
  });
  return out;
}

const CENTRES = [
  [0, 0, 0],
  [10, 0, 0],
  [0, 10, 0],
  [0, 0, 10],
];

describe('k-means partitions', () => {
  it('finds well-separated clusters: every point of a blob lands in one partition, one partition per blob', () => {
    const data = blobs(CENTRES, 50, 1);
    const c = trainCentroids(data, 200, 3, 4, 'l2', 7);
    const owner = CENTRES.map(
      (_, ci) =>
        new Set(
          Array.from({ length: 50 }, (_, i) =>
            assignPartition(c, 'l2', data.subarray((ci * 50 + i) * 3, (ci * 50 + i + 1) * 3)),
          ),
        ),
    );
    expect(owner.every((s) => s.size === 1)).toBe(true);
    expect(new Set(owner.map((s) => [...s][0])).size).toBe(4);
  });

  it('is deterministic for a seed', () => {
    const data = blobs(CENTRES, 30, 2);
    expect(trainCentroids(data, 120, 3, 4, 'l2', 5).data).toEqual(trainCentroids(data, 120, 3, 4, 'l2', 5).data);
  });

  it('trains unit-length centroids for cosine and does not touch the input', () => {
    const data = blobs(CENTRES.slice(1), 40, 3);
    const copy = data.slice();
    const c = trainCentroids(data, 120, 3, 3, 'cosine', 1);
    expect(data).toEqual(copy);
    for (let p = 0; p < 3; p++) {
      const v = c.data.subarray(p * 3, p * 3 + 3);
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    }
  });

  it('refuses more partitions than rows, naming the field', () => {
    expect(() => trainCentroids(new Float32Array(6), 2, 3, 4, 'l2', 1)).toThrow(ValidationError);
    expect(() => trainCentroids(new Float32Array(6), 2, 3, 4, 'l2', 1)).toThrow(/cannot train 4 partitions on 2 rows/);
  });

  it('orders partitions nearest first, for a probe', () => {
    const c = { count: 4, dim: 3, data: Float32Array.from(CENTRES.flat()) };
    expect(nearestPartitions(c, 'l2', Float32Array.from([9, 1, 0]), 2)).toEqual([1, 0]);
    expect(nearestPartitions(c, 'l2', Float32Array.from([9, 1, 0]), 10)).toHaveLength(4);
    // Inner product prefers the largest projection, not the nearest point.
    expect(nearestPartitions(c, 'ip', Float32Array.from([1, 2, 0]), 1)).toEqual([2]);
  });

  it('round-trips a centroid table through bytes and refuses a torn one', () => {
    const c = { count: 2, dim: 3, data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
    const bytes = encodeCentroids(c);
    expect(decodeCentroids(bytes, 2, 3)).toEqual(c);
    expect(() => decodeCentroids(bytes.subarray(0, 20), 2, 3)).toThrow(CorruptDataError);
  });

  it('splits one partition (appended) and drops one (later ones shift down)', () => {
    const c = { count: 3, dim: 1, data: Float32Array.from([0, 10, 20]) };
    expect(Array.from(withSplit(c, 1, Float32Array.from([9]), Float32Array.from([11])).data)).toEqual([0, 9, 20, 11]);
    expect(Array.from(withoutPartition(c, 1).data)).toEqual([0, 20]);
  });
});

describe('partition counts', () => {
  it('leaves small collections unpartitioned, sizes large ones by the target, and obeys a forced count', () => {
    expect(partitionsFor(IVF_POLICY.MIN_ROWS - 1, undefined)).toBe(0);
    expect(partitionsFor(1_000_000, undefined)).toBe(200);
    expect(partitionsFor(10, 32)).toBe(32);
    expect(partitionsFor(1e12, undefined)).toBe(IVF_POLICY.MAX_PARTITIONS);
  });

  it('probes 10 % by default, at least 4, at most all', () => {
    expect(defaultNprobe(2)).toBe(2);
    expect(defaultNprobe(16)).toBe(4);
    expect(defaultNprobe(50)).toBe(5);
    expect(defaultNprobe(1000)).toBe(100);
  });

  it('splits a budget in proportion, each share within its group and non-empty groups served', () => {
    expect(allocate([10, 10, 10, 10], 8)).toEqual([2, 2, 2, 2]);
    expect(allocate([100, 1, 0, 3], 10)).toEqual([8, 1, 0, 1]);
    expect(allocate([2, 50], 10)).toEqual([1, 9]);
    const rnd = mulberry32(4);
    for (let t = 0; t < 200; t++) {
      const sizes = Array.from({ length: 1 + Math.floor(rnd() * 20) }, () => Math.floor(rnd() * 30));
      const sum = sizes.reduce((a, b) => a + b, 0);
      const nonEmpty = sizes.filter((n) => n > 0).length;
      if (sum === 0) continue;
      const total = nonEmpty + Math.floor(rnd() * (sum - nonEmpty + 1));
      const out = allocate(sizes, total);
      expect(out.reduce((a, b) => a + b, 0)).toBe(total);
      out.forEach((n, i) => {
        expect(n).toBeLessThanOrEqual(sizes[i]);
        if (sizes[i] > 0) expect(n).toBeGreaterThanOrEqual(1);
      });
    }
  });

  it('trains large tables two-level: k distinct centroids, each serving rows, nearly as tight as flat k-means', () => {
    // 64 blobs in 8-d, trained as 64 partitions: flat, and two-level (forced from 16 partitions on).
    const rnd = mulberry32(11);
    const centres = Array.from({ length: 64 }, () => Array.from({ length: 8 }, () => rnd() * 20));
    const data = blobs(centres, 40, 12);
    const rows = 64 * 40;
    const flat = trainCentroids(data, rows, 8, 64, 'l2', 3);
    const twoLevel = trainCentroids(data, rows, 8, 64, 'l2', 3, IVF_POLICY.ITERATIONS, 16);
    const inertia = (c: typeof flat) => {
      let sum = 0;
      const used = new Set<number>();
      for (let r = 0; r < rows; r++) {
        const v = data.subarray(r * 8, (r + 1) * 8);
        const p = assignPartition(c, 'l2', v);
        used.add(p);
        for (let d = 0; d < 8; d++) sum += (v[d] - c.data[p * 8 + d]) ** 2;
      }
      return { sum: sum / rows, used: used.size };
    };
    const f = inertia(flat);
    const t = inertia(twoLevel);
    expect(twoLevel.count).toBe(64);
    expect(twoLevel.data).not.toEqual(flat.data);
    expect(t.used).toBeGreaterThanOrEqual(60);
    expect(t.sum).toBeLessThan(Math.max(f.sum * 3, 0.05));
    // Deterministic for a seed, like flat training.
    expect(trainCentroids(data, rows, 8, 64, 'l2', 3, IVF_POLICY.ITERATIONS, 16).data).toEqual(twoLevel.data);
  });
});
