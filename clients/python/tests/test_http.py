"""The transport against a scripted local server: retries, Retry-After, backoff, typed errors."""

from __future__ import annotations

import email.utils
import os
import sys
import time
import unittest

# The package under test is this checkout's, whatever else is installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import shoal  # noqa: E402
from shoal._http import parse_retry_after  # noqa: E402

from fake_server import FakeShoal, free_port  # noqa: E402

OK = (200, {"collections": []}, {})


def scripted(*replies):
    """A handler answering with `replies` in order, then the last one forever."""
    queue = list(replies)

    def handler(_seen):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


def client_for(fake: FakeShoal, **kw) -> shoal.Client:
    client = shoal.Client(fake.url, "test-key", seed=7, **kw)
    client.sleeps = []  # type: ignore[attr-defined]
    client._http.sleep = client.sleeps.append  # type: ignore[attr-defined]
    return client


class RetryTest(unittest.TestCase):
    def test_503_with_retry_after_then_200_is_retried_after_the_given_seconds(self):
        unavailable = (503, {"error": {"code": "STORAGE_UNAVAILABLE", "message": "busy"}}, {"Retry-After": "2"})
        with FakeShoal(scripted(unavailable, unavailable, OK)) as fake:
            client = client_for(fake)
            self.assertEqual(client.collections.list(), [])
            self.assertEqual(len(fake.requests), 3)
            self.assertEqual(client.sleeps, [2.0, 2.0])
            self.assertTrue(all(r.headers["authorization"] == "Bearer test-key" for r in fake.requests))

    def test_429_with_an_http_date_retry_after_waits_until_that_date(self):
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        limited = (429, {"error": {"code": "RATE_LIMITED", "message": "slow down"}}, {"Retry-After": when})
        with FakeShoal(scripted(limited, OK)) as fake:
            client = client_for(fake)
            client.collections.list()
            self.assertEqual(len(fake.requests), 2)
            # HTTP dates have 1 s resolution and a little time passes before the header is read.
            self.assertGreater(client.sleeps[0], 27)
            self.assertLessEqual(client.sleeps[0], 30)

    def test_without_retry_after_backoff_is_full_jitter_under_an_exponential_cap(self):
        unavailable = (503, {"error": {"code": "SEARCH_UNAVAILABLE", "message": "x"}}, {})
        with FakeShoal(scripted(*([unavailable] * 5), OK)) as fake:
            client = client_for(fake, backoff_base=0.5, backoff_max=4.0)
            client.collections.list()
            self.assertEqual(len(client.sleeps), 5)
            for attempt, slept in enumerate(client.sleeps):
                self.assertGreaterEqual(slept, 0.0)
                self.assertLessEqual(slept, min(4.0, 0.5 * 2**attempt))
            # Jitter: the waits are not the deterministic caps.
            self.assertNotEqual(client.sleeps, [0.5, 1.0, 2.0, 4.0, 4.0])

    def test_gives_up_after_max_retries_with_the_typed_error(self):
        unavailable = (503, {"error": {"code": "TAIL_BUDGET_EXCEEDED", "message": "slow tail"}}, {"Retry-After": "1"})
        with FakeShoal(scripted(unavailable)) as fake:
            client = client_for(fake, max_retries=2)
            with self.assertRaises(shoal.UnavailableError) as ctx:
                client.collections.list()
            self.assertEqual(len(fake.requests), 3)
            self.assertEqual(ctx.exception.code, "TAIL_BUDGET_EXCEEDED")
            self.assertEqual(ctx.exception.retry_after, 1.0)

    def test_a_4xx_other_than_429_is_raised_at_once(self):
        for status, cls, code in [
            (400, shoal.ValidationError, "VALIDATION_ERROR"),
            (401, shoal.AuthError, "UNAUTHORIZED"),
            (403, shoal.ForbiddenError, "FORBIDDEN"),
            (404, shoal.NotFoundError, "NOT_FOUND"),
            (409, shoal.ConflictError, "CONFLICT"),
            (413, shoal.PayloadTooLargeError, "PAYLOAD_TOO_LARGE"),
        ]:
            body = {"error": {"code": code, "message": "no", "field": "vectors[0].values", "details": {"n": 1}}}
            with FakeShoal(scripted((status, body, {}))) as fake:
                client = client_for(fake)
                with self.assertRaises(cls) as ctx:
                    client.collection("docs").upsert([{"id": "a", "values": [1.0]}])
                self.assertEqual(len(fake.requests), 1, status)
                err = ctx.exception
                self.assertEqual(
                    (err.status, err.code, err.field, err.details), (status, code, "vectors[0].values", {"n": 1})
                )
                self.assertEqual(client.sleeps, [])

    def test_quality_gate_is_a_conflict_and_gateway_bodies_still_get_a_code(self):
        gate = (409, {"error": {"code": "QUALITY_GATE", "message": "recall 0.8 < 0.9"}}, {})
        with FakeShoal(scripted(gate)) as fake:
            with self.assertRaises(shoal.QualityGateError) as ctx:
                client_for(fake).aliases.set("prod", "docs")
            self.assertIsInstance(ctx.exception, shoal.ConflictError)
        with FakeShoal(scripted((403, {"message": "Forbidden"}, {}))) as fake:
            with self.assertRaises(shoal.ForbiddenError) as ctx:
                client_for(fake).collections.list()
            self.assertEqual((ctx.exception.code, ctx.exception.message), ("FORBIDDEN", "Forbidden"))
        with FakeShoal(scripted((502, b"<html>bad gateway</html>", {}))) as fake:
            with self.assertRaises(shoal.ServerError) as ctx:
                client_for(fake).collections.list()
            self.assertEqual(ctx.exception.status, 502)

    def test_non_idempotent_calls_are_not_resent_after_a_503_but_are_after_a_429(self):
        unavailable = (503, {"error": {"code": "STORAGE_UNAVAILABLE", "message": "maybe applied"}}, {})
        with FakeShoal(scripted(unavailable, (201, {"id": "k", "name": "n", "role": "read"}, {}))) as fake:
            with self.assertRaises(shoal.UnavailableError):
                client_for(fake).keys.create("n")
            self.assertEqual(len(fake.requests), 1)
        limited = (429, {"error": {"code": "RATE_LIMITED", "message": "x"}}, {"Retry-After": "0"})
        created = (201, {"id": "k", "name": "n", "role": "read", "key": "shoal_x"}, {})
        with FakeShoal(scripted(limited, created)) as fake:
            self.assertEqual(client_for(fake).keys.create("n").key, "shoal_x")
            self.assertEqual(len(fake.requests), 2)

    def test_connection_refused_is_retried_then_raised_as_a_connection_error(self):
        client = shoal.Client(f"http://127.0.0.1:{free_port()}", "k", max_retries=3, seed=1)
        sleeps = []
        client._http.sleep = sleeps.append
        with self.assertRaises(shoal.ShoalConnectionError):
            client.collections.list()
        self.assertEqual(len(sleeps), 3)

    def test_a_read_timeout_is_retried_for_reads(self):
        calls = []

        def slow_then_ok(seen):
            calls.append(seen)
            if len(calls) == 1:
                time.sleep(0.6)
            return OK

        with FakeShoal(slow_then_ok) as fake:
            client = client_for(fake, timeout=0.2)
            self.assertEqual(client.collections.list(), [])
            self.assertEqual(len(calls), 2)

    def test_parse_retry_after(self):
        self.assertEqual(parse_retry_after("3"), 3.0)
        self.assertEqual(parse_retry_after(" 1.5 "), 1.5)
        self.assertIsNone(parse_retry_after(None))
        self.assertIsNone(parse_retry_after("soon"))
        now = 1_700_000_000.0
        self.assertEqual(parse_retry_after(email.utils.formatdate(now + 10, usegmt=True), now=now), 10.0)
        self.assertEqual(parse_retry_after(email.utils.formatdate(now - 10, usegmt=True), now=now), 0.0)

    def test_url_and_key_come_from_the_environment(self):
        saved = {k: os.environ.get(k) for k in ("SHOAL_URL", "SHOAL_API_KEY")}
        os.environ["SHOAL_URL"] = "http://127.0.0.1:9/"
        os.environ["SHOAL_API_KEY"] = "env-key"
        try:
            client = shoal.Client()
            self.assertEqual((client.url, client._http.api_key), ("http://127.0.0.1:9", "env-key"))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        with self.assertRaises(ValueError):
            shoal.Client("localhost:8787", "k")


if __name__ == "__main__":
    unittest.main()
