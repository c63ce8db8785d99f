/**
 * The AWS SDK v3 clients of the data path, built once per configuration, plus the small
 * retry/concurrency helpers the storage adapters share (defined in storage/retry.ts, re-exported here).
 *
 * On AWS, `cfg.endpoints` is undefined and the SDK resolves credentials and endpoints the usual
 * way (Lambda environment). Locally the endpoints point at the embedded emulators (docs/architecture.md §3.6);
 * nothing else differs. This module must not import from `infra/`.
 */
import type { S3Client } from '@aws-sdk/client-s3';
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
import { injectDynamoFaults, parseFaults, type FaultSwitch, type Faults } from './faults.js';
import {
  MAX_BATCH_ATTEMPTS,
  RETRY,
  StorageUnavailableError,
  awsErrorName,
  backoffDelayMs,
  isRetryableAwsError,
  isThrottling,
  sleep,
  typedAfterRetries,
} from './retry.js';
import { OUTERMOST, faultSwitchOf, makeS3Client } from './s3-client.js';
import { traceClient } from './trace.js';

export {
  MAX_BATCH_ATTEMPTS,
  StorageUnavailableError,
  awsErrorName,
  awsHttpStatus,
  backoffDelayMs,
  chunk,
  forEachLimit,
  isRetryableAwsError,
  sleep,
} from './retry.js';

export interface AwsClients {
  s3: S3Client;
  ddb: DynamoDBDocumentClient;
  sqs: SQSClient;
  /** The injected faults (local mode only; absent on AWS). */
  faults?: FaultSwitch;
}

const cache = new WeakMap<ShoalConfig, AwsClients>();

/** The clients for `cfg`, created on first use and reused for the same config object. */
export function makeAwsClients(cfg: ShoalConfig): AwsClients {
  const hit = cache.get(cfg);
  if (hit) return hit;

  const endpoints = cfg.endpoints;
  const ddbConfig: DynamoDBClientConfig = { region: cfg.region, ...RETRY.dynamodb };
  if (endpoints?.dynamodb) ddbConfig.endpoint = endpoints.dynamodb;
  const sqsConfig: SQSClientConfig = { region: cfg.region, ...RETRY.sqs };
  if (endpoints?.sqs) sqsConfig.endpoint = endpoints.sqs;

  const dynamo = new DynamoDBClient(ddbConfig);
  const s3 = makeS3Client(cfg);
  const sqs = new SQSClient(sqsConfig);
  dynamo.middlewareStack.add(typedAfterRetries('DynamoDB') as never, OUTERMOST);
  sqs.middlewareStack.add(typedAfterRetries('SQS') as never, OUTERMOST);
  traceClient(dynamo, 'DynamoDB');
  traceClient(sqs, 'SQS');
  const clients: AwsClients = {
    s3,
    ddb: DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } }),
    sqs,
  };
  // The same switch drives the S3 client's faults (storage/s3-client.ts).
  const faults = faultSwitchOf(cfg);
  if (faults) {
    injectDynamoFaults(dynamo, faults);
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
