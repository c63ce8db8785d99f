/**
 * The composition root: Shoal's services wired from storage adapters, caches, a queue producer and a
 * few settings. The runtime (Lambda and the local server) and the integration tests both build their
 * services here, so they cannot drift apart.
 */
import { TailCap } from './ingest/backpressure.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { ShoalCore, type CoreDeps } from './core.js';
import type { ImportJobStore, ImportLimits } from './import/job.js';
import { ImportService } from './import/service.js';
import { Indexer } from './indexing/indexer.js';
import { Embedder } from './models/embedder.js';
import type { InputRow } from './service.js';
import { collectionKey } from './storage/keys.js';
import { MigrationService, type MigrationStore } from './models/migration.js';
import type { ModelRuntime } from './models/runtime.js';
import type { BuilderDeps } from './indexing/builder.js';
import type { LifecycleStore } from './lifecycle/types.js';
import { LifecycleCore } from './lifecycle/service.js';
import type { QueueProducer } from './queue/messages.js';
import type { ShardCache } from './search/shard-cache.js';
import type { Catalog, CollectionMeta, DirectUploads, ObjectStore, RecordStore } from './storage/types.js';
import type { DriftMonitor } from './models/drift-monitor.js';

export interface ServicesDeps {
  catalog: Catalog;
  records: RecordStore;
  /** Also signs direct-to-S3 uploads of model artifacts. */
  objects: ObjectStore & DirectUploads;
  cache: ShardCache;
  /** Aliases, evaluation, models, experiments (docs/architecture.md §8). */
  lifecycleStore: LifecycleStore;
  /**
   * Builder wake-ups, model-artifact verification requests, import continuations. A queue the
   * producer does not know fails its sends (a wake-up failure is logged, never fails a write).
   */
  queues: QueueProducer;
  codeVersion: string;
  slots: number;
  scatter?: CoreDeps['scatter'];
  scatterMinBytes?: number;
  tails?: CoreDeps['tails'];
  policy?: CoreDeps['policy'];
  now?: () => number;
  /** Artifacts above this many bytes are verified by the builder function, not inside the request. */
  artifactSyncVerifyBytes?: number;
  /** The largest synchronous tune in live rows at the default sample (default TUNE_SYNC_MAX_ROWS). */
  tuneSyncMaxRows?: number;
  /** Cap on each collection's unindexed tail in bytes of vector data (0 or undefined = none). */
  tailCapBytes?: number;
  /** Time a strong read may spend reading the tail. */
  strongReadBudgetMs?: number;
  /** Embedding drift monitoring (docs/architecture.md §8.8): one per process; absent = not monitored. */
  drift?: DriftMonitor;
  /** Build plans over builder workers (the build-task queue is configured); absent = builds in process. */
  plans?: BuilderDeps['plans'];
  /** Runs ONNX models (embedding functions, commit-time validation); absent = collections take vectors only. */
  models?: ModelRuntime;
  /** Where migration jobs live (with `models`, enables migrations). */
  migrationStore?: MigrationStore;
  /** Bulk imports; without them, `imports` is undefined. */
  imports?: {
    s3: S3Client;
    bucket: string;
    jobs: ImportJobStore;
    /** False: explicit imports are refused (no import queue configured). */
    enqueue: boolean;
    /** Limits of jobs whose request sets none, and the sweeper's quiet period (docs/imports.md). */
    limits?: ImportLimits;
    sweepStaleMs?: number;
  };
}

export interface Services {
  core: ShoalCore;
  /** Re-embedding migrations; present when the deployment runs models. */
  migrations?: MigrationService;
  indexer: Indexer;
  lifecycle: LifecycleCore;
  imports?: ImportService;
}

export function createServices(deps: ServicesDeps): Services {
  const { catalog, records, objects, cache, queues } = deps;
  const wake = (collection: string, options?: { force?: boolean }): Promise<void> =>
    queues.send('build', options?.force ? { collection, force: true } : { collection });
  const builderDeps = {
    catalog,
    records,
    objects,
    cache,
    codeVersion: deps.codeVersion,
    lifecycle: deps.lifecycleStore,
    ...(deps.policy ? { policy: deps.policy } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.plans ? { plans: deps.plans } : {}),
  };
  const embedder = deps.models
    ? new Embedder({ store: deps.lifecycleStore, objects, runtime: deps.models })
    : undefined;
  const tailCap = deps.tailCapBytes ? new TailCap(catalog, deps.tailCapBytes, deps.now) : undefined;
  const core = new ShoalCore({
    ...builderDeps,
    slots: deps.slots,
    wake,
    ...(embedder ? { embedder } : {}),
    ...(tailCap ? { tailCap } : {}),
    ...(deps.strongReadBudgetMs !== undefined ? { strongReadBudgetMs: deps.strongReadBudgetMs } : {}),
    ...(deps.scatter ? { scatter: deps.scatter } : {}),
    ...(deps.scatterMinBytes !== undefined ? { scatterMinBytes: deps.scatterMinBytes } : {}),
    ...(deps.tails ? { tails: deps.tails } : {}),
    ...(deps.drift ? { drift: deps.drift } : {}),
  });
  const indexer = new Indexer(builderDeps);
  const lifecycle = new LifecycleCore({
    catalog,
    objects,
    cache,
    store: deps.lifecycleStore,
    getCollection: (n) => core.getCollection(n),
    ...(embedder ? { embedder } : {}),
    ...(deps.artifactSyncVerifyBytes !== undefined
      ? {
          verifyArtifacts: {
            maxSyncBytes: deps.artifactSyncVerifyBytes,
            enqueue: (model: string, version: number) =>
              queues.send('build', { kind: 'verify-artifact', model, version }),
          },
        }
      : {}),
    // Tune jobs run on the index-builder function (15 min), like artifact verification.
    enqueueTune: (collection: string, version: number, jobId: string) =>
      queues.send('build', { kind: 'tune', collection, version, jobId }),
    ...(deps.tuneSyncMaxRows !== undefined ? { tuneSyncMaxRows: deps.tuneSyncMaxRows } : {}),
    startCandidate: async (c, index, candidate, caller) =>
      (await core.buildIndex(c, { index, ...(candidate !== undefined ? { candidate } : {}) }, caller)).candidate!,
    ...(deps.now ? { now: deps.now } : {}),
  });
  const imp = deps.imports;
  const imports = imp
    ? new ImportService({
        s3: imp.s3,
        bucket: imp.bucket,
        jobs: imp.jobs,
        catalog,
        objects,
        // The same write path as the API: seq leases, records, builder wake-up.
        ingest: { catalog, records, wake: (collection) => wake(collection) },
        enqueue: imp.enqueue ? (message, options) => queues.send('import', message, options) : undefined,
        ...(tailCap ? { tailCap } : {}),
        ...(embedder
          ? {
              // JSONL rows of raw inputs: embedded per batch and kept like an API upsert's (docs/models.md).
              embedInputs: (meta: CollectionMeta, rows: InputRow[]) =>
                embedder.toVectors({ binding: meta.embedding!, ck: collectionKey(meta) }, rows),
            }
          : {}),
        ...(imp.limits ? { limits: imp.limits } : {}),
        ...(imp.sweepStaleMs !== undefined ? { sweepStaleMs: imp.sweepStaleMs } : {}),
      })
    : undefined;
  const migrations =
    embedder && deps.migrationStore
      ? new MigrationService({
          store: deps.migrationStore,
          catalog,
          records,
          objects,
          embedder,
          service: core,
          // Steps run on the import function (long timeout), continued like an import's.
          ...(imp?.enqueue
            ? {
                enqueue: (collection: string, migrationId: string, delaySeconds?: number) =>
                  queues.send(
                    'import',
                    { type: 'migrate', collection, migrationId },
                    delaySeconds ? { delaySeconds } : undefined,
                  ),
              }
            : {}),
          ...(deps.now ? { now: deps.now } : {}),
        })
      : undefined;
  return { core, indexer, lifecycle, ...(imports ? { imports } : {}), ...(migrations ? { migrations } : {}) };
}
