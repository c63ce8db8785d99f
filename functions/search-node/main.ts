/**
 * Entry of a resident search node process (the Fargate task's command; docs/architecture.md §7.7):
 * validated configuration and the searcher runtime (S3 and the shard cache, as the shard-search Lambda
 * has), then the HTTP server on SHOAL_SEARCH_NODE_PORT. SIGTERM (ECS stopping the task) drains: new parts
 * get 503 and go to their Lambdas, in-flight parts are answered, then the process exits.
 */
import { logger } from '../../shared/log.js';
import { startConfiguredSearchNode } from './from-config.js';

const { node, config } = await startConfiguredSearchNode('0.0.0.0');
logger.info('search node listening', {
  url: node.url,
  slots: config.searchNode.slots ? [...config.searchNode.slots] : 'all',
  threads: config.searchNode.threads,
  cacheBytesPerThread: config.shardCacheBytes,
});

let stopping = false;
const drain = (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info('search node draining', { signal });
  void node.stop().then(() => process.exit(0));
};
process.on('SIGTERM', () => drain('SIGTERM'));
process.on('SIGINT', () => drain('SIGINT'));
