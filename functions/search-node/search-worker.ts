/**
 * One search thread of a search node (pool.ts): its own searcher runtime — WASM heap, shard cache of
 * SHOAL_SHARD_CACHE_MB, S3 client — answering the parts the node hands it. Replies carry the cache
 * counters, so the node's `/health` sums them without asking.
 */
import { parentPort } from 'node:worker_threads';
import { getSearcherRuntime } from '../../shared/searcher-runtime.js';
import { searchShards, type ShardSearchRequest } from '../../shared/search/shard-searcher.js';

const port = parentPort!;
const { cache } = getSearcherRuntime();
port.on('message', (msg: { id: number; request: ShardSearchRequest }) => {
  searchShards(cache, msg.request).then(
    (response) => port.postMessage({ id: msg.id, ok: true, response, stats: cache.stats() }),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({ id: msg.id, ok: false, error: { name: e.name, message: e.message }, stats: cache.stats() });
    },
  );
});
port.postMessage({ ready: true, stats: cache.stats() });
