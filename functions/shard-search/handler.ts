/** Searcher slot: searches the shards the coordinator assigned to it, from its warm cache. */
import middy from '@middy/core';
import { getRuntime } from '../../shared/runtime.js';
import { searchShards, type ShardSearchRequest, type ShardSearchResponse } from '../../shared/search/shard-searcher.js';

async function run(request: ShardSearchRequest): Promise<ShardSearchResponse> {
  const { cache } = await getRuntime();
  return searchShards(cache, request);
}

export const handler = middy(run);
