/**
 * A search node as this process's configuration describes it (main.ts on Fargate, thread.ts in `npm start`):
 * the searcher runtime's cache on this thread, or a pool of SHOAL_SEARCH_NODE_THREADS threads, serving
 * SHOAL_SEARCH_NODE_SLOTS on SHOAL_SEARCH_NODE_PORT.
 */
import { logger } from '../../shared/log.js';
import { getSearcherRuntime } from '../../shared/searcher-runtime.js';
import type { ShoalConfig } from '../../shared/config.js';
import { threadPool } from './pool.js';
import { startSearchNode, type SearchNode } from './server.js';

export async function startConfiguredSearchNode(host?: string): Promise<{ node: SearchNode; config: ShoalConfig }> {
  const { config, cache } = getSearcherRuntime();
  const node = await startSearchNode({
    // One thread searches in this process; more are a pool, each with its own heap and cache.
    ...(config.searchNode.threads > 1 ? { searcher: threadPool(config.searchNode.threads) } : { cache }),
    slots: config.searchNode.slots,
    port: config.searchNode.port,
    ...(host ? { host } : {}),
    onError: (err, slot) => logger.error('search node: slot search failed', { slot, err }),
  });
  return { node, config };
}
