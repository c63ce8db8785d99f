/**
 * A search node in a worker thread (`npm start` with SHOAL_LOCAL_SEARCH_NODES=1): its own shard cache, S3
 * client and event loop, as a Fargate task has its own process, so the local stack's node neither shares
 * the api's cache nor its thread. Reports `{ url }` once listening, or `{ error }` when it cannot start.
 */
import { parentPort } from 'node:worker_threads';
import { logger } from '../../shared/log.js';
import { getSearcherRuntime } from '../../shared/searcher-runtime.js';
import { threadPool } from './pool.js';
import { startSearchNode } from './server.js';

try {
  const { config, cache } = getSearcherRuntime();
  const node = await startSearchNode({
    // One thread searches in this process; more are a pool, each with its own heap and cache.
    ...(config.searchNode.threads > 1 ? { searcher: threadPool(config.searchNode.threads) } : { cache }),
    slots: config.searchNode.slots,
    port: config.searchNode.port,
    onError: (err, slot) => logger.error('search node: slot search failed', { slot, err }),
  });
  parentPort?.on('message', (msg: { stop?: boolean }) => {
    if (msg.stop) void node.stop().then(() => parentPort?.postMessage({ stopped: true }));
  });
  parentPort?.postMessage({ url: node.url });
} catch (err) {
  parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) });
}
