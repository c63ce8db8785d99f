import { describe, expect, it } from 'vitest';
import { SPACE, loadShoalWasm, type ShoalWasm } from '../../shared/engine/shoal-wasm.js';
import { mulberry32 } from '../../shared/random.js';

/**
 * engine/src/shoal_hnsw.cpp walks the graph its own way (a node's unvisited neighbours measured in
 * batches of 4, no locks) but must take exactly hnswlib's path: the same index bytes from the same
 * inserts, the same answers from the same index. `reference` = 1 runs hnswlib's own addPoint/searchKnn
 * inside the same module.
 */
const DIM = 21; // 2 × 8 + 4 + 1: every kernel tail runs
const ROWS = 1200;
const K = 10;

function data(seed: number, rows: number): Float32Array {
  const rnd = mulberry32(seed);
  // Clustered, so the graph has hubs and full neighbour lists get re-pruned; small integers (like SIFT's),
  // so many distances tie exactly and the order of equal hits is tested too.
  const out = new Float32Array(rows * DIM);
  for (let r = 0; r < rows; r++) {
    const c = r % 7;
    for (let d = 0; d < DIM; d++) out[r * DIM + d] = Math.round(c * 1.2 + (rnd() - 0.5) * (d % 3 === c % 3 ? 8 : 2));
  }
  return out;
}

function build(w: ShoalWasm, space: number, vectors: Float32Array, reference: number): number {
  const index = w.x.shoal_create(space, DIM, ROWS, 8, 60, 42);
  const ptr = w.alloc(vectors.byteLength, 'vectors');
  w.f32(ptr, vectors.length).set(vectors);
  // Two calls, as the engine adds in batches.
  expect(w.x.shoal_add_with(index, ptr, ROWS / 2, 0, reference)).toBe(ROWS / 2);
  expect(w.x.shoal_add_with(index, ptr + (ROWS / 2) * DIM * 4, ROWS / 2, ROWS / 2, reference)).toBe(ROWS / 2);
  w.free(ptr);
  return index;
}

function saved(w: ShoalWasm, index: number): Uint8Array {
  const size = w.x.shoal_save_size(index);
  const out = w.alloc(size, 'save');
  expect(w.x.shoal_save(index, out)).toBe(size);
  const bytes = w.heap().slice(out, out + size);
  w.free(out);
  return bytes;
}

function search(
  w: ShoalWasm,
  index: number,
  queries: Float32Array,
  ef: number,
  allowed: Uint8Array | undefined,
  reference: number,
): { labels: number[]; distances: number[]; counts: number[] } {
  const nq = queries.length / DIM;
  const q = w.alloc(queries.byteLength, 'q');
  w.f32(q, queries.length).set(queries);
  const bits = allowed ? w.alloc(allowed.length, 'bits') : 0;
  if (allowed) w.heap().set(allowed, bits);
  const labels = w.alloc(nq * K * 4, 'labels');
  const distances = w.alloc(nq * K * 4, 'distances');
  const counts = w.alloc(nq * 4, 'counts');
  expect(
    w.x.shoal_search_with(index, q, nq, K, ef, bits, allowed ? ROWS : 0, labels, distances, counts, reference),
  ).toBe(0);
  const out = {
    labels: [...w.i32(labels, nq * K)],
    distances: [...w.f32(distances, nq * K)],
    counts: [...w.i32(counts, nq)],
  };
  for (const p of [q, bits, labels, distances, counts]) w.free(p);
  return out;
}

describe('the batched graph walk', () => {
  it.each([
    ['l2', SPACE.l2],
    ['ip', SPACE.ip],
    ['cosine', SPACE.cosine],
  ])('builds the bytes hnswlib builds and answers as hnswlib does (%s)', async (_name, space) => {
    // Prepare
    const w = await loadShoalWasm();
    const vectors = data(7, ROWS);
    const queries = data(8, 40);
    const every3rd = new Uint8Array(ROWS / 8);
    for (let r = 0; r < ROWS; r += 3) every3rd[r >> 3] |= 1 << (r & 7);
    // Act
    const ours = build(w, space, vectors, 0);
    const theirs = build(w, space, vectors, 1);
    // Assess: the same graph, byte for byte
    expect(Buffer.from(saved(w, ours)).equals(Buffer.from(saved(w, theirs)))).toBe(true);
    // ...and the same answers: plain, filtered, and after deletes (hnswlib's non-bare path)
    const cases = () =>
      [
        [16, undefined],
        [64, undefined],
        [200, undefined],
        [64, every3rd],
      ] as const;
    for (const [ef, allowed] of cases()) {
      expect(search(w, ours, queries, ef, allowed, 0)).toEqual(search(w, ours, queries, ef, allowed, 1));
    }
    for (let r = 0; r < ROWS; r += 5) expect(w.x.shoal_mark_deleted(ours, r)).toBe(0);
    for (const [ef, allowed] of cases()) {
      const got = search(w, ours, queries, ef, allowed, 0);
      expect(got).toEqual(search(w, ours, queries, ef, allowed, 1));
      expect(got.labels.filter((l, i) => i % K < got.counts[Math.floor(i / K)] && l % 5 === 0)).toEqual([]);
    }
    w.x.shoal_destroy(ours);
    w.x.shoal_destroy(theirs);
  });
});
