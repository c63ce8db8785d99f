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
import { FaultSwitch, injectDynamoFaults, injectS3Faults, parseFaults, type Faults } from './faults.js';
import { traceClient } from './trace.js';

export interface AwsClients {
  s3: S3Client;
  ddb: DynamoDBDocumentClient;
  sqs: SQSClient;
  /** The injected faults (local mode only; absent on AWS). */
  faults?: FaultSwitch;
}

/**
 * Client retry policy (docs/architecture.md §7.5). All clients use the SDK's `standard` mode:
 * exponential backoff with full jitter (base 50 ms, 1 s for throttling, capped at 20 s) and a
 * retry quota per client that stops retrying when most attempts fail, so an outage does not
 * multiply the load. `adaptive` mode was weighed and not taken: its client-side rate limiter is
 * shared by every request of the client (all collections, all S3 prefixes), so one hot
 * partition's throttling would slow the whole container, and it delays even first attempts.
 *
 * - DynamoDB, 5 attempts (SDK default 3): on-demand tables throttle in bursts (a partition
 *   above 1,000 WCU/s, a traffic peak over twice the previous one); four throttled retries wait
 *   ~7.5 s on average (15 s at most), inside the API's 30 s. More would outlast it.
 * - S3, 5 attempts: 503 SlowDown is per-prefix throttling that clears as S3 scales the prefix;
 *   shard and report keys are content- or version-addressed, so every S3 write Shoal makes is
 *   safe to repeat (a create-only put that meets its own earlier success sees 412, §3.2).
 * - SQS, the default 3: builder wake-ups are best effort (the scheduled tick catches up).
 *
 * Retries cover what is safe to repeat. DynamoDB writes are made idempotent by Shoal where the
 * SDK's resend could meet its own earlier effect: conditional writes re-read after a failed
 * condition to recognise their own write, and counter `ADD`s are sent `atMostOnce`. A retryable
 * error that outlasts the attempts surfaces as StorageUnavailableError (503), never as a bare SDK
 * error (which the API would turn into a generic 500).
 */
const RETRY = {
  dynamodb: { maxAttempts: 5, retryMode: 'standard' },
  s3: { maxAttempts: 5, retryMode: 'standard' },
  sqs: { maxAttempts: 3, retryMode: 'standard' },
} as const;

/** Names of the errors the SDK retries as throttling or transient (besides 5xx, 429 and `$retryable`). */
const RETRYABLE_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'Throttling',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EAI_AGAIN']);
const THROTTLING_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'Throttling',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
]);

type SdkError = Error & { code?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };

/** Whether the service refused the request before running it (throttling): safe to resend anything. */
function isThrottling(err: unknown): boolean {
  const e = err as SdkError;
  return err instanceof Error && (THROTTLING_NAMES.has(e.name) || e.$metadata?.httpStatusCode === 429);
}

/** Whether the SDK treats `err` as worth retrying (throttling, timeout, network, 5xx). */
export function isRetryableAwsError(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof ShoalError) return false;
  const e = err as SdkError;
  const status = e.$metadata?.httpStatusCode ?? 0;
  return (
    e.$retryable !== undefined ||
    RETRYABLE_NAMES.has(e.name) ||
    (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) ||
    status === 429 ||
    status >= 500
  );
}

/** The outermost middleware of every client: retryable errors that outlasted the retries become 503s. */
function typedAfterRetries(service: string) {
  return (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
    try {
      return await next(args);
    } catch (err) {
      if (!isRetryableAwsError(err)) throw err;
      const e = err as SdkError;
      throw new StorageUnavailableError(`${service} ${context.commandName ?? ''} failed after retries: ${e.name}`, {
        cause: err,
        details: { service, error: e.name },
      });
    }
  };
}

const cache = new WeakMap<ShoalConfig, AwsClients>();

/** The clients for `cfg`, created on first use and reused for the same config object. */
export function makeAwsClients(cfg: ShoalConfig): AwsClients {
  const hit = cache.get(cfg);
  if (hit) return hit;

  const endpoints = cfg.endpoints;
  const s3Config: S3ClientConfig = { region: cfg.region, ...RETRY.s3 };
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
  const ddbConfig: DynamoDBClientConfig = { region: cfg.region, ...RETRY.dynamodb };
  if (endpoints?.dynamodb) ddbConfig.endpoint = endpoints.dynamodb;
  const sqsConfig: SQSClientConfig = { region: cfg.region, ...RETRY.sqs };
  if (endpoints?.sqs) sqsConfig.endpoint = endpoints.sqs;

  const dynamo = new DynamoDBClient(ddbConfig);
  const s3 = new S3Client(s3Config);
  const sqs = new SQSClient(sqsConfig);
  const outermost = { step: 'initialize', priority: 'high', name: 'shoalTypedAfterRetries' } as const;
  dynamo.middlewareStack.add(typedAfterRetries('DynamoDB') as never, outermost);
  s3.middlewareStack.add(typedAfterRetries('S3') as never, outermost);
  sqs.middlewareStack.add(typedAfterRetries('SQS') as never, outermost);
  traceClient(dynamo, 'DynamoDB');
  traceClient(s3, 'S3');
  traceClient(sqs, 'SQS');
  const clients: AwsClients = {
    s3,
    ddb: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
    sqs,
  };
  // Local mode only (configuration refuses faults on AWS): the switch starts with SHOAL_FAULTS and
  // tests change it per test (setFaults).
  if (endpoints) {
    const faults = new FaultSwitch(cfg.faults);
    injectDynamoFaults(dynamo, faults);
    injectS3Faults(s3, faults);
    clients.faults = faults;
  }
  cache.set(cfg, clients);
  return clients;
}

/**
 * Sets the faults of a local client set (`ddb-throttle=0.2,faults-seed=7`, or parsed Faults);
 * `{}` or `''` clears them. Throws on an unknown fault or a client set without the switch (AWS).
 */
export function setFaults(clients: AwsClients, faults: Faults | string): FaultSwitch {
  const parsed = typeof faults === 'string' ? parseFaults(faults) : faults;
  if (typeof parsed === 'string') throw new RangeError(parsed);
  if (!clients.faults) throw new RangeError('faults can only be set on the local stack');
  clients.faults.set(parsed);
  return clients.faults;
}

/**
 * Marks a DynamoDB command as not idempotent (a counter `ADD`): the SDK may resend it only after
 * throttling, which DynamoDB answers before running the request. A timeout, a reset connection or a
 * 5xx leaves it unknown whether the write ran; resending could count it twice, so the command fails
 * at once with StorageUnavailableError instead: at most once, never twice.
 */
export function atMostOnce<C extends { middlewareStack: { add(mw: never, opts: object): void } }>(command: C): C {
  const mw =
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      try {
        return await next(args);
      } catch (err) {
        if (!isRetryableAwsError(err) || isThrottling(err)) throw err;
        // No `cause`: the SDK's classifier follows causes and would retry the wrapped timeout.
        throw new StorageUnavailableError(
          `${context.commandName ?? 'write'} may or may not have been applied (${(err as Error).name}); not resent`,
          { details: { error: (err as Error).name, ambiguous: true } },
        );
      }
    };
  // override: lib-dynamodb commands concatenate their stack twice; a plain add would be a duplicate name.
  command.middlewareStack.add(mw as never, {
    step: 'finalizeRequest',
    priority: 'low',
    name: 'shoalAtMostOnce',
    override: true,
  });
  return command;
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

/** What a re-read after a failed condition found (see conditionalWrite). */
export type Recheck = 'ours' | 'theirs' | 'again';

/**
 * A conditional write that recognises its own effect. The SDK resends a write whose response was
 * lost; the resend then fails its condition against the item the first send wrote, and a naive
 * caller reports a conflict (or a lost race) for a write that happened. So on
 * ConditionalCheckFailedException `recheck` re-reads the item strongly and says whether it holds
 * this write (`ours` → true), another writer's (`theirs` → false), or still admits this write
 * (`again`: nothing changed after all, send again; false after `attempts`). `resent` says whether
 * the SDK sent this write more than once (only then can the item hold an earlier send of it).
 */
export async function conditionalWrite(
  send: () => Promise<unknown>,
  recheck: (resent: boolean) => Promise<Recheck>,
  attempts = 3,
): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    let resent: boolean;
    try {
      await send();
      return true;
    } catch (err) {
      if (awsErrorName(err) !== 'ConditionalCheckFailedException') throw err;
      // The SDK's attempt count: a condition that failed on the first send met no earlier send of ours.
      resent = ((err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) > 1;
    }
    const verdict = await recheck(resent);
    if (verdict === 'ours') return true;
    if (verdict === 'theirs' || attempt >= attempts) return false;
  }
}
