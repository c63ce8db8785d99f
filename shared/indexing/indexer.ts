/**
 * The index builder's service: builds, the batching policy's wake-up path, the scheduled sweep,
 * builder lag and garbage collection. Only the index-builder function (and tests) use it; the
 * API's services never build in-process.
 */
import type { Alias, LifecycleStore } from '../lifecycle/types.js';
import { ConflictError } from '../errors.js';
import { logger } from '../log.js';
import { sleep } from '../storage/retry.js';
import { currentManifest } from '../collections.js';
import type { BuildOutput } from '../service.js';
import { buildIndex, collectGarbage, planTaskDeps, type BuildResult, type BuilderDeps } from './builder.js';
import { runBuildTask, type BuildTaskMessage } from './plan.js';

export interface IndexerDeps extends Omit<BuilderDeps, 'pinnedVersions'> {
  /** Aliases pin versions the collector keeps. Without it, nothing is pinned. */
  lifecycle?: LifecycleStore;
}

function output(b: BuildResult): BuildOutput {
  return {
    version: b.version,
    built: b.built,
    ...(b.kind ? { kind: b.kind } : {}),
    ...(b.reason ? { reason: b.reason } : {}),
    ...(b.line ? { line: b.line } : {}),
    shards: b.shards,
    watermark: b.watermark,
  };
}

/**
 * How long a forced build waits for a busy line (default 20 s, well inside the builder function's
 * 5 minutes) before it throws for redelivery; first wait 50 ms, doubling to at most 1 s. The usual holder
 * is a policy build that decides in milliseconds not to build; a long in-process build outlasts the wait,
 * and then the message comes back after the queue's visibility timeout — by which time the scheduled
 * tick has built the rows by policy (≥ 1,000 rows or 60 s of age). Longer = fewer redeliveries, a builder
 * invocation held longer.
 */
export const FORCED_BUSY_WAIT_MS = 20_000;
const FORCED_BUSY_FIRST_MS = 50;
const FORCED_BUSY_MAX_STEP_MS = 1_000;

export class Indexer {
  constructor(private readonly deps: IndexerDeps) {}

  /**
   * Builds in this process, now (a forced build: the builder function's path, and tests). A forced build
   * that finds the serving line busy — another invocation holds its build lease, often a policy build of
   * an upsert's wake-up that then decides there is too little to build — waits for the lease and asks
   * again: answering 'busy' would drop the request (the queue consumer deletes its message), leaving the
   * rows unindexed until the scheduled tick. Past FORCED_BUSY_WAIT_MS it throws ConflictError, and the
   * queue redelivers the message.
   */
  async buildNow(collection: string): Promise<BuildOutput> {
    const started = Date.now();
    for (let wait = FORCED_BUSY_FIRST_MS; ; wait = Math.min(wait * 2, FORCED_BUSY_MAX_STEP_MS)) {
      const r = await buildIndex(this.deps, collection, { force: true });
      if (r.reason !== 'busy')
        return { ...output(r), ...(r.candidates ? { candidates: r.candidates.map(output) } : {}) };
      if (Date.now() - started + wait > FORCED_BUSY_WAIT_MS) {
        throw new ConflictError(`${collection}: another builder holds the index line; the forced build is retried`, {
          details: { collection, waitedMs: Date.now() - started },
        });
      }
      await sleep(wait);
    }
  }

  /** One task of a build plan (the builder worker's body; docs/architecture.md §6.5). */
  async runTask(msg: BuildTaskMessage): Promise<'done' | 'stale'> {
    return runBuildTask(planTaskDeps(this.deps), msg);
  }

  /** The builder's entry for wake-ups and ticks: builds only when the policy says so. */
  async maybeBuild(collection: string): Promise<BuildResult> {
    return buildIndex(this.deps, collection);
  }

  /** Writes not yet covered by the index: stable seq − watermark (the builder-lag metric). */
  async builderLag(collection: string): Promise<number> {
    const meta = await this.deps.catalog.getCollection(collection);
    const manifest = await currentManifest(this.deps.catalog, meta);
    return Math.max(0, (await this.deps.catalog.stableSeq(collection)) - (manifest?.watermark ?? 0));
  }

  async collectGarbage(collection: string): Promise<string[]> {
    return collectGarbage({ ...this.deps, pinnedVersions: (c) => this.pinnedVersions(c) }, collection);
  }

  /** Index versions of a collection pinned by aliases (kept by the garbage collector). */
  async pinnedVersions(collection: string): Promise<number[]> {
    if (!this.deps.lifecycle) return [];
    const aliases = (await this.deps.lifecycle.listPointers('alias')) as Alias[];
    return aliases.flatMap((a) =>
      a.target.collection === collection && a.target.version !== undefined ? [a.target.version] : [],
    );
  }

  /**
   * The scheduled tick: every collection gets a policy build and a garbage collection; one
   * collection's failure is logged and does not stop the others. Returns the largest builder lag.
   */
  async sweep(): Promise<number> {
    let lag = 0;
    for (const c of await this.deps.catalog.listCollections()) {
      try {
        await this.maybeBuild(c.name);
        await this.collectGarbage(c.name);
        lag = Math.max(lag, await this.builderLag(c.name));
      } catch (err) {
        logger.error('scheduled build failed', { collection: c.name, error: err as Error });
      }
    }
    return lag;
  }
}
