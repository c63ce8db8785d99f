/**
 * One error tree for all of Shoal. Code in `shared/` throws these; the HTTP layer maps
 * them to responses in one place (by `statusCode` and `code`), so no handler builds its
 * own 4xx and no test matches on message text.
 */
export interface ShoalErrorOptions {
  /** The request or config field at fault, e.g. `vectors[3].values` or `filter`. */
  field?: string;
  cause?: unknown;
  /** Extra machine-readable detail returned to the caller (e.g. the recall numbers of a failed gate). */
  details?: Record<string, unknown>;
}

export abstract class ShoalError extends Error {
  /** Stable, documented error code (`VALIDATION_ERROR`, `NOT_FOUND`, ...). */
  abstract readonly code: string;
  /** HTTP status the API maps this error to. */
  abstract readonly statusCode: number;
  readonly field?: string;
  readonly details?: Record<string, unknown>;

  constructor(message: string, options: ShoalErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.field = options.field;
    this.details = options.details;
  }

  /** Whether the message may be shown to the caller (never for 5xx). */
  get expose(): boolean {
    return this.statusCode < 500;
  }
}

/** The caller sent something that breaks a rule; `field` names it. */
export class ValidationError extends ShoalError {
  readonly code = 'VALIDATION_ERROR';
  readonly statusCode = 400;
}

/** A filter expression or filter object could not be parsed. */
export class FilterSyntaxError extends ShoalError {
  readonly code = 'FILTER_SYNTAX_ERROR';
  readonly statusCode = 400;
  /** 0-based character offset in the expression (or -1 for JSON filters). */
  readonly position: number;
  /** What the parser expected at `position`. */
  readonly expected: string;

  constructor(message: string, position: number, expected: string, options: ShoalErrorOptions = {}) {
    super(message, { field: 'filter', ...options, details: { position, expected, ...options.details } });
    this.position = position;
    this.expected = expected;
  }
}

export class NotFoundError extends ShoalError {
  readonly code = 'NOT_FOUND';
  readonly statusCode = 404;
}

export class ConflictError extends ShoalError {
  readonly code = 'CONFLICT';
  readonly statusCode = 409;
}

export class UnauthorizedError extends ShoalError {
  readonly code = 'UNAUTHORIZED';
  readonly statusCode = 401;
}

/** A valid key that lacks the role or the collection scope a route needs. */
export class ForbiddenError extends ShoalError {
  readonly code = 'FORBIDDEN';
  readonly statusCode = 403;
}

/** A 429: come back after `retryAfterSeconds`, which becomes the `Retry-After` header. */
export abstract class RetryLaterError extends ShoalError {
  readonly statusCode = 429;
  readonly retryAfterSeconds: number;

  constructor(message: string, retryAfterSeconds: number, options: ShoalErrorOptions = {}) {
    super(message, options);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The key's request rate is over its limit. */
export class RateLimitedError extends RetryLaterError {
  readonly code = 'RATE_LIMITED';
}

/**
 * Writes are refused while a collection's unindexed tail is over its cap (docs/architecture.md §7.2): the
 * builder is behind, and accepting more would make strong searches scan an ever larger tail. The builder
 * has been woken.
 */
export class BackpressureError extends RetryLaterError {
  readonly code = 'BACKPRESSURE';
}

/** A strong read could not read the unindexed tail within its time budget (retryable once the builder caught up). */
export class TailBudgetError extends ShoalError {
  readonly code = 'TAIL_BUDGET_EXCEEDED';
  readonly statusCode = 503;

  /** The message tells the caller what to do (retry, or read eventually) and holds no internals. */
  override get expose(): boolean {
    return true;
  }
}

/** A limit was exceeded (payload size, shard size, WASM memory). */
export class LimitExceededError extends ShoalError {
  readonly code = 'LIMIT_EXCEEDED';
  readonly statusCode = 413;
}

/**
 * The request is valid but too large to answer within the API's time (30 s): the message names the
 * request field that runs it asynchronously instead (e.g. a synchronous tune of a large version: send
 * `async: true`). Nothing was stored.
 */
export class AsyncRequiredError extends ShoalError {
  readonly code = 'ASYNC_REQUIRED';
  readonly statusCode = 422;
}

/**
 * A stored object (shard file, bitmap, manifest) failed validation: bad magic, unknown
 * format version, truncated, checksum mismatch. Never served as garbage results.
 */
export class CorruptDataError extends ShoalError {
  readonly code = 'CORRUPT_DATA';
  readonly statusCode = 500;
}

/** A stored object uses a format version this code does not understand. */
export class UnsupportedFormatError extends ShoalError {
  readonly code = 'UNSUPPORTED_FORMAT';
  readonly statusCode = 500;
}

/** An index engine failed internally (WASM abort, out of memory). */
export class EngineError extends ShoalError {
  readonly code = 'ENGINE_ERROR';
  readonly statusCode = 500;
}

/** Configuration is missing or invalid: fail fast at start with this. */
export class ConfigError extends ShoalError {
  readonly code = 'CONFIG_ERROR';
  readonly statusCode = 500;
}

/**
 * An alias move was refused by the target collection's quality gate (`minRecall`): the
 * version is below it or was never evaluated. `details` carries the numbers; `force` overrides.
 */
export class QualityGateError extends ShoalError {
  readonly code = 'QUALITY_GATE';
  readonly statusCode = 409;
}

/** Vectors were produced by a model version other than the one the collection is bound to. */
export class ModelMismatchError extends ShoalError {
  readonly code = 'MODEL_MISMATCH';
  readonly statusCode = 400;
}
