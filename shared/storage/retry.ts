/**
 * Retry policy and error helpers of the storage adapters, free of SDK imports: modules that need only
 * one client (the searcher's S3, storage/s3-client.ts) use them without loading the other SDKs.
 * shared/storage/clients.ts re-exports all of it.
 */
import { ShoalError } from '../errors.js';

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
export const RETRY = {
  dynamodb: { maxAttempts: 5, retryMode: 'standard' },
  s3: { maxAttempts: 5, retryMode: 'standard' },
  sqs: { maxAttempts: 3, retryMode: 'standard' },
} as const;

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
/** Names of the errors the SDK retries as throttling or transient (besides 5xx, 429 and `$retryable`). */
const RETRYABLE_NAMES = new Set([...THROTTLING_NAMES, 'TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EAI_AGAIN']);

type SdkError = Error & { code?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };

/** Whether the service refused the request before running it (throttling): safe to resend anything. */
export function isThrottling(err: unknown): boolean {
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
export function typedAfterRetries(service: string) {
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
