/**
 * The storage layer of Shoal on the embedded emulators, for integration tests: real
 * DynamoDB/S3 protocols, real SDK clients, tables and bucket created as the local runtime
 * does. One per test file (beforeAll), stopped in afterAll.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../shared/config.js';
import type { ShoalCore } from '../../shared/core.js';
import type { Indexer } from '../../shared/indexing/indexer.js';
import { settled } from '../../shared/ingest/ingest.js';
import type { LifecycleCore } from '../../shared/lifecycle/service.js';
import type { QueueProducer } from '../../shared/queue/messages.js';
import { createServices } from '../../shared/services.js';
import type { SearchInput } from '../../shared/service.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import { TailCache } from '../../shared/search/tail-cache.js';
import { makeAwsClients, type AwsClients } from '../../shared/storage/clients.js';
import { DynamoCatalog } from '../../shared/storage/dynamo-catalog.js';
import { DynamoLifecycleStore } from '../../shared/storage/dynamo-lifecycle.js';
import { DynamoRecordStore } from '../../shared/storage/dynamo-records.js';
import { S3ObjectStore } from '../../shared/storage/s3-objects.js';
import { ensureBucket, ensureTables } from '../../shared/storage/tables.js';
import { startEmulators, type Emulators } from '../../infra/local/emulators.js';

/** A one-query SearchInput: k 3, strong reads, no metadata or values unless `extra` says so. */
export function searchInput(v: Float32Array, extra: Partial<SearchInput> = {}): SearchInput {
  return { queries: [v], k: 3, consistency: 'strong', includeMetadata: false, includeValues: false, ...extra };
}

export interface EmulatedStack {
  emulators: Emulators;
  /** A fresh directory for a shard cache's disk tier. */
  cacheDir: string;
  catalog: DynamoCatalog;
  records: DynamoRecordStore;
  objects: S3ObjectStore;
  lifecycle: DynamoLifecycleStore;
  /** The SDK clients behind the stores (their fault switch: `setFaults`). */
  aws: AwsClients;
  stop(): Promise<void>;
}

export async function startEmulatedStack(opts: {
  bucket: string;
  now: () => number;
  /** SHOAL_FAULTS for the stack's clients (e.g. `gsi-lag=500`). */
  faults?: string;
}): Promise<EmulatedStack> {
  const emulators = await startEmulators({});
  const cacheDir = await mkdtemp(path.join(tmpdir(), `${opts.bucket}-cache-`));
  process.env.AWS_ACCESS_KEY_ID = emulators.endpoints.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = emulators.endpoints.credentials.secretAccessKey;
  const cfg = parseConfig({
    AWS_REGION: emulators.endpoints.region,
    SHOAL_BUCKET: opts.bucket,
    SHOAL_CATALOG_TABLE: 'catalog',
    SHOAL_RECORDS_TABLE: 'records',
    SHOAL_BUILD_QUEUE_URL: `${emulators.endpoints.sqs}/000000000000/build`,
    SHOAL_S3_ENDPOINT: emulators.endpoints.s3,
    SHOAL_DYNAMODB_ENDPOINT: emulators.endpoints.dynamodb,
    SHOAL_SQS_ENDPOINT: emulators.endpoints.sqs,
    SHOAL_FAULTS: opts.faults,
  });
  const aws = makeAwsClients(cfg);
  await ensureTables(aws.ddb, { catalog: cfg.catalogTable, records: cfg.recordsTable });
  await ensureBucket(aws.s3, cfg.bucket);
  const objects = new S3ObjectStore({ s3: aws.s3, bucket: cfg.bucket });
  return {
    emulators,
    cacheDir,
    catalog: new DynamoCatalog({ ddb: aws.ddb, table: cfg.catalogTable, now: opts.now, objects }),
    records: new DynamoRecordStore({ ddb: aws.ddb, table: cfg.recordsTable, logTable: cfg.catalogTable }),
    objects,
    lifecycle: new DynamoLifecycleStore({ ddb: aws.ddb, table: cfg.catalogTable }),
    aws,
    stop: async () => {
      await settled();
      await emulators.stop();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

/** A queue producer that sends nothing: the tests build in process, through the indexer. */
export const noQueues: QueueProducer = { send: async () => {} };

/**
 * Shoal's core, lifecycle and indexer services on an emulated stack, wired by `createServices` as the
 * runtime wires them (builds in process; wake-ups go nowhere).
 */
export function lifecycleCores(
  stack: EmulatedStack,
  now: () => number,
  /** `tails: false`: no tail cache, every strong read reads the whole tail (readTail). */
  options: { tails?: boolean } = {},
): { core: ShoalCore; life: LifecycleCore; indexer: Indexer } {
  const { catalog, records, objects, lifecycle: lifecycleStore } = stack;
  const cache = new ShardCache({
    objects,
    memoryBytes: 256 * 2 ** 20,
    diskDir: stack.cacheDir,
    diskBytes: 256 * 2 ** 20,
  });
  const { core, lifecycle, indexer } = createServices({
    catalog,
    records,
    objects,
    cache,
    lifecycleStore,
    queues: noQueues,
    slots: 1,
    ...(options.tails === false ? {} : { tails: new TailCache(catalog, records) }),
    codeVersion: 'test',
    now,
  });
  return { core, life: lifecycle, indexer };
}
