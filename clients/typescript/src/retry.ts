/**
 * When to retry a request and how long to wait. Exponential backoff with full jitter (a random wait
 * in [0, min(cap, base · 2^attempt)]) spreads out clients that failed together; a `Retry-After` from
 * the server is a floor under that wait, since the server knows when capacity returns.
 */

export interface RetryPolicy {
  /** Retries after the first attempt (default 3). */
  retries: number;
  /** Backoff base in ms (default 250). */
  baseMs: number;
  /** Backoff cap in ms (default 20 000). */
  maxMs: number;
  /** A `Retry-After` longer than this is not waited for: the error is thrown (default 60 000). */
  maxRetryAfterMs: number;
  /** Uniform in [0, 1); injectable so tests are deterministic. */
  random: () => number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retries: 3,
  baseMs: 250,
  maxMs: 20_000,
  maxRetryAfterMs: 60_000,
  random: Math.random,
};

/** `Retry-After` as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The wait before retry number `attempt` (0 = the first retry). */
export function backoffMs(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  const jittered = Math.floor(policy.random() * ceiling);
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, jittered);
}

/**
 * Whether an answer with `status` may be retried. 429 (rate limit, backpressure) is decided before the
 * server touches anything, so any request may be resent. 503 may come after a write was applied
 * (docs/api.md: "may or may not have been applied"), so only requests that are safe to repeat are
 * resent; other statuses are the caller's mistake or a server fault that a retry will not fix.
 */
export function retryableStatus(status: number, idempotent: boolean): boolean {
  if (status === 429) return true;
  return status === 503 && idempotent;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
