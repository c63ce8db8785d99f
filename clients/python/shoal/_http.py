"""The transport: urllib.request, JSON, bearer auth, timeouts and retries with backoff."""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Mapping, Optional, Union

from . import __version__
from .errors import ShoalConnectionError, error_from_response

# 429 is always safe to resend: the server refused before doing anything. 503 means storage or a searcher gave
# up; docs/api.md says resending an upsert or delete is safe (the newest write wins), and reads are reads.
RETRY_STATUSES = frozenset({429, 503})

Query = Optional[Mapping[str, Any]]
Body = Union[None, bytes, Any]


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None when absent or garbled."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _is_refused(err: BaseException) -> bool:
    """True when the request certainly never reached the server, so even a non-idempotent call may be resent."""
    reason = getattr(err, "reason", err)
    return isinstance(reason, ConnectionRefusedError)


class Transport:
    """Sends requests to one Shoal; shared by every resource of a `Client`.

    Retries 429, 503 and connection failures with exponential backoff and full jitter (a uniform delay in
    [0, min(backoff_max, backoff_base * 2**attempt)]), or exactly the server's `Retry-After` when it sends one
    (capped at `max_retry_after`). Other 4xx answers are the caller's mistake and raise at once.
    """

    def __init__(
        self,
        url: str,
        api_key: Optional[str],
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.25,
        backoff_max: float = 20.0,
        max_retry_after: float = 120.0,
        user_agent: Optional[str] = None,
        seed: Optional[int] = None,
    ) -> None:
        if not url:
            raise ValueError("a Shoal URL is required (Client(url, api_key) or SHOAL_URL)")
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.base_url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.user_agent = user_agent or f"shoal-python/{__version__}"
        self.rng = random.Random(seed)
        # Tests replace these two to observe the waits without sleeping.
        self.sleep: Callable[[float], None] = time.sleep
        self.on_retry: Optional[Callable[[int, float, BaseException], None]] = None
        self.opener = urllib.request.build_opener()

    def backoff(self, attempt: int, retry_after: Optional[float]) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self.rng.uniform(0.0, min(self.backoff_max, self.backoff_base * (2**attempt)))

    def url_for(self, path: str, query: Query = None) -> str:
        url = self.base_url + path
        if query:
            pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        return url

    def request(
        self,
        method: str,
        path: str,
        body: Body = None,
        query: Query = None,
        idempotent: bool = True,
        timeout: Optional[float] = None,
    ) -> Any:
        """One API call; returns the parsed JSON body (None when empty) or raises an `ApiError` subclass.

        `body` is a JSON-able value, or bytes already serialized as JSON. `idempotent=False` marks calls that
        must not run twice (creating a key, registering a model version): those are resent only after a 429
        or a refused connection, never after a timeout or a reset that may have followed the server's work.
        """
        data: Optional[bytes]
        if body is None:
            data = None
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        else:
            data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = self.url_for(path, query)
        status, raw, resp_headers = self._send(method, url, data, headers, idempotent, timeout)
        parsed = _parse_json(raw)
        if 200 <= status < 300:
            return parsed
        raise error_from_response(
            status, parsed, parse_retry_after(resp_headers.get("Retry-After")), method, path
        )

    def put_bytes(
        self, url: str, read: Callable[[], Any], size: int, headers: Mapping[str, str], timeout: Optional[float] = None
    ) -> Dict[str, str]:
        """PUTs a body to a presigned URL (no bearer key: the signature is the credential).

        `read()` returns a fresh body (bytes or a binary file object at its start) on every attempt, so a
        retried upload sends the whole file again. Returns the response headers (S3's ETag among them).
        """
        all_headers = {"User-Agent": self.user_agent, "Content-Length": str(size)}
        # urllib would label the bytes as a form otherwise; the ticket's own headers (signed ones) win.
        if not any(k.lower() == "content-type" for k in headers):
            all_headers["Content-Type"] = "application/octet-stream"
        all_headers.update(headers)
        status, raw, resp_headers = self._send("PUT", url, read, all_headers, True, timeout)
        if 200 <= status < 300:
            return dict(resp_headers.items())
        raise error_from_response(status, _parse_json(raw), None, "PUT", urllib.parse.urlsplit(url).path)

    def _send(
        self,
        method: str,
        url: str,
        data: Any,
        headers: Dict[str, str],
        idempotent: bool,
        timeout: Optional[float],
    ):
        attempt = 0
        while True:
            body = data() if callable(data) else data
            req = urllib.request.Request(url, data=body, method=method, headers=headers)
            try:
                try:
                    with self.opener.open(req, timeout=timeout or self.timeout) as resp:
                        return resp.status, resp.read(), resp.headers
                finally:
                    if hasattr(body, "close"):
                        body.close()
            except urllib.error.HTTPError as err:
                with err:
                    status, raw, resp_headers = err.code, err.read(), err.headers
                retriable = status == 429 or (status in RETRY_STATUSES and idempotent)
                if not retriable or attempt >= self.max_retries:
                    return status, raw, resp_headers
                delay = self.backoff(attempt, parse_retry_after(resp_headers.get("Retry-After")))
                cause: BaseException = err
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, OSError) as err:
                if (not idempotent and not _is_refused(err)) or attempt >= self.max_retries:
                    raise ShoalConnectionError(f"{method} {url}: {getattr(err, 'reason', err)}") from err
                delay = self.backoff(attempt, None)
                cause = err
            if self.on_retry is not None:
                self.on_retry(attempt + 1, delay, cause)
            self.sleep(delay)
            attempt += 1


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)) and not isinstance(v, str):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
