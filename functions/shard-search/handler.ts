/** Searcher slot: searches the shards the coordinator assigned to it, from its warm cache. */
import middy from '@middy/core';
import { flushMetrics, recordShardCache } from '../../shared/metrics.js';
import { getRuntime } from '../../shared/runtime.js';
import { searchShards, type ShardSearchRequest, type ShardSearchResponse } from '../../shared/search/shard-searcher.js';

// Configuration is validated during init: a bad deployment fails its cold start, not a query.
await getRuntime();

async function run(request: ShardSearchRequest): Promise<ShardSearchResponse> {
  const { cache } = await getRuntime();
  const before = cache.stats();
  try {
    return await searchShards(cache, request);
  } finally {
    recordShardCache(before, cache.stats());
    flushMetrics();
  }
}

export const handler = middy(run);
