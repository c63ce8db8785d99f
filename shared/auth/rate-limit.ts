/**
 * Per-key token buckets, in memory, one set per process (per warm Lambda container on AWS).
 *
 * Trade-off: the buckets are not shared between containers, so on AWS a key's effective limit is its
 * limit × the api function's warm containers (bounded by its reserved concurrency and the stage
 * throttle). A shared bucket in DynamoDB would be exact but cost a conditional write (and its latency)
 * on every request, more than most requests themselves; the per-container bucket costs nothing and
 * still stops one runaway client from starving a container. docs/security.md has the details.
 */
import { RateLimitedError } from '../errors.js';
import type { RateLimit } from './key-item.js';

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Buckets kept at most (default 10 000): beyond it the least recently used is dropped, which only
 * ever refills a bucket early. Keys are few; this bounds memory if callers rotate through many.
 */
const MAX_BUCKETS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes one token from `id`'s bucket or throws RateLimitedError with the seconds until one is back. */
  take(id: string, limit: RateLimit): void {
    const now = this.now();
    let b = this.buckets.get(id);
    if (b) {
      this.buckets.delete(id);
      b.tokens = Math.min(limit.burst, b.tokens + ((now - b.at) / 1000) * limit.perSecond);
      b.at = now;
    } else {
      b = { tokens: limit.burst, at: now };
    }
    // Re-inserted on every use: Map order is then least recently used first.
    this.buckets.set(id, b);
    if (this.buckets.size > MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as string);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - b.tokens) / limit.perSecond));
    throw new RateLimitedError(
      `rate limit of ${limit.perSecond} requests/s (burst ${limit.burst}) exceeded for this key; ` +
        `retry after ${retryAfterSeconds} s`,
      retryAfterSeconds,
      { details: { perSecond: limit.perSecond, burst: limit.burst, retryAfterSeconds } },
    );
  }
}
