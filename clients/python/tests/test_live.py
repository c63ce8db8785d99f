"""Against a running Shoal (`npm start`; in CI test/e2e/python-client.test.ts starts one): the README
quickstart end to end, typed errors, aliases, experiments and feedback, keys, models, imports.

Needs SHOAL_URL and an admin SHOAL_API_KEY; skipped without them. Collection names carry a random suffix so
the suite can run again against the same server.
"""

from __future__ import annotations

import os
import random
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import shoal  # noqa: E402
from shoal._convert import HAS_NUMPY  # noqa: E402

URL = os.environ.get("SHOAL_URL")
KEY = os.environ.get("SHOAL_API_KEY")
LIVE = bool(URL and KEY)
NO_LIVE = "SHOAL_URL and SHOAL_API_KEY are not set: no live Shoal to test against (npm start, then export both)"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def route_exists(call) -> bool:
    """False when the server answers that the route is not there (404 "no route", or 405 for a path that
    exists with other methods): the routes landing on main after this client are probed this way."""
    try:
        call()
    except shoal.MethodNotAllowedError:
        return False
    except shoal.NotFoundError as err:
        return not err.message.startswith("no route")
    except shoal.ApiError:
        return True
    return True


@unittest.skipUnless(LIVE, NO_LIVE)
class LiveTest(unittest.TestCase):
    client: shoal.Client

    @classmethod
    def setUpClass(cls):
        cls.client = shoal.Client(URL, KEY, timeout=60)

    def make(self, dimension=4, metric="cosine", prefix="py"):
        name = unique(prefix)
        handle = self.client.collections.create(name, dimension, metric)
        self.addCleanup(self._drop, name)
        return handle

    def _drop(self, name):
        try:
            self.client.collections.delete(name)
        except shoal.ApiError:
            pass

    def test_quickstart(self):
        # README Quickstart, step for step.
        client = self.client
        docs = self.make(prefix="docs")
        self.assertEqual((docs.info.dimension, docs.info.metric), (4, "cosine"))

        res = docs.upsert([
            {"id": "a", "values": [0.1, 0.2, 0.3, 0.4], "metadata": {"lang": "en", "year": 2021}},
            {"id": "b", "values": [0.4, 0.3, 0.2, 0.1], "metadata": {"lang": "de", "year": 2023}},
            {"id": "c", "values": [0.1, 0.2, 0.3, 0.5], "metadata": {"lang": "en", "year": 2024}},
        ])
        self.assertEqual(res.upserted, 3)

        # Strong by default: the upsert is visible before any index exists.
        hits = docs.search([0.1, 0.2, 0.3, 0.4], k=2, filter='lang == "en" and year >= 2021', include=["metadata"])
        self.assertEqual(hits.ids, ["a", "c"])
        self.assertEqual(hits.hits[0].metadata, {"lang": "en", "year": 2021})
        self.assertGreater(hits.hits[0].score, hits.hits[1].score)
        self.assertEqual(hits.served_by["collection"], docs.name)

        self.assertEqual(docs.delete(["b"]), 1)
        self.assertEqual(docs.delete(filter={"year": {"$lt": 2022}}), 1)
        self.assertEqual([v.id for v in docs.get(["a", "b", "c"])], ["c"])

        queued = docs.build_index()
        self.assertTrue(queued.queued)
        polls = []
        stats = docs.wait_for_index(timeout=120, on_progress=polls.append)
        self.assertGreaterEqual(len(polls), 1)
        self.assertEqual((stats.pending, stats.count, stats.indexed), (0, 1, 1))
        self.assertGreaterEqual(stats.version, 1)

        versions = docs.versions()
        self.assertGreaterEqual(len(versions), 1)
        self.assertEqual(versions[0].version, stats.version)
        self.assertEqual(versions[0].engine, "hnsw")

        info = client.collections.get(docs.name)
        self.assertEqual((info.stats.count, info.stats.shards >= 1), (1, True))

        reader_key = client.keys.create("search app", "read", collections=[docs.name])
        self.addCleanup(client.keys.revoke, reader_key.id)
        self.assertTrue(reader_key.key.startswith("shoal_"))
        reader = client.with_key(reader_key.key).collection(docs.name)
        self.assertEqual(reader.search([0.1, 0.2, 0.3, 0.5], k=1).ids, ["c"])
        with self.assertRaises(shoal.ForbiddenError) as ctx:
            reader.upsert([{"id": "d", "values": [1, 0, 0, 0]}])
        err = ctx.exception
        self.assertEqual((err.status, err.code), (403, "FORBIDDEN"))
        self.assertIsInstance(err, shoal.ApiError)

    def test_tune_in_the_request_and_as_a_job(self):
        docs = self.make(dimension=8, metric="l2", prefix="tune")
        rnd = random.Random(7)
        ids = [f"v{i}" for i in range(300)]
        docs.upsert(ids, [[rnd.uniform(-1, 1) for _ in range(8)] for _ in ids])
        docs.build_index()
        version = docs.wait_for_index(timeout=120).version

        evaluation = self.client.collection(docs.name).tune(version, 0.9, sample=50)
        self.assertEqual((evaluation["version"], evaluation["queries"]), (version, 50))
        self.assertGreaterEqual(evaluation["recall"], 0.9)
        self.assertIn("chosenEf", evaluation["tuning"])

        job = docs.start_tune(version, 0.95, k=5, sample=40)
        self.assertEqual((job["status"], job["input"]["sample"]), ("queued", 40))
        polls = []
        done = docs.wait_for_tune(job["id"], timeout=120, on_progress=polls.append, poll_interval=0.2)
        self.assertEqual(done["status"], "succeeded")
        self.assertEqual((done["evaluation"]["k"], done["evaluation"]["queries"]), (5, 40))
        self.assertEqual(polls[-1], done)
        self.assertEqual(docs.tune_job(job["id"]), done)

        # The caller's own queries (fresh draws, not rows of the index), in the request and as a job.
        fresh = [[rnd.uniform(-1, 1) for _ in range(8)] for _ in range(30)]
        supplied = docs.tune(version, 0.9, queries=fresh)
        self.assertEqual((supplied["source"], supplied["queries"]), ("supplied", 30))
        job = docs.start_tune(version, 0.9, queries=fresh)
        self.assertEqual(job["input"], {"targetRecall": 0.9, "k": 10, "sample": 30, "queries": True})
        done = docs.wait_for_tune(job["id"], timeout=120, poll_interval=0.2)
        self.assertEqual((done["evaluation"]["source"], done["evaluation"]["queries"]), ("supplied", 30))
        with self.assertRaises(shoal.ValidationError) as both:
            docs.tune(version, 0.9, sample=40, queries=fresh)
        self.assertEqual(both.exception.field, "sample")

        missing = docs.start_tune(999, 0.9)
        with self.assertRaises(shoal.JobFailedError) as ctx:
            docs.wait_for_tune(missing["id"], timeout=120, poll_interval=0.2)
        self.assertEqual((ctx.exception.code, ctx.exception.job["status"]), ("NOT_FOUND", "failed"))
        with self.assertRaises(shoal.NotFoundError) as nf:
            docs.tune_job("no-such-job")
        self.assertEqual(nf.exception.field, "jobId")

    def test_typed_errors(self):
        docs = self.make()
        with self.assertRaises(shoal.ValidationError) as ctx:
            docs.upsert([{"id": "a", "values": [1.0, 2.0, 3.0]}])
        self.assertEqual((ctx.exception.status, ctx.exception.code), (400, "VALIDATION_ERROR"))
        self.assertEqual(ctx.exception.field, "vectors[0].values")

        with self.assertRaises(shoal.ValidationError) as ctx:
            docs.search([1, 0, 0, 0], filter="lang ==")
        self.assertEqual(ctx.exception.code, "FILTER_SYNTAX_ERROR")

        with self.assertRaises(shoal.AuthError) as ctx:
            shoal.Client(URL, "shoal_not-a-key").collections.list()
        self.assertEqual((ctx.exception.status, ctx.exception.code), (401, "UNAUTHORIZED"))

        with self.assertRaises(shoal.NotFoundError) as ctx:
            self.client.collection(unique("missing")).search([1, 0, 0, 0])
        self.assertEqual((ctx.exception.status, ctx.exception.code), (404, "NOT_FOUND"))

        with self.assertRaises(shoal.ConflictError) as ctx:
            self.client.collections.create(docs.name, 4)
        self.assertEqual(ctx.exception.status, 409)

    def test_collections_list_get_and_multi_query_search(self):
        docs = self.make(dimension=2, metric="l2")
        docs.upsert(["x", "y"], [[0, 0], [10, 10]], [{"n": 1}, {"n": 2}])
        self.assertIn(docs.name, [c.name for c in self.client.collections.list()])
        res = docs.search([[0, 0.1], [9, 9]], k=1, include="values,metadata")
        self.assertEqual([hits[0].id for hits in res.results], ["x", "y"])
        self.assertEqual(res.results[1][0].values, [10.0, 10.0])
        self.assertEqual(res.results[1][0].metadata, {"n": 2})
        self.assertTrue(self.client.collections.exists(docs.name))
        self.client.collections.delete(docs.name)
        self.assertFalse(self.client.collections.exists(docs.name))

    def test_aliases_experiment_and_feedback(self):
        client = self.client
        champion = self.make(dimension=2, metric="l2", prefix="champ")
        challenger = self.make(dimension=2, metric="l2", prefix="chall")
        for c in (champion, challenger):
            c.upsert([(f"item-{i}", [float(i), 0.0]) for i in range(5)])
        alias = unique("prod")
        self.addCleanup(self._drop_alias, alias)

        created = client.aliases.set(alias, champion.name, reason="launch")
        self.assertEqual((created.collection, created.revision), (champion.name, 1))
        moved = client.aliases.set(alias, challenger.name, expected_revision=1)
        self.assertEqual(moved.revision, 2)
        with self.assertRaises(shoal.ConflictError):
            client.aliases.set(alias, champion.name, expected_revision=1)
        back = client.aliases.rollback(alias, reason="oops")
        self.assertEqual(back.collection, champion.name)
        self.assertEqual([e["action"] for e in client.aliases.history(alias)][-1], "create")
        self.assertIn(alias, [a.name for a in client.aliases.list()])

        exp = client.experiments.start(alias, challenger.name, mode="split", weight=50,
                                       guardrails={"maxP95Ratio": 5})
        self.assertEqual((exp.state, exp.mode, exp.weight), ("running", "split", 50))
        self.assertEqual(client.aliases.get(alias).experiment["id"], exp.id)
        with self.assertRaises(shoal.ConflictError):
            client.experiments.start(alias, challenger.name, mode="shadow")

        arms = set()
        for i in range(20):
            res = client.collection(alias).search([1.0, 0.0], k=1, sticky_key=f"user-{i}")
            self.assertIsNotNone(res.query_id)
            arms.add(res.served_by.get("arm"))
            fb = client.feedback(res.query_id, res.ids[0], "click")
            self.assertTrue(fb.attributed)
            self.assertEqual(fb.experiment, exp.id)
        self.assertEqual(arms, {"champion", "challenger"})

        read = client.experiments.get(alias)
        self.assertEqual(read.id, exp.id)
        clicks = read.arms["champion"]["clicks"] + read.arms["challenger"]["clicks"]
        self.assertEqual(clicks, 20)
        aborted = client.experiments.abort(alias, reason="done")
        self.assertEqual(aborted.state, "aborted")
        with self.assertRaises(shoal.ConflictError):
            client.experiments.promote(alias)
        self.assertFalse(client.feedback("no-such-query", "item-0").attributed)

    def _drop_alias(self, alias):
        try:
            self.client.aliases.delete(alias)
        except shoal.ApiError:
            pass

    def test_keys_create_list_revoke(self):
        keys = self.client.keys
        created = keys.create(unique("writer"), "write", rate_limit={"perSecond": 50})
        self.assertEqual(created.role, "write")
        listed = {k.id: k for k in keys.list()}
        self.assertIn(created.id, listed)
        self.assertIsNone(listed[created.id].key)
        self.assertEqual(keys.revoke(created.id), {"deleted": True})
        with self.assertRaises(shoal.AuthError):
            self.client.with_key(created.key).collections.list()
        with self.assertRaises(shoal.NotFoundError):
            keys.revoke(created.id)

    def test_model_version_with_an_artifact(self):
        models = self.client.models
        name = unique("enc")
        mv = models.register(name, dimension=4, metric="cosine", artifact=b"\x00weights" * 64,
                             tags={"team": "search"})
        self.assertEqual((mv.model, mv.version, mv.state), (name, 1, "ready"))
        self.assertEqual(mv.artifact["bytes"], 512)
        self.assertEqual([v.version for v in models.versions(name)], [1])
        self.assertEqual(models.get_version(name, 1).state, "ready")
        self.assertIn(name, [m["name"] for m in models.list()])
        pending = models.register(name, dimension=4, metric="cosine")
        self.assertEqual((pending.version, pending.state), (2, "pending"))

    def test_import_of_an_object_in_s3(self):
        local = self.client.health().get("local")
        if not local:
            self.skipTest("not a local Shoal: no embedded S3 to put the file in")
        docs = self.make(dimension=4)
        body = b'{"id": "i1", "values": [1, 0, 0, 0], "lang": "en"}\n{"id": "i2", "values": [1, 0]}\n'
        key = f"staging/{unique('rows')}.jsonl"
        # The embedded S3 takes unsigned writes; on AWS this is `import_file`'s presigned upload.
        self.client._http.put_bytes(f"{local['s3Endpoint']}/{local['bucket']}/{key}", lambda: body, len(body), {})
        job = docs.start_import(f"s3://{local['bucket']}/{key}", max_reject_ratio=1)
        self.assertIn(job.state, ("queued", "running", "partial"))
        done = docs.wait_for_import(job.job_id, timeout=120, poll_interval=0.2)
        self.assertEqual((done.state, done.rows_written, done.rows_rejected), ("partial", 1, 1))
        self.assertEqual([j.job_id for j in docs.imports()], [job.job_id])
        self.assertEqual(docs.get(["i1"])[0].metadata, {"lang": "en"})
        with self.assertRaises(shoal.NotFoundError):
            docs.start_import(f"s3://{local['bucket']}/staging/{unique('absent')}.jsonl")

    @unittest.skipUnless(HAS_NUMPY, "numpy is not installed")
    def test_numpy_round_trip(self):
        import numpy as np

        docs = self.make(dimension=8, metric="l2")
        rng = np.random.default_rng(7)
        values = rng.standard_normal((300, 8)).astype(np.float32)
        self.assertEqual(docs.upsert(np.arange(300), values).upserted, 300)
        got = {v.id: v.values for v in docs.get(np.arange(0, 300, 50))}
        np.testing.assert_array_equal(np.array(got["50"], dtype=np.float32), values[50])
        res = docs.search(values[:3], k=1)
        self.assertEqual([hits[0].id for hits in res.results], ["0", "1", "2"])

    # Routes landing on main after this client: skipped (with the reason) until the server has them.

    def test_list_vectors(self):
        docs = self.make(dimension=2)
        if not route_exists(lambda: docs.list_page(1)):
            self.skipTest("GET /v1/collections/{name}/vectors is not on this server yet")
        docs.upsert([(f"v{i:02d}", [1.0, float(i)], {"even": i % 2 == 0}) for i in range(25)])
        ids = [v.id for v in docs.list(page_size=10)]
        self.assertEqual(sorted(ids), [f"v{i:02d}" for i in range(25)])
        even = list(docs.list(filter={"even": True}, include=["metadata"], page_size=4))
        self.assertEqual(len(even), 13)
        self.assertTrue(all(v.metadata == {"even": True} and v.values is None for v in even))

    def test_patch_metadata(self):
        docs = self.make(dimension=2)
        docs.upsert([("p", [1.0, 0.0], {"lang": "en", "draft": True})])
        if not route_exists(lambda: docs.patch("p", {"lang": "en"})):
            self.skipTest("PATCH /v1/collections/{name}/vectors/{id} is not on this server yet")
        docs.patch("p", {"lang": "fr", "draft": None})
        (v,) = docs.get(["p"])
        self.assertEqual((v.metadata, v.values), ({"lang": "fr"}, [1.0, 0.0]))

    def test_import_file_and_rejects(self):
        docs = self.make(dimension=4)
        if not route_exists(lambda: docs.upload_ticket("probe.jsonl")):
            self.skipTest("POST /v1/collections/{name}/imports/uploads is not on this server yet")
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"{unique('rows')}.jsonl")
            with open(path, "w") as f:
                f.write('{"id": "a", "values": [1, 0, 0, 0]}\n{"id": "b", "values": [1]}\nnot json\n')
            states = []
            job = docs.import_file(path, lambda j: states.append(j.state), max_reject_ratio=1, timeout=120,
                                   poll_interval=0.2)
        self.assertEqual((job.state, job.rows_written, job.rows_rejected), ("partial", 1, 2))
        self.assertEqual(states[-1], "partial")
        if not route_exists(lambda: docs.rejects_page(job.job_id, 1)):
            self.skipTest("GET /v1/collections/{name}/imports/{jobId}/rejects is not on this server yet")
        rejects = list(docs.rejects(job.job_id, page_size=1))
        self.assertEqual([(r["line"], r["code"]) for r in rejects], [(2, "WRONG_DIMENSION"), (3, "BAD_JSON")])


if __name__ == "__main__":
    unittest.main()
