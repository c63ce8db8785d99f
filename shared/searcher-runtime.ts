/**
 * The part of the runtime a searcher slot needs: the validated configuration, the S3 client, the object
 * store and the shard cache. A module of its own so the shard-search function bundles and loads only this
 * at cold start (the S3 SDK, none of DynamoDB, SQS or Lambda; `npm run bench:cold-start`). shared/runtime.ts
 * builds the full runtime on these same objects, so in one process (the local stack, tests) the api and
 * the searchers share one shard cache and one S3 client with its fault switch.
 */
import { config, type ShoalConfig } from './config.js';
import { ShardCache } from './search/shard-cache.js';
import { makeS3Client } from './storage/s3-client.js';
import { S3ObjectStore } from './storage/s3-objects.js';

export interface SearcherRuntime {
  config: ShoalConfig;
  objects: S3ObjectStore;
  cache: ShardCache;
}

let current: SearcherRuntime | undefined;

/** Built once per process (per configuration: resetSearcherRuntime drops it); throws on a bad configuration. */
export function getSearcherRuntime(): SearcherRuntime {
  if (!current) {
    const cfg = config();
    const objects = new S3ObjectStore({ s3: makeS3Client(cfg), bucket: cfg.bucket });
    const cache = new ShardCache({
      objects,
      memoryBytes: cfg.shardCacheBytes,
      diskDir: cfg.shardCacheDir,
      diskBytes: cfg.shardDiskBytes,
    });
    current = { config: cfg, objects, cache };
  }
  return current;
}

/** Drops the cached searcher runtime and its shards (shared/runtime.ts resetRuntime). */
export function resetSearcherRuntime(): void {
  current?.cache.clear();
  current = undefined;
}
