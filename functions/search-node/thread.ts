/**
 * A search node in a worker thread (`npm start` with SHOAL_LOCAL_SEARCH_NODES=1): its own shard cache, S3
 * client and event loop, as a Fargate task has its own process, so the local stack's node neither shares
 * the api's cache nor its thread. Reports `{ url }` once listening, or `{ error }` when it cannot start.
 */
import { parentPort } from 'node:worker_threads';
import { startConfiguredSearchNode } from './from-config.js';

try {
  const { node } = await startConfiguredSearchNode();
  parentPort?.on('message', (msg: { stop?: boolean }) => {
    if (msg.stop) void node.stop().then(() => parentPort?.postMessage({ stopped: true }));
  });
  parentPort?.postMessage({ url: node.url });
} catch (err) {
  parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) });
}
