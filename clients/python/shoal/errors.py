"""Errors raised by the client: one class per family of the API's error codes (docs/api.md)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class ShoalError(Exception):
    """Base of every error this package raises."""


class ShoalConnectionError(ShoalError):
    """The server could not be reached (refused, reset, DNS, timeout) after the retries."""


class ShoalTimeoutError(ShoalError, TimeoutError):
    """A client-side wait (an index build, an import) did not finish within its timeout."""


class ApiError(ShoalError):
    """The server answered with an error: `{"error": {"code", "message", "field"?, "details"?}}`.

    `status` is the HTTP status, `code` the stable error code (e.g. `VALIDATION_ERROR`), `field` the JSON
    path of the offending input when the server names one, `details` any structured extras, `retry_after`
    the seconds from a `Retry-After` header.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: Optional[str] = None,
        details: Optional[Dict[str, Any]] = None,
        retry_after: Optional[float] = None,
        method: Optional[str] = None,
        path: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        self.retry_after = retry_after
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.status} {self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, field={self.field!r})"


class ValidationError(ApiError):
    """400: a field breaks a rule (`VALIDATION_ERROR`, `FILTER_SYNTAX_ERROR`, `INVALID_JSON`, `MODEL_MISMATCH`)."""


class AuthError(ApiError):
    """401: missing, unknown, expired or revoked API key."""


class ForbiddenError(ApiError):
    """403: the key's role or collection scope does not cover the route."""


class NotFoundError(ApiError):
    """404: unknown collection, alias, job, key, model or route."""


class MethodNotAllowedError(ApiError):
    """405: a known route called with another method (usually a server older than this client)."""


class ConflictError(ApiError):
    """409: a taken name, a stale `expectedRevision`, or a state that forbids the call."""


class QualityGateError(ConflictError):
    """409 `QUALITY_GATE`: a move or promotion below the collection's `minRecall`."""


class PayloadTooLargeError(ApiError):
    """413: body over 6 MB or a count limit (`PAYLOAD_TOO_LARGE`, `LIMIT_EXCEEDED`)."""


class RateLimitedError(ApiError):
    """429: over the key's rate limit (`RATE_LIMITED`) or the builder is behind (`BACKPRESSURE`)."""


class UnavailableError(ApiError):
    """503: storage or a searcher kept failing, or a strong read ran out of its budget; retry later."""


class AsyncRequiredError(ApiError):
    """422 `ASYNC_REQUIRED`: valid, but too large to answer within the API's time; `field` names the request
    option that runs it as a job instead (a tune: `start_tune`)."""


class JobFailedError(ShoalError):
    """A job this client waited for ended `failed`: `code` and `message` are the job's error, `job` the job."""

    def __init__(self, code: str, message: str, job: Dict[str, Any]) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.job = job


class ServerError(ApiError):
    """Any other 5xx: the server's fault; details are in its logs."""


_BY_STATUS: Dict[int, Type[ApiError]] = {
    400: ValidationError,
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitedError,
    503: UnavailableError,
}

# Bodies without Shoal's error envelope (API Gateway's own `{"message": "Forbidden"}`, a proxy's HTML page)
# still get a code, so callers can branch on `code` alone.
_DEFAULT_CODES: Dict[int, str] = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


def error_class(status: int, code: str) -> Type[ApiError]:
    if code == "QUALITY_GATE":
        return QualityGateError
    if code == "ASYNC_REQUIRED":
        return AsyncRequiredError
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ServerError
    return ApiError


def error_from_response(
    status: int,
    body: Any,
    retry_after: Optional[float] = None,
    method: Optional[str] = None,
    path: Optional[str] = None,
) -> ApiError:
    """Builds the typed error for a non-2xx answer; `body` is the parsed JSON, raw text, or None."""
    code = _DEFAULT_CODES.get(status, "INTERNAL" if status >= 500 else "HTTP_ERROR")
    message = f"HTTP {status}"
    field = None
    details = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
            field = err.get("field")
            details = err.get("details")
        elif isinstance(body.get("message"), str):
            message = body["message"]
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:500]
    cls = error_class(status, code)
    return cls(status, code, message, field, details, retry_after, method, path)
