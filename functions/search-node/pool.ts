/**
 * What searches a search node's parts: the node's own thread (one shard cache), or a pool of threads, each
 * with its own WASM heap and cache (search-worker.ts). A pool splits a part's shards between its threads by a
 * hash of the shard id — a shard always goes to the same thread, whose cache keeps it — searches them in
 * parallel and merges per query with the searcher's own merge, so the answer is the one thread's answer.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { mergeTopK } from '../../shared/search/merge.js';
import type { ShardCache, ShardCacheStats } from '../../shared/search/shard-cache.js';
import { searchShards, type ShardSearchRequest, type ShardSearchResponse } from '../../shared/search/shard-searcher.js';
import type { ShardRef } from '../../shared/storage/types.js';

export interface PartSearcher {
  search(request: ShardSearchRequest): Promise<ShardSearchResponse>;
  /** Cache counters, summed over threads (a pool's as of each thread's last answer). */
  stats(): ShardCacheStats;
  stop(): Promise<void>;
}

export function inProcessSearcher(cache: ShardCache): PartSearcher {
  return { search: (request) => searchShards(cache, request), stats: () => cache.stats(), stop: async () => {} };
}

/**
 * The thread of a shard. Bytes 4–7 of the id's sha1, not 0–3: the coordinator picks a shard's slot from
 * bytes 0–3 modulo the slot count, so within one slot those bytes modulo a thread count that divides it are
 * all the same, and every shard of the slot would land on one thread.
 */
export function threadOf(ref: Pick<ShardRef, 'id'>, threads: number): number {
  return createHash('sha1').update(ref.id).digest().readUInt32BE(4) % threads;
}

interface Reply {
  id?: number;
  ready?: boolean;
  ok?: boolean;
  response?: ShardSearchResponse;
  error?: { name: string; message: string };
  stats: ShardCacheStats;
}

const ZERO: ShardCacheStats = { hits: 0, diskHits: 0, misses: 0, evictions: 0, residentBytes: 0, resident: 0 };

/**
 * Where a thread's code is: beside the bundle (search-worker.mjs), or, running from source (tests, `npm
 * start`), the .ts module through the local stack's worker entry, which registers tsx first.
 */
function workerScript(): { url: URL; workerData?: unknown } {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return { url: new URL('./search-worker.mjs', self) };
  return {
    url: new URL('../../infra/local/worker-entry.mjs', self),
    workerData: { module: new URL('./search-worker.ts', self).href },
  };
}

class Thread {
  private worker?: Promise<Worker>;
  private readonly pending = new Map<
    number,
    { resolve: (r: ShardSearchResponse) => void; reject: (e: Error) => void }
  >();
  private nextId = 0;
  stats: ShardCacheStats = ZERO;

  constructor(private readonly env: NodeJS.ProcessEnv) {}

  async search(request: ShardSearchRequest): Promise<ShardSearchResponse> {
    const worker = await (this.worker ??= this.start());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, request });
    });
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await (await worker.catch(() => undefined))?.terminate();
  }

  /** Started on first use; a thread that dies fails its parts and is started again on the next one. */
  private start(): Promise<Worker> {
    const script = workerScript();
    const worker = new Worker(script.url, { workerData: script.workerData, env: this.env });
    return new Promise<Worker>((resolve, reject) => {
      worker.on('message', (msg: Reply) => {
        this.stats = msg.stats;
        if (msg.ready) return resolve(worker);
        const waiting = this.pending.get(msg.id!);
        if (!waiting) return;
        this.pending.delete(msg.id!);
        if (msg.ok) return waiting.resolve(msg.response!);
        const err = new Error(msg.error!.message);
        err.name = msg.error!.name;
        waiting.reject(err);
      });
      const gone = (err: Error) => {
        this.worker = undefined;
        reject(err);
        for (const { reject: fail } of this.pending.values()) fail(err);
        this.pending.clear();
      };
      worker.on('error', gone);
      worker.on('exit', (code) => gone(new Error(`search thread exited (code ${code})`)));
    });
  }
}

/**
 * `threads` search threads. Each reads the environment as it is now, its disk cache in its own
 * subdirectory of SHOAL_SHARD_CACHE_DIR (two threads must not share one disk tier).
 */
export function threadPool(threads: number, env: NodeJS.ProcessEnv = process.env): PartSearcher {
  const pool = Array.from(
    { length: threads },
    (_, i) =>
      new Thread({
        ...env,
        ...(env.SHOAL_SHARD_CACHE_DIR ? { SHOAL_SHARD_CACHE_DIR: `${env.SHOAL_SHARD_CACHE_DIR}/thread-${i}` } : {}),
      }),
  );
  return {
    async search(request) {
      const parts = new Map<number, ShardRef[]>();
      for (const ref of request.shards) {
        const t = threadOf(ref, threads);
        const list = parts.get(t);
        if (list) list.push(ref);
        else parts.set(t, [ref]);
      }
      const answers = await Promise.all([...parts].map(([t, shards]) => pool[t].search({ ...request, shards })));
      if (answers.length === 1) return answers[0];
      return {
        results: request.queries.map((_, q) =>
          mergeTopK(
            answers.map((a) => a.results[q]),
            request.k,
            request.metric,
          ),
        ),
        loaded: answers.reduce((sum, a) => sum + a.loaded, 0),
      };
    },
    stats() {
      const sum = { ...ZERO };
      for (const t of pool) for (const key of Object.keys(sum) as (keyof ShardCacheStats)[]) sum[key] += t.stats[key];
      return sum;
    },
    stop: async () => void (await Promise.all(pool.map((t) => t.stop()))),
  };
}
