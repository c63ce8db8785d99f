import { describe, expect, it } from 'vitest';
import { exactTopK, l2sq } from '../../shared/engine/distance.js';
import { prepareQueries, type VersionCorpus } from '../../shared/lifecycle/evaluation.js';
import { mulberry32, normals, sampleRows } from '../../shared/random.js';
import type { CollectionMeta, Manifest } from '../../shared/storage/types.js';

const DIM = 16;
const ROWS = 600;

function corpus(metric: 'l2' | 'cosine', duplicate = false): VersionCorpus {
  const gauss = normals(mulberry32(7));
  const data = Float32Array.from({ length: ROWS * DIM }, () => gauss());
  // Row 1 an exact copy of row 0: its nearest other row is at distance 0.
  if (duplicate) data.copyWithin(DIM, 0, DIM);
  const meta = { name: 'c', generation: 2, dimension: DIM, metric } as unknown as CollectionMeta;
  const manifest = { version: 5 } as unknown as Manifest;
  return { meta, manifest, ids: Array.from({ length: ROWS }, (_, i) => `r${i}`), data };
}

const rowOf = (c: VersionCorpus, r: number) => c.data.subarray(r * DIM, (r + 1) * DIM);
const unit = (v: Float32Array) => {
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
};

describe('sampled evaluation queries', () => {
  it('moves each query off its row by the row’s nearest-neighbour distance; truth is exact for the moved query', () => {
    const c = corpus('l2');
    const p = prepareQueries(c, { sample: 40, k: 10 });
    const rows = sampleRows(ROWS, 40, 5 * 7919 + 2);
    expect(p.source).toBe('sample');
    expect(p.queries).toHaveLength(40);
    const view = { data: c.data, offset: 0, stride: DIM, dim: DIM, count: ROWS, normalized: false };
    p.queries.forEach((q, i) => {
      const src = rowOf(c, rows[i]);
      const nn = exactTopK(view, 'l2', src, 2).find((h) => h.row !== rows[i])!;
      const offset = Math.sqrt(l2sq(q, 0, src, 0, DIM));
      // Not a row of the index, and exactly one nearest-neighbour distance away from its source.
      expect(offset).toBeGreaterThan(0);
      expect(offset).toBeCloseTo(Math.sqrt(nn.score), 4);
      expect(p.truth[i]).toEqual(exactTopK(view, 'l2', q, 10).map((h) => `r${h.row}`));
    });
    expect(p.self.every((s) => s === undefined)).toBe(true);
    // Seeded: the same version samples the same queries.
    expect(prepareQueries(c, { sample: 40, k: 10 }).queries).toEqual(p.queries);
  });

  it('offsets cosine queries on the unit sphere, and gives an exact duplicate the median offset', () => {
    const c = corpus('cosine', true);
    const p = prepareQueries(c, { sample: ROWS, k: 5 });
    const rows = sampleRows(ROWS, ROWS, 5 * 7919 + 2);
    const offsets = p.queries.map((q, i) => Math.sqrt(l2sq(q, 0, unit(rowOf(c, rows[i])), 0, DIM)));
    // 16-d Gaussian rows on the unit sphere: neighbours are well under the sphere's diameter.
    for (const o of offsets) expect(o).toBeGreaterThan(0.05);
    for (const o of offsets) expect(o).toBeLessThan(1.2);
    const dup = rows.indexOf(0);
    const sorted = offsets.filter((_, i) => rows[i] !== 0 && rows[i] !== 1).sort((a, b) => a - b);
    expect(offsets[dup]).toBeGreaterThan(sorted[Math.floor(sorted.length * 0.1)]);
    expect(offsets[dup]).toBeLessThan(sorted[Math.floor(sorted.length * 0.9)]);
  });
});
