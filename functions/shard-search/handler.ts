/**
 * Searcher slot: searches the shards the coordinator assigned to it, from its warm cache. It needs the
 * searcher runtime only (configuration, S3, the shard cache), not the full one: its bundle loads the S3
 * SDK alone at cold start (`npm run bench:cold-start`).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { logger } from '../../shared/log.js';
import { metrics, recordShardCache } from '../../shared/metrics.js';
import { getSearcherRuntime } from '../../shared/searcher-runtime.js';
import { searchShards, type ShardSearchRequest, type ShardSearchResponse } from '../../shared/search/shard-searcher.js';

// Configuration is validated during init: a bad deployment fails its cold start, not a query.
getSearcherRuntime();

async function run(request: ShardSearchRequest): Promise<ShardSearchResponse> {
  const { cache } = getSearcherRuntime();
  const before = cache.stats();
  try {
    return await searchShards(cache, request);
  } finally {
    recordShardCache(before, cache.stats());
  }
}

export const handler = middy(run).use(injectLambdaContext(logger)).use(logMetrics(metrics));
