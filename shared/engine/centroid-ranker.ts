/**
 * Ranks a partitioned version's centroids for a query (docs/architecture.md §5.6) with the engine's SIMD
 * kernels (`shoal_scan`) instead of JavaScript: every search of a partitioned version scores all P
 * centroids before it searches a shard, 1.5 M multiply-adds at P = 2,000 × 768-d, which JavaScript's
 * scalar loops take ~1.8 ms for on this machine and the WASM kernels 0.53 ms (`npm run bench:routing`). Same
 * order as `nearestPartitions` up to float rounding: the two sum in different orders, so rows at distances
 * equal to the last bits may swap.
 *
 * A table's rows are copied into the WASM heap once, on its first ranking, and freed when the table's
 * JavaScript object is collected (the shard cache keeps the newest 8 tables).
 */
import type { Metric } from '../types.js';
import { CorruptDataError } from '../errors.js';
import type { Centroids } from './ivf.js';
import { SPACE, loadShoalWasm, type ShoalWasm } from './shoal-wasm.js';

const resident = new WeakMap<Centroids, number>();
let freeing: FinalizationRegistry<number> | undefined;

function rowsIn(wasm: ShoalWasm, c: Centroids): number {
  let ptr = resident.get(c);
  if (ptr === undefined) {
    ptr = wasm.alloc(c.data.byteLength, 'centroid table');
    wasm.f32(ptr, c.data.length).set(c.data);
    resident.set(c, ptr);
    freeing ??= new FinalizationRegistry((p) => wasm.free(p));
    freeing.register(c, ptr);
  }
  return ptr;
}

/** The engine module for ranking; loaded on first use (a partitioned search loads it for its shards anyway). */
export function centroidRanker(): Promise<CentroidRanker> {
  return loadShoalWasm().then((wasm) => new CentroidRanker(wasm));
}

export class CentroidRanker {
  constructor(private readonly wasm: ShoalWasm) {}

  /** The `n` nearest partitions, nearest first (ties by partition number), as nearestPartitions gives them. */
  nearest(c: Centroids, metric: Metric, query: Float32Array, n: number): number[] {
    if (query.length !== c.dim) {
      // The coordinator checks queries against the collection first; a mismatch here is a corrupt table.
      throw new CorruptDataError(`centroid table of ${c.dim} dimensions ranked for a ${query.length}-d query`);
    }
    if (c.count === 0) return [];
    const { wasm } = this;
    const rows = rowsIn(wasm, c);
    const q = wasm.alloc(c.dim * 4 + c.count * 4, 'centroid scan');
    try {
      wasm.f32(q, c.dim).set(query);
      const out = q + c.dim * 4;
      // Cosine and ip both rank by dot product (1 − dot ascending): the query's norm changes no order.
      const space = metric === 'l2' ? SPACE.l2 : SPACE.ip;
      if (wasm.x.shoal_scan(space, c.dim, rows, c.count, q, out) !== 0) throw wasm.failure('ranking centroids');
      const d = wasm.f32(out, c.count).slice();
      const order = new Uint32Array(c.count);
      for (let p = 0; p < c.count; p++) order[p] = p;
      order.sort((a, b) => d[a] - d[b] || a - b);
      return Array.from(order.subarray(0, Math.min(n, c.count)));
    } finally {
      wasm.free(q);
    }
  }
}
