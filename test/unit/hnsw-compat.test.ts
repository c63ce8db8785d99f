import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFilter } from '../../shared/filter/index.js';
import { Shard } from '../../shared/shard/shard.js';
import type { Hit } from '../../shared/types.js';

/**
 * Shards written by the hnswlib-wasm@0.8.2 engine (before Shoal's own WASM build) stay
 * readable: the fixtures under test/fixtures/ were built by that code (12-d, 300 rows,
 * m=8, efConstruction=64) together with the answers it gave.
 */
const fixtures = new URL('../fixtures/', import.meta.url);
const expected = JSON.parse(readFileSync(new URL('hnswlib-wasm-0.8.2-expected.json', fixtures), 'utf8')) as Record<
  string,
  { dim: number; count: number; queries: number[][]; results: Hit[][] }
>;

describe('shards built by hnswlib-wasm@0.8.2', () => {
  it.each(['l2', 'cosine', 'ip'])('a %s shard loads and answers as it did', async (metric) => {
    // Prepare
    const bytes = new Uint8Array(readFileSync(new URL(`hnswlib-wasm-0.8.2-${metric}.shard`, fixtures)));
    const want = expected[metric];
    // Act
    const shard = await Shard.open(bytes);
    // Assess
    expect(shard.engine).toBe('hnsw');
    expect(shard.count).toBe(want.count);
    want.queries.forEach((q, i) => {
      const got = shard.search(Float32Array.from(q), { k: 5, ef: 64 });
      expect(got.map((h) => h.id)).toEqual(want.results[i].map((h) => h.id));
      got.forEach((h, j) => expect(h.score).toBeCloseTo(want.results[i][j].score, 5));
      // Filtered search works over the old graph too.
      const even = shard.search(Float32Array.from(q), { k: 5, ef: 64, filter: parseFilter('even == true') });
      expect(even).toHaveLength(5);
      expect(even.every((h) => Number(h.id.slice(4)) % 2 === 0)).toBe(true);
    });
    shard.dispose();
  });
});
