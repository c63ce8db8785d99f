import { describe, expect, it } from 'vitest';
import { dot, exactTopK, exactTopKBatch, l2sq, norm, QUERY_BLOCK } from '../../shared/engine/distance.js';
import { TopK } from '../../shared/engine/topk.js';
import type { VectorView } from '../../shared/engine/types.js';
import { ValidationError } from '../../shared/errors.js';
import { METRICS, type Metric, type RowHit } from '../../shared/types.js';
import { mulberry32, randomVectors } from '../helpers/random.js';

function viewOf(data: Float32Array, dim: number, normalized = false): VectorView {
  return { data, offset: 0, stride: dim, dim, count: data.length / dim, normalized };
}

/** Straightforward reference: one score per row, full sort, ties by row. */
function naiveTopK(
  data: Float32Array,
  dim: number,
  metric: Metric,
  q: Float32Array,
  k: number,
  rows?: number[],
): RowHit[] {
  const count = data.length / dim;
  const candidates = rows ?? Array.from({ length: count }, (_, i) => i);
  const hits = candidates.map((row) => {
    let d = 0,
      l2 = 0,
      nx = 0,
      nq = 0;
    for (let j = 0; j < dim; j++) {
      const x = data[row * dim + j];
      d += x * q[j];
      l2 += (x - q[j]) ** 2;
      nx += x * x;
      nq += q[j] * q[j];
    }
    const score = metric === 'l2' ? l2 : metric === 'ip' ? d : nx === 0 || nq === 0 ? 0 : d / Math.sqrt(nx * nq);
    return { row, score };
  });
  hits.sort((a, b) =>
    a.score !== b.score ? (metric === 'l2' ? a.score - b.score : b.score - a.score) : a.row - b.row,
  );
  return hits.slice(0, k);
}

function expectSameHits(actual: RowHit[], expected: RowHit[]): void {
  expect(actual.map((h) => h.row)).toEqual(expected.map((h) => h.row));
  actual.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i].score, 6));
}

describe('dot / l2sq / norm', () => {
  it('match a plain loop for every dim remainder and offset', () => {
    // Prepare
    const rng = mulberry32(1);
    const a = randomVectors(rng, 1, 40);
    const b = randomVectors(rng, 1, 40);
    for (let dim = 0; dim <= 9; dim++) {
      let d = 0,
        l = 0,
        n = 0;
      for (let j = 0; j < dim; j++) {
        d += a[3 + j] * b[5 + j];
        l += (a[3 + j] - b[5 + j]) ** 2;
        n += a[3 + j] ** 2;
      }
      // Act / Assess
      expect(dot(a, 3, b, 5, dim)).toBeCloseTo(d, 12);
      expect(l2sq(a, 3, b, 5, dim)).toBeCloseTo(l, 12);
      expect(norm(a, 3, dim)).toBeCloseTo(Math.sqrt(n), 12);
    }
  });
});

describe('TopK', () => {
  it('keeps the best k of random scores in both directions, ties by lower row', () => {
    // Prepare: few distinct scores so ties are frequent
    const rng = mulberry32(2);
    const scores = Array.from({ length: 500 }, () => Math.floor(rng() * 50));
    for (const hib of [true, false]) {
      const topk = new TopK(17, hib);
      // Act: offer in a shuffled order so the tie-break cannot lean on scan order
      const order = Array.from({ length: 500 }, (_, i) => i).sort(() => rng() - 0.5);
      for (const r of order) topk.offer(r, scores[r]);
      const got = topk.drain();
      // Assess
      const want = scores
        .map((score, row) => ({ row, score }))
        .sort((a, b) => (a.score !== b.score ? (hib ? b.score - a.score : a.score - b.score) : a.row - b.row))
        .slice(0, 17);
      expect(got).toEqual(want);
      expect(topk.size).toBe(0);
    }
  });

  it('with k = 0 keeps nothing', () => {
    const topk = new TopK(0, true);
    topk.offer(1, 5);
    expect(topk.drain()).toEqual([]);
  });
});

describe('exactTopK', () => {
  const rng = mulberry32(42);
  const dim = 19; // not a multiple of 4: exercises the unroll remainder
  const count = 300;
  const data = randomVectors(rng, count, dim);
  const queries = randomVectors(rng, 5, dim);

  for (const metric of METRICS) {
    it(`matches the naive reference for ${metric}`, () => {
      for (let qi = 0; qi < 5; qi++) {
        // Prepare
        const q = queries.subarray(qi * dim, (qi + 1) * dim);
        // Act
        const got = exactTopK(viewOf(data, dim), metric, q, 10);
        // Assess
        expectSameHits(got, naiveTopK(data, dim, metric, q, 10));
      }
    });
  }

  it('returns every row, sorted, when k exceeds the count', () => {
    const q = queries.subarray(0, dim);
    const got = exactTopK(viewOf(data, dim), 'l2', q, count + 50);
    expect(got).toHaveLength(count);
    expectSameHits(got, naiveTopK(data, dim, 'l2', q, count));
  });

  it('returns nothing for k = 0 or an empty view', () => {
    const q = queries.subarray(0, dim);
    expect(exactTopK(viewOf(data, dim), 'ip', q, 0)).toEqual([]);
    expect(exactTopK(viewOf(new Float32Array(0), dim), 'ip', q, 5)).toEqual([]);
  });

  it('scans only the given rows, ignoring duplicates', () => {
    // Prepare
    const subset = [250, 3, 77, 3, 140, 9, 299, 0, 250];
    const distinct = [...new Set(subset)];
    const q = queries.subarray(dim, 2 * dim);
    for (const metric of METRICS) {
      // Act
      const got = exactTopK(viewOf(data, dim), metric, q, 4, { rows: Int32Array.from(subset) });
      // Assess
      expectSameHits(got, naiveTopK(data, dim, metric, q, 4, distinct));
    }
  });

  it('rejects rows outside the view', () => {
    const q = queries.subarray(0, dim);
    expect(() => exactTopK(viewOf(data, dim), 'l2', q, 3, { rows: [1, count] })).toThrow(ValidationError);
    expect(() => exactTopK(viewOf(data, dim), 'l2', q, 3, { rows: [-1] })).toThrow(ValidationError);
  });

  it('honours allow, alone and with rows, calling it once per row', () => {
    // Prepare
    const q = queries.subarray(2 * dim, 3 * dim);
    let calls = 0;
    const even = (r: number): boolean => {
      calls++;
      return r % 2 === 0;
    };
    // Act
    const all = exactTopK(viewOf(data, dim), 'cosine', q, 8, { allow: even });
    const callsAll = calls;
    const some = exactTopK(viewOf(data, dim), 'cosine', q, 8, { allow: even, rows: [1, 2, 3, 4, 5, 6] });
    // Assess
    const evenRows = Array.from({ length: count }, (_, i) => i).filter((r) => r % 2 === 0);
    expectSameHits(all, naiveTopK(data, dim, 'cosine', q, 8, evenRows));
    expect(callsAll).toBe(count);
    expect(some.map((h) => h.row).sort((a, b) => a - b)).toEqual([2, 4, 6]);
  });

  it('reads strided views (offset and stride ≠ dim) like contiguous ones', () => {
    // Prepare: rows embedded at offset 3 with 5 floats of garbage between them
    const stride = dim + 5;
    const offset = 3;
    const strided = new Float32Array(offset + count * stride).fill(1e6);
    for (let r = 0; r < count; r++) strided.set(data.subarray(r * dim, (r + 1) * dim), offset + r * stride);
    const view: VectorView = { data: strided, offset, stride, dim, count, normalized: false };
    const q = queries.subarray(3 * dim, 4 * dim);
    for (const metric of METRICS) {
      // Act
      const got = exactTopK(view, metric, q, 12);
      // Assess
      expect(got).toEqual(exactTopK(viewOf(data, dim), metric, q, 12));
    }
  });

  it('breaks score ties by lower row, whatever the scan order', () => {
    // Prepare: rows 0..9 are copies of one vector, so all their scores are equal
    const d = 8;
    const dup = new Float32Array(10 * d);
    for (let r = 0; r < 10; r++) for (let j = 0; j < d; j++) dup[r * d + j] = j + 1;
    const q = Float32Array.from({ length: d }, (_, j) => j % 3);
    for (const metric of METRICS) {
      // Act
      const forward = exactTopK(viewOf(dup, d), metric, q, 4);
      const reversed = exactTopK(viewOf(dup, d), metric, q, 4, { rows: [9, 8, 7, 6, 5, 4, 3, 2, 1, 0] });
      // Assess
      expect(forward.map((h) => h.row)).toEqual([0, 1, 2, 3]);
      expect(reversed).toEqual(forward);
    }
  });

  it('gives zero vectors a cosine of 0, and a zero query cosine 0 everywhere', () => {
    // Prepare
    const d = 4;
    const vecs = Float32Array.from([0, 0, 0, 0, 1, 0, 0, 0, -1, 0, 0, 0]);
    // Act
    const hits = exactTopK(viewOf(vecs, d), 'cosine', Float32Array.from([2, 0, 0, 0]), 3);
    const zeroQuery = exactTopK(viewOf(vecs, d), 'cosine', new Float32Array(d), 3);
    // Assess
    expect(hits).toEqual([
      { row: 1, score: 1 },
      { row: 0, score: 0 },
      { row: 2, score: -1 },
    ]);
    expect(zeroQuery).toEqual([
      { row: 0, score: 0 },
      { row: 1, score: 0 },
      { row: 2, score: 0 },
    ]);
  });

  it('treats a normalized view as unit rows and uses given inverse norms', () => {
    // Prepare
    const unit = data.slice();
    const inv = new Float32Array(count);
    for (let r = 0; r < count; r++) {
      const n = norm(data, r * dim, dim);
      inv[r] = 1 / n;
      for (let j = 0; j < dim; j++) unit[r * dim + j] /= n;
    }
    const q = queries.subarray(4 * dim, 5 * dim);
    const want = naiveTopK(data, dim, 'cosine', q, 10);
    // Act / Assess
    expectSameHits(exactTopK(viewOf(unit, dim, true), 'cosine', q, 10), want);
    expectSameHits(exactTopK(viewOf(data, dim), 'cosine', q, 10, { invNorms: inv }), want);
  });

  it('rejects a query of the wrong dimension', () => {
    expect(() => exactTopK(viewOf(data, dim), 'l2', new Float32Array(dim + 1), 3)).toThrow(ValidationError);
  });
});

describe('exactTopKBatch', () => {
  const rng = mulberry32(7);
  const dim = 33;
  const count = 257;
  const data = randomVectors(rng, count, dim);
  // Odd and not a multiple of the block: exercises the pair kernel's leftover query and a short last block.
  const nq = 2 * QUERY_BLOCK + 5;
  const queries = randomVectors(rng, nq, dim);
  // Exact duplicates of row 5 force score ties inside the batch path too.
  data.copyWithin(6 * dim, 5 * dim, 6 * dim);
  queries.set(data.subarray(5 * dim, 6 * dim), 0);

  for (const metric of METRICS) {
    it(`returns exactly what exactTopK returns per query (${metric})`, () => {
      const allow = (r: number): boolean => r % 3 !== 1;
      for (const opts of [undefined, { allow }, { rows: [200, 5, 6, 17, 99, 100, 101, 3] }]) {
        // Act
        const batch = exactTopKBatch(viewOf(data, dim), metric, queries, nq, 7, opts);
        // Assess: bit-identical scores, not just close
        expect(batch).toHaveLength(nq);
        for (let qi = 0; qi < nq; qi++) {
          expect(batch[qi]).toEqual(
            exactTopK(viewOf(data, dim), metric, queries.subarray(qi * dim, (qi + 1) * dim), 7, opts),
          );
        }
      }
    });
  }

  it('handles zero queries and rejects a mis-sized query buffer', () => {
    expect(exactTopKBatch(viewOf(data, dim), 'l2', new Float32Array(0), 0, 5)).toEqual([]);
    expect(() => exactTopKBatch(viewOf(data, dim), 'l2', queries, nq + 1, 5)).toThrow(ValidationError);
  });
});
