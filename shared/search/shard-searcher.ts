import type { FilterNode } from '../filter/ast.js';
import type { ShardRef } from '../storage/types.js';
import type { Metric } from '../types.js';
import { mergeTopK, type Candidate } from './merge.js';
import type { ShardCache } from './shard-cache.js';

/** What the coordinator sends to one searcher slot (JSON: it crosses a Lambda invoke). */
export interface ShardSearchRequest {
  metric: Metric;
  shards: ShardRef[];
  queries: number[][];
  k: number;
  ef?: number;
  filter?: FilterNode;
  /** Ids whose newer write lives in the unindexed tail: their shard rows must not be returned. */
  exclude?: string[];
}

export interface ShardSearchResponse {
  /** Per query, best first, at most k, merged across this slot's shards. */
  results: Candidate[][];
  /** Shard keys this slot loaded from S3 or disk for this request (cache misses). */
  loaded: number;
}

/** Searches some shards of one index version: the body of the shard-search function. */
export async function searchShards(
  cache: ShardCache,
  // In process, the coordinator passes its Float32Array queries as they are (no copy through number[]).
  req: Omit<ShardSearchRequest, 'queries'> & { queries: ArrayLike<number>[] },
): Promise<ShardSearchResponse> {
  const queries = req.queries.map((q) => (q instanceof Float32Array ? q : Float32Array.from(q)));
  const before = cache.stats();
  const perShard = await Promise.all(
    req.shards.map(async (ref) => {
      const [shard, bitmap] = await Promise.all([cache.shard(ref), cache.bitmap(ref)]);
      let deleted = bitmap;
      if (req.exclude?.length) {
        let copied = false;
        for (const id of req.exclude) {
          const row = shard.rowOf(id);
          if (row === undefined) continue;
          if (!copied) {
            deleted = bitmap ? bitmap.slice() : new Uint8Array(Math.ceil(shard.count / 8));
            copied = true;
          }
          deleted![row >>> 3] |= 1 << (row & 7);
        }
      }
      return shard.searchBatch(queries, { k: req.k, ef: req.ef, filter: req.filter, deleted });
    }),
  );
  const after = cache.stats();
  const results = queries.map((_, q) =>
    mergeTopK(
      perShard.map((lists) => lists[q]),
      req.k,
      req.metric,
    ),
  );
  return { results, loaded: after.misses + after.diskHits - before.misses - before.diskHits };
}
