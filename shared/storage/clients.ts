/**
 * The AWS SDK v3 clients of the data path, built once per configuration, plus the small
 * retry/concurrency helpers the storage adapters share.
 *
 * On AWS, `cfg.endpoints` is undefined and the SDK resolves credentials and endpoints the usual
 * way (Lambda environment). Locally the endpoints point at the embedded emulators (docs/architecture.md §3.6);
 * nothing else differs. This module must not import from `infra/`.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  QueryCommand,
  type BatchWriteCommandInput,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import type { ShoalConfig } from '../config.js';
import { ShoalError } from '../errors.js';
import { injectDynamoFaults } from './faults.js';

export interface AwsClients {
  s3: S3Client;
  ddb: DynamoDBDocumentClient;
  sqs: SQSClient;
}

const cache = new WeakMap<ShoalConfig, AwsClients>();

/** The clients for `cfg`, created on first use and reused for the same config object. */
export function makeAwsClients(cfg: ShoalConfig): AwsClients {
  const hit = cache.get(cfg);
  if (hit) return hit;

  const endpoints = cfg.endpoints;
  const s3Config: S3ClientConfig = { region: cfg.region };
  if (endpoints?.s3) {
    Object.assign(s3Config, {
      endpoint: endpoints.s3,
      // s3rver serves path-style URLs only.
      forcePathStyle: true,
      // s3rver predates flexible checksums: a streamed body would be stored with its aws-chunked
      // framing (docs/local-emulators.md).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    } satisfies S3ClientConfig);
  }
  const ddbConfig: DynamoDBClientConfig = { region: cfg.region };
  if (endpoints?.dynamodb) ddbConfig.endpoint = endpoints.dynamodb;
  const sqsConfig: SQSClientConfig = { region: cfg.region };
  if (endpoints?.sqs) sqsConfig.endpoint = endpoints.sqs;

  const dynamo = new DynamoDBClient(ddbConfig);
  // Empty on AWS: configuration refuses faults outside local mode.
  injectDynamoFaults(dynamo, cfg.faults);
  const clients: AwsClients = {
    s3: new S3Client(s3Config),
    ddb: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
    sqs: new SQSClient(sqsConfig),
  };
  cache.set(cfg, clients);
  return clients;
}

/**
 * A storage call kept failing after the adapter's own retries (throttling, unprocessed batch
 * items, S3 per-key delete errors). Retryable by the caller; never a silent partial write.
 */
export class StorageUnavailableError extends ShoalError {
  readonly code = 'STORAGE_UNAVAILABLE';
  readonly statusCode = 503;
}

/** Attempts made for unprocessed batch items before giving up with StorageUnavailableError. */
export const MAX_BATCH_ATTEMPTS = 10;

/** Exponential backoff with full jitter: attempt 0 → up to 25 ms, capped at 2 s. */
export function backoffDelayMs(attempt: number, baseMs = 25, capMs = 2_000): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Splits `items` into arrays of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The error name of an AWS SDK exception (`ConditionalCheckFailedException`, `NoSuchKey`, ...). */
export function awsErrorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

/** The HTTP status of an AWS SDK exception, when it carries one. */
export function awsHttpStatus(err: unknown): number | undefined {
  const meta = (err as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata;
  return typeof meta?.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

type WriteRequest = NonNullable<BatchWriteCommandInput['RequestItems']>[string][number];

/**
 * Writes up to 25 put/delete requests to one table with BatchWriteItem, re-sending
 * UnprocessedItems with backoff until all are written; StorageUnavailableError after
 * MAX_BATCH_ATTEMPTS. Never drops a request silently.
 */
export async function batchWriteFully(
  ddb: DynamoDBDocumentClient,
  table: string,
  requests: WriteRequest[],
): Promise<void> {
  let pending = requests;
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt >= MAX_BATCH_ATTEMPTS) {
      throw new StorageUnavailableError(
        `BatchWriteItem on ${table}: ${pending.length} item(s) still unprocessed after ${MAX_BATCH_ATTEMPTS} attempts`,
        { details: { table, unprocessed: pending.length } },
      );
    }
    if (attempt > 0) await sleep(backoffDelayMs(attempt));
    const res = await ddb.send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
    pending = res.UnprocessedItems?.[table] ?? [];
  }
}

/**
 * Reads up to 100 keys of one table with strongly consistent BatchGetItem, re-sending
 * UnprocessedKeys with backoff until every key is answered; StorageUnavailableError after
 * MAX_BATCH_ATTEMPTS. Returns the items found, in no particular order (missing keys are absent).
 */
export async function batchGetFully(
  ddb: DynamoDBDocumentClient,
  table: string,
  keys: Array<Record<string, unknown>>,
): Promise<Array<Record<string, unknown>>> {
  const found: Array<Record<string, unknown>> = [];
  let pending = keys;
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt >= MAX_BATCH_ATTEMPTS) {
      throw new StorageUnavailableError(
        `BatchGetItem on ${table}: ${pending.length} key(s) still unprocessed after ${MAX_BATCH_ATTEMPTS} attempts`,
        { details: { table, unprocessed: pending.length } },
      );
    }
    if (attempt > 0) await sleep(backoffDelayMs(attempt));
    const res = await ddb.send(
      new BatchGetCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: true } } }),
    );
    found.push(...(res.Responses?.[table] ?? []));
    pending = res.UnprocessedKeys?.[table]?.Keys ?? [];
  }
  return found;
}

/**
 * The pages of a DynamoDB Query, following LastEvaluatedKey until the end (or until the
 * caller stops iterating). Every adapter pages through this one loop.
 */
export async function* queryPages(
  ddb: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey'>,
): AsyncGenerator<Array<Record<string, unknown>>> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const res = await ddb.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    yield res.Items ?? [];
    startKey = res.LastEvaluatedKey;
  } while (startKey);
}
