/**
 * The errors the SDK throws. `ShoalApiError` (and a subclass per status family, so callers can
 * `instanceof` instead of comparing numbers) carries the API's stable `code` and the offending `field`;
 * `ShoalNetworkError` means no HTTP answer arrived; `ShoalTimeoutError` is a wait that ran out.
 */

export class ShoalError extends Error {
  override name = 'ShoalError';
}

export interface ApiErrorInit {
  status: number;
  code: string;
  message: string;
  field?: string;
  details?: Record<string, unknown>;
  requestId?: string;
  /** From `Retry-After`, when the answer had one. */
  retryAfterMs?: number;
  method: string;
  path: string;
}

export class ShoalApiError extends ShoalError {
  override name = 'ShoalApiError';
  readonly status: number;
  /** Stable error code (`VALIDATION_ERROR`, `NOT_FOUND`, …; docs/api.md). */
  readonly code: string;
  /** JSON path of the offending field (`vectors[0].values`), when the API names one. */
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly requestId: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly method: string;
  readonly path: string;

  constructor(init: ApiErrorInit) {
    super(`${init.code}: ${init.message}${init.field ? ` (field: ${init.field})` : ''}`);
    this.status = init.status;
    this.code = init.code;
    this.field = init.field;
    this.details = init.details;
    this.requestId = init.requestId;
    this.retryAfterMs = init.retryAfterMs;
    this.method = init.method;
    this.path = init.path;
  }
}

/** 400: a field breaks a rule, the filter does not parse, the body is not JSON. */
export class ShoalValidationError extends ShoalApiError {
  override name = 'ShoalValidationError';
}
/** 401: missing or unknown key. */
export class ShoalAuthError extends ShoalApiError {
  override name = 'ShoalAuthError';
}
/** 403: the key's role or collection scope does not cover the route. */
export class ShoalForbiddenError extends ShoalApiError {
  override name = 'ShoalForbiddenError';
}
export class ShoalNotFoundError extends ShoalApiError {
  override name = 'ShoalNotFoundError';
}
/** 409: a taken name, a stale revision, a quality gate. */
export class ShoalConflictError extends ShoalApiError {
  override name = 'ShoalConflictError';
}
/** 429 after the retries ran out: rate limit or backpressure. */
export class ShoalRateLimitError extends ShoalApiError {
  override name = 'ShoalRateLimitError';
}
/** 5xx after the retries ran out (or on a request that was not safe to retry). */
export class ShoalServerError extends ShoalApiError {
  override name = 'ShoalServerError';
}

/** No HTTP answer: connection refused or reset, DNS, or the per-request timeout. */
export class ShoalNetworkError extends ShoalError {
  override name = 'ShoalNetworkError';
  readonly timedOut: boolean;
  constructor(message: string, options: { cause?: unknown; timedOut?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.timedOut = options.timedOut ?? false;
  }
}

/** A wait (`waitForIndex`, `importFile`) that did not finish in its time. */
export class ShoalTimeoutError extends ShoalError {
  override name = 'ShoalTimeoutError';
}

/** Codes for answers without the API's error body (API Gateway's own `{"message":"Forbidden"}`, proxies). */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'VALIDATION_ERROR',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'RATE_LIMITED',
};

function classFor(status: number): typeof ShoalApiError {
  if (status === 400) return ShoalValidationError;
  if (status === 401) return ShoalAuthError;
  if (status === 403) return ShoalForbiddenError;
  if (status === 404) return ShoalNotFoundError;
  if (status === 409) return ShoalConflictError;
  if (status === 429) return ShoalRateLimitError;
  if (status >= 500) return ShoalServerError;
  return ShoalApiError;
}

/** The typed error for a non-2xx answer whose body text is `text`. */
export function apiError(
  status: number,
  text: string,
  meta: { method: string; path: string; requestId?: string; retryAfterMs?: number },
): ShoalApiError {
  let code = CODE_BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'HTTP_ERROR');
  let message = text.trim().slice(0, 500) || `HTTP ${status}`;
  let field: string | undefined;
  let details: Record<string, unknown> | undefined;
  try {
    const body = JSON.parse(text) as Partial<{ error: unknown; message: unknown }>;
    const err = body.error as Record<string, unknown> | undefined;
    if (err && typeof err === 'object') {
      if (typeof err.code === 'string') code = err.code;
      if (typeof err.message === 'string') message = err.message;
      if (typeof err.field === 'string') field = err.field;
      if (err.details && typeof err.details === 'object') details = err.details as Record<string, unknown>;
    } else if (typeof body.message === 'string') {
      message = body.message;
    }
  } catch {
    // Not JSON (a proxy's HTML page): the status decides the code and the text is the message.
  }
  const Cls = classFor(status);
  return new Cls({ status, code, message, field, details, ...meta });
}
