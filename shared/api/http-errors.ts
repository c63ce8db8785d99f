/**
 * THE one place errors become HTTP responses. Handlers throw (`ShoalError` subclasses from
 * `shared/errors.ts`, or the HTTP-only ones below); `toErrorResponse` maps them to
 * `{"error": {"code", "message", "field"?, "details"?}}` with the error's status.
 *
 * 5xx errors never leak: a `ShoalError` with status ≥ 500 keeps its code but gets a
 * generic message (no field, no details); anything that is not a `ShoalError` becomes
 * 500 `INTERNAL`. Both are logged (shared/log.ts) at error level.
 */
import { RetryLaterError, ShoalError, type ShoalErrorOptions } from '../errors.js';
import { logger } from '../log.js';

/** The path exists but not with this method; `allow` lists the methods it has. */
export class MethodNotAllowedError extends ShoalError {
  readonly code = 'METHOD_NOT_ALLOWED';
  readonly statusCode = 405;
  readonly allow: readonly string[];

  constructor(method: string, allow: readonly string[], options: ShoalErrorOptions = {}) {
    super(`method ${method} is not allowed here; allowed: ${allow.join(', ')}`, {
      ...options,
      details: { allow: [...allow], ...options.details },
    });
    this.allow = allow;
  }
}

/** The request body is not valid JSON. */
export class InvalidJsonError extends ShoalError {
  readonly code = 'INVALID_JSON';
  readonly statusCode = 400;
}

/** The request body exceeds the 6 MB Lambda payload limit. */
export class PayloadTooLargeError extends ShoalError {
  readonly code = 'PAYLOAD_TOO_LARGE';
  readonly statusCode = 413;
}

export interface ErrorBody {
  error: { code: string; message: string; field?: string; details?: Record<string, unknown> };
}

export interface ErrorResponse {
  statusCode: number;
  /** Extra headers the error implies (`Allow` for 405, `WWW-Authenticate` for 401, `Retry-After` for 429). */
  headers: Record<string, string>;
  body: ErrorBody;
}

export const GENERIC_INTERNAL_MESSAGE = 'internal error';

export function toErrorResponse(err: unknown): ErrorResponse {
  if (err instanceof ShoalError) {
    const headers: Record<string, string> = {};
    if (err instanceof MethodNotAllowedError) headers.Allow = err.allow.join(', ');
    if (err.statusCode === 401) headers['WWW-Authenticate'] = 'Bearer';
    if (err instanceof RetryLaterError) headers['Retry-After'] = String(err.retryAfterSeconds);
    if (!err.expose) {
      logger.error(err.code, err);
      return {
        statusCode: err.statusCode,
        headers,
        body: { error: { code: err.code, message: GENERIC_INTERNAL_MESSAGE } },
      };
    }
    const error: ErrorBody['error'] = { code: err.code, message: err.message };
    if (err.field !== undefined) error.field = err.field;
    if (err.details !== undefined) error.details = err.details;
    return { statusCode: err.statusCode, headers, body: { error } };
  }
  if (err instanceof Error) logger.error('unhandled error', err);
  else logger.error('unhandled error', { thrown: JSON.stringify(err) ?? String(err) });
  return { statusCode: 500, headers: {}, body: { error: { code: 'INTERNAL', message: GENERIC_INTERNAL_MESSAGE } } };
}
