import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactTopK } from '../../shared/engine/distance.js';
import { CorruptDataError } from '../../shared/errors.js';
import { parseFilter } from '../../shared/filter/index.js';
import { loadDataset } from '../../shared/io/datasets.js';
import { FILTER_PLAN, Shard, buildShard } from '../../shared/shard/shard.js';
import { mulberry32 } from '../helpers/random.js';

/**
 * A real-data shard (SIFT, 4 500 × 128, L2) with a uniform random attribute `r` in
 * [0, 100 000) so `r < s·100000` selects a fraction s of rows, and a `tag` string.
 */
describe('Shard on real data (sift5k)', () => {
  let shard: Shard;
  let base: Float32Array;
  let queries: Float32Array;
  let truth: Int32Array;
  let gtK: number;
  const dim = 128;
  const n = 4500;
  const nq = 100;

  beforeAll(async () => {
    const ds = await loadDataset('sift5k', { maxQueries: nq });
    base = ds.base;
    queries = ds.queries;
    truth = ds.groundTruth!;
    gtK = ds.gtK!;
    const rng = mulberry32(2024);
    const metadata = Array.from({ length: n }, (_, i) => ({
      r: Math.floor(rng() * 100_000),
      tag: i % 3 === 0 ? 'red' : 'blue',
    }));
    const bytes = await buildShard({
      engine: 'hnsw',
      dim,
      metric: 'l2',
      ids: Array.from({ length: n }, (_, i) => `v${i}`),
      vectors: base,
      seqs: Array.from({ length: n }, (_, i) => 1000 + i),
      metadata,
    });
    shard = await Shard.open(bytes);
  }, 120_000);

  afterAll(() => shard?.dispose());

  const q = (i: number) => queries.subarray(i * dim, (i + 1) * dim);

  it('reaches recall@10 ≥ 0.95 against the published ground truth at the default ef', () => {
    let hits = 0;
    for (let i = 0; i < nq; i++) {
      const want = new Set(Array.from(truth.subarray(i * gtK, i * gtK + 10), (r) => `v${r}`));
      hits += shard.search(q(i), { k: 10 }).filter((h) => want.has(h.id)).length;
    }
    expect(hits / (nq * 10)).toBeGreaterThanOrEqual(0.95);
  });

  it('maps rows to ids and seqs', () => {
    const [top] = shard.search(base.subarray(42 * dim, 43 * dim), { k: 1 });
    expect(top).toEqual({ id: 'v42', score: 0, seq: 1042 });
  });

  it.each([0.001, 0.005, 0.01, 0.05, 0.1, 0.3, 0.6, 1])(
    'keeps the k-results promise and recall@10 ≥ 0.95 at selectivity %s',
    (s) => {
      const filter = parseFilter(`r < ${Math.round(s * 100_000)}`)!;
      const rows = shard.matchingRows(filter, undefined)!;
      const view = { data: base, offset: 0, stride: dim, dim, count: n, normalized: false };
      let recall = 0;
      for (let i = 0; i < 30; i++) {
        const got = shard.search(q(i), { k: 10, filter });
        const want = exactTopK(view, 'l2', q(i), 10, { rows }).map((h) => `v${h.row}`);
        expect(got).toHaveLength(Math.min(10, rows.length));
        const wantSet = new Set(want);
        recall += want.length === 0 ? 1 : got.filter((h) => wantSet.has(h.id)).length / want.length;
      }
      expect(recall / 30).toBeGreaterThanOrEqual(0.95);
    },
  );

  it.each([0.01, 0.05, 0.2])('keeps recall ≥ 0.95 on the filtered-graph plan itself at selectivity %s', (s) => {
    const saved = { ...FILTER_PLAN };
    Object.assign(FILTER_PLAN, { GRAPH_ROWS_PER_EF: 0, EXACT_MIN_ROWS: 0 });
    try {
      const filter = parseFilter(`r < ${Math.round(s * 100_000)}`)!;
      const rows = shard.matchingRows(filter, undefined)!;
      const view = { data: base, offset: 0, stride: dim, dim, count: n, normalized: false };
      let recall = 0;
      for (let i = 0; i < 20; i++) {
        const got = shard.search(q(i), { k: 10, filter });
        expect(['filtered-graph', 'graph-then-exact']).toContain(shard.lastPlan.kind);
        expect(got).toHaveLength(10);
        const want = new Set(exactTopK(view, 'l2', q(i), 10, { rows }).map((h) => `v${h.row}`));
        recall += got.filter((h) => want.has(h.id)).length / 10;
      }
      expect(recall / 20).toBeGreaterThanOrEqual(0.95);
    } finally {
      Object.assign(FILTER_PLAN, saved);
    }
  });

  it('returns fewer than k only when fewer rows match', () => {
    const filter = parseFilter({ r: { $lt: 30 } })!;
    const matches = shard.matchingRows(filter, undefined)!.length;
    expect(matches).toBeLessThan(10);
    expect(shard.search(q(0), { k: 10, filter })).toHaveLength(matches);
  });

  it('never returns deleted rows', () => {
    const first = shard.search(q(1), { k: 10 });
    const deleted = new Uint8Array(Math.ceil(n / 8));
    for (const h of first.slice(0, 5)) {
      const row = Number(h.id.slice(1));
      deleted[row >>> 3] |= 1 << (row & 7);
    }
    const after = shard.search(q(1), { k: 10, deleted });
    expect(after).toHaveLength(10);
    const gone = new Set(first.slice(0, 5).map((h) => h.id));
    expect(after.some((h) => gone.has(h.id))).toBe(false);
    expect(after.slice(0, 5).map((h) => h.id)).toEqual(first.slice(5).map((h) => h.id));
  });

  it('combines filters on string and number columns', () => {
    const filter = parseFilter('tag == "red" and r >= 50000')!;
    const got = shard.search(q(2), { k: 10, filter });
    expect(got).toHaveLength(10);
    for (const h of got) {
      const row = Number(h.id.slice(1));
      const md = shard.metadataOf(row);
      expect(md.tag).toBe('red');
      expect(md.r as number).toBeGreaterThanOrEqual(50000);
    }
  });
});

describe('Shard.open on damaged bytes', () => {
  it('rejects a flipped byte in the index section with CorruptDataError', async () => {
    const dim = 8;
    const rng = mulberry32(9);
    const vectors = Float32Array.from({ length: 50 * dim }, () => rng());
    const bytes = await buildShard({
      engine: 'hnsw',
      dim,
      metric: 'cosine',
      ids: Array.from({ length: 50 }, (_, i) => String(i)),
      vectors,
      seqs: Array.from({ length: 50 }, (_, i) => i + 1),
    });
    const damaged = bytes.slice();
    damaged[Math.floor(damaged.length / 2)] ^= 0xff;
    await expect(Shard.open(damaged)).rejects.toBeInstanceOf(CorruptDataError);
    await expect(Shard.open(bytes.subarray(0, bytes.length - 1))).rejects.toBeInstanceOf(CorruptDataError);
    const ok = await Shard.open(bytes);
    expect(ok.count).toBe(50);
    ok.dispose();
  });
});
