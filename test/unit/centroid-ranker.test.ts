/**
 * The coordinator's centroid ranker (the engine's `shoal_scan`) orders partitions as the JavaScript scan
 * does, for every metric and dimensions with and without a SIMD tail, and keeps one heap copy per table.
 */
import { describe, expect, it } from 'vitest';
import { centroidRanker } from '../../shared/engine/centroid-ranker.js';
import { CorruptDataError } from '../../shared/errors.js';
import { nearestPartitions, type Centroids } from '../../shared/engine/ivf.js';
import { loadShoalWasm } from '../../shared/engine/shoal-wasm.js';
import { mulberry32 } from '../../shared/random.js';
import type { Metric } from '../../shared/types.js';

function table(count: number, dim: number, seed: number): Centroids {
  const rnd = mulberry32(seed);
  return { count, dim, data: Float32Array.from({ length: count * dim }, () => rnd() * 2 - 1) };
}

describe('centroid ranker', () => {
  it.each([
    [300, 96],
    [257, 7],
    [64, 784],
    [5, 1],
  ])('ranks %i × %i-d centroids as nearestPartitions does, for l2, cosine and ip', async (count, dim) => {
    const ranker = await centroidRanker();
    const c = table(count, dim, count + dim);
    const rnd = mulberry32(dim);
    for (const metric of ['l2', 'cosine', 'ip'] as Metric[]) {
      for (let q = 0; q < 5; q++) {
        const query = Float32Array.from({ length: dim }, () => rnd() * 2 - 1);
        expect(ranker.nearest(c, metric, query, count), `${metric} q${q}`).toEqual(
          nearestPartitions(c, metric, query, count),
        );
        expect(ranker.nearest(c, metric, query, 3)).toEqual(nearestPartitions(c, metric, query, 3));
      }
    }
  });

  it('copies a table into the heap once, and refuses a query of another dimension', async () => {
    const ranker = await centroidRanker();
    const wasm = await loadShoalWasm();
    const c = table(1000, 64, 3);
    const q = table(1, 64, 4).data;
    ranker.nearest(c, 'l2', q, 10);
    const used = wasm.heapUsedBytes();
    for (let i = 0; i < 50; i++) ranker.nearest(c, 'l2', q, 10);
    expect(wasm.heapUsedBytes()).toBe(used);
    const short = Float32Array.from([1, 2, 3]);
    expect(() => ranker.nearest(c, 'l2', short, 2)).toThrow(CorruptDataError);
    expect(ranker.nearest({ count: 0, dim: 3, data: new Float32Array(0) }, 'l2', short, 2)).toEqual([]);
  });
});
