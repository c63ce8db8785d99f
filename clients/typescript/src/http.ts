/**
 * The transport every resource goes through: bearer auth, JSON in and out, a per-attempt timeout,
 * the retry policy (`retry.ts`) and typed errors (`errors.ts`). Only global `fetch` is used, so the
 * package runs on Node ≥ 20, Deno, Bun and browsers alike.
 */
import { ShoalNetworkError, apiError, type ShoalApiError } from './errors.js';
import { DEFAULT_RETRY_POLICY, backoffMs, parseRetryAfter, retryableStatus, sleep, type RetryPolicy } from './retry.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface TransportOptions {
  url: string;
  apiKey?: string;
  /** Per-attempt timeout in ms (default 30 000). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  fetch?: FetchLike;
  userAgent?: string;
  /** Called before each wait between attempts (logging, tests). */
  onRetry?: (info: { attempt: number; delayMs: number; method: string; path: string; reason: string }) => void;
}

export interface RequestOptions {
  body?: unknown;
  /** An already serialized JSON body (used by batching, which measured it). */
  rawBody?: string;
  query?: Record<string, string | number | undefined>;
  /**
   * Whether repeating the request leaves the same state as sending it once. GET/PUT/DELETE always
   * are; POSTs say so per route. Decides retries after a 503 or a network error.
   */
  idempotent?: boolean;
  signal?: AbortSignal;
}

export class Transport {
  readonly url: string;
  readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly policy: RetryPolicy;
  private readonly fetchImpl: FetchLike;
  private readonly userAgent: string | undefined;
  private readonly onRetry: TransportOptions['onRetry'];

  constructor(options: TransportOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.userAgent = options.userAgent;
    this.onRetry = options.onRetry;
  }

  /** A JSON request to `path` (`/v1/...`); resolves to the parsed body (undefined when empty). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const idempotent = options.idempotent ?? method !== 'POST';
    const url = this.url + path + queryString(options.query);
    const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (this.userAgent) headers['user-agent'] = this.userAgent;

    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.policy.retries;
      let response: Response;
      const timeout = AbortSignal.timeout(this.timeoutMs);
      const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
      try {
        response = await this.fetchImpl(url, { method, headers, body, signal });
      } catch (err) {
        if (options.signal?.aborted) throw err;
        const timedOut = timeout.aborted;
        const networkError = new ShoalNetworkError(
          timedOut
            ? `${method} ${path}: no answer within ${this.timeoutMs} ms`
            : `${method} ${path}: ${describeCause(err)} (${this.url})`,
          { cause: err, timedOut },
        );
        if (last || !idempotent) throw networkError;
        await this.wait(attempt, undefined, method, path, networkError.message, options.signal);
        continue;
      }
      const text = await response.text();
      if (response.ok) return (text === '' ? undefined : JSON.parse(text)) as T;
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      const error: ShoalApiError = apiError(response.status, text, {
        method,
        path,
        requestId: requestIdOf(response.headers),
        retryAfterMs,
      });
      if (last || !retryableStatus(response.status, idempotent)) throw error;
      if (retryAfterMs !== undefined && retryAfterMs > this.policy.maxRetryAfterMs) throw error;
      await this.wait(attempt, retryAfterMs, method, path, error.code, options.signal);
    }
  }

  private async wait(
    attempt: number,
    retryAfterMs: number | undefined,
    method: string,
    path: string,
    reason: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const delayMs = backoffMs(attempt, this.policy, retryAfterMs);
    this.onRetry?.({ attempt: attempt + 1, delayMs, method, path, reason });
    await sleep(delayMs, signal);
  }
}

function queryString(query: RequestOptions['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** API Gateway names its request id `apigw-requestid`; proxies and the local server may use the others. */
function requestIdOf(headers: Headers): string | undefined {
  return headers.get('x-request-id') ?? headers.get('apigw-requestid') ?? headers.get('x-amzn-requestid') ?? undefined;
}

function describeCause(err: unknown): string {
  // undici hides the socket error (ECONNREFUSED, ENOTFOUND) one level down.
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message ? ` ${cause.message}` : ''}`;
  return err instanceof Error ? err.message : String(err);
}

/** Percent-encodes one path segment (collection, alias, id, job id). */
export function seg(value: string | number): string {
  return encodeURIComponent(String(value));
}
