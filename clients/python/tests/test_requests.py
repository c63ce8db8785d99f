"""What the client sends, against a scripted local server: paging of the routes landing on main later
(vectors listing, import rejects), the upload-then-import flow, PATCH, upsert batching, query batching,
model artifacts, and numpy input when numpy is importable."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import shoal  # noqa: E402
from shoal._convert import HAS_NUMPY  # noqa: E402

from fake_server import FakeShoal  # noqa: E402


def client_for(fake: FakeShoal) -> shoal.Client:
    client = shoal.Client(fake.url, "test-key", seed=3)
    client._http.sleep = lambda _s: None
    return client


class PagingTest(unittest.TestCase):
    def test_list_follows_cursors_and_sends_filter_include_and_limit(self):
        pages = {
            None: ({"vectors": [{"id": "a"}, {"id": "b"}], "nextCursor": "c1"}),
            "c1": ({"vectors": [{"id": "c", "values": [1.0], "metadata": {"x": 1}}], "nextCursor": "c2"}),
            "c2": ({"vectors": [], "nextCursor": None}),
        }
        with FakeShoal(lambda seen: (200, pages[seen.query.get("cursor")], {})) as fake:
            docs = client_for(fake).collection("my docs")
            got = list(docs.list(filter={"lang": "en"}, include=["values", "metadata"], page_size=2))
            self.assertEqual([v.id for v in got], ["a", "b", "c"])
            self.assertEqual(got[2], shoal.Vector("c", [1.0], {"x": 1}))
            first, second, third = fake.requests
            self.assertEqual((first.method, first.path), ("GET", "/v1/collections/my%20docs/vectors"))
            self.assertEqual(first.query, {"limit": "2", "filter": '{"lang":"en"}', "include": "values,metadata"})
            self.assertEqual((second.query["cursor"], third.query["cursor"]), ("c1", "c2"))

    def test_list_stops_at_limit_and_passes_a_string_filter_as_is(self):
        def handler(seen):
            n = int(seen.query["limit"])
            page = [{"id": f"{seen.query.get('cursor', '')}{i}"} for i in range(n)]
            return 200, {"vectors": page, "nextCursor": "x"}, {}

        with FakeShoal(handler) as fake:
            got = list(client_for(fake).collection("docs").list(filter='year >= 2021', page_size=3, limit=5))
            self.assertEqual(len(got), 5)
            self.assertEqual([r.query["limit"] for r in fake.requests], ["3", "2"])
            self.assertEqual(fake.requests[0].query["filter"], "year >= 2021")

    def test_rejects_iterates_over_pages(self):
        def handler(seen):
            if seen.query.get("cursor") == "n":
                return 200, {"rejects": [{"row": 9, "code": "NOT_FINITE", "reason": "r"}], "nextCursor": None,
                             "rowsRejected": 3, "reported": 3}, {}
            return 200, {"rejects": [{"line": 1, "code": "BAD_JSON", "reason": "r"}, {"line": 4, "id": "s",
                         "code": "WRONG_DIMENSION", "reason": "r"}], "nextCursor": "n", "rowsRejected": 3,
                         "reported": 3}, {}

        with FakeShoal(handler) as fake:
            docs = client_for(fake).collection("docs")
            rejects = list(docs.rejects("job/1", page_size=2))
            self.assertEqual([r["code"] for r in rejects], ["BAD_JSON", "WRONG_DIMENSION", "NOT_FINITE"])
            self.assertEqual(fake.requests[0].path, "/v1/collections/docs/imports/job%2F1/rejects")
            self.assertEqual(fake.requests[0].query, {"limit": "2"})
            page = docs.rejects_page("job/1", 2)
            self.assertEqual((page.rows_rejected, page.reported, page.next_cursor), (3, 3, "n"))


class ImportFileTest(unittest.TestCase):
    def test_uploads_through_the_ticket_then_imports_the_uri_and_polls_the_job(self):
        polls = []

        def handler(seen):
            if seen.path == "/v1/collections/docs/imports/uploads":
                return 201, {"uploadUrl": f"{fake.url}/bucket/imports/docs/rows.jsonl?X-Amz-Signature=s",
                             "method": "PUT", "headers": {"x-amz-meta-shoal": "1"},
                             "uri": "s3://bucket/imports/docs/rows.jsonl", "expiresAt": "later"}, {}
            if seen.method == "PUT":
                return 200, None, {"ETag": '"e"'}
            if seen.path == "/v1/collections/docs/imports":
                return 202, {"jobId": "j1", "collection": "docs", "uri": seen.json["uri"], "state": "queued"}, {}
            if seen.path == "/v1/collections/docs/imports/j1":
                polls.append(seen)
                state = "running" if len(polls) < 2 else "partial"
                return 200, {"jobId": "j1", "collection": "docs", "uri": "u", "state": state, "rowsRead": 2,
                             "rowsWritten": 1, "rowsRejected": 1, "percent": 100}, {}
            return 404, {"error": {"code": "NOT_FOUND", "message": seen.path}}, {}

        with tempfile.TemporaryDirectory() as tmp, FakeShoal(handler) as fake:
            path = os.path.join(tmp, "rows.jsonl")
            content = b'{"id":"a","values":[1,2]}\n{"id":"b","values":[1]}\n'
            with open(path, "wb") as f:
                f.write(content)
            seen_states = []
            job = client_for(fake).collection("docs").import_file(
                path, lambda j: seen_states.append(j.state), max_reject_ratio=1, poll_interval=0
            )
            self.assertEqual((job.state, job.rows_written, job.rows_rejected), ("partial", 1, 1))
            self.assertEqual(seen_states, ["queued", "running", "partial"])
            ticket, put, start = fake.requests[:3]
            self.assertEqual(ticket.json, {"filename": "rows.jsonl"})
            self.assertEqual((put.method, put.path, put.query), ("PUT", "/bucket/imports/docs/rows.jsonl",
                                                                 {"X-Amz-Signature": "s"}))
            self.assertEqual(put.body, content)
            self.assertEqual(put.headers["x-amz-meta-shoal"], "1")
            self.assertEqual(put.headers["content-type"], "application/octet-stream")
            # The presigned URL is the credential: the API key must not travel to S3.
            self.assertNotIn("authorization", put.headers)
            self.assertEqual(start.json, {"uri": "s3://bucket/imports/docs/rows.jsonl", "maxRejectRatio": 1})

    def test_a_failed_upload_is_resent_whole(self):
        puts = []

        def handler(seen):
            if seen.path.endswith("/imports/uploads"):
                return 201, {"uploadUrl": f"{fake.url}/b/k", "method": "PUT", "headers": {}, "uri": "s3://b/k"}, {}
            if seen.method == "PUT":
                puts.append(seen.body)
                return (503, b"SlowDown", {}) if len(puts) == 1 else (200, None, {})
            return 202, {"jobId": "j", "collection": "docs", "uri": "s3://b/k", "state": "queued"}, {}

        with tempfile.TemporaryDirectory() as tmp, FakeShoal(handler) as fake:
            path = os.path.join(tmp, "v.csv")
            with open(path, "wb") as f:
                f.write(b"id,v0\na,1\n")
            job = client_for(fake).collection("docs").import_file(path, wait=False)
            self.assertEqual(job.state, "queued")
            self.assertEqual(puts, [b"id,v0\na,1\n"] * 2)


class WriteTest(unittest.TestCase):
    def test_a_large_tune_raises_async_required_and_start_tune_sends_async(self):
        def handler(seen):
            if seen.json.get("async"):
                return 202, {"id": "j1", "status": "queued", "progress": {"measured": 0}}, {}
            err = {"code": "ASYNC_REQUIRED", "message": "send `async: true`", "field": "async"}
            return 422, {"error": err}, {}

        with FakeShoal(handler) as fake:
            docs = client_for(fake).collection("docs")
            with self.assertRaises(shoal.AsyncRequiredError) as ctx:
                docs.tune(3, 0.95)
            self.assertEqual((ctx.exception.status, ctx.exception.field), (422, "async"))
            self.assertEqual(docs.start_tune(3, 0.95, sample=500)["id"], "j1")
            first, second = fake.requests
            self.assertEqual((first.method, first.path), ("POST", "/v1/collections/docs/versions/3/tune"))
            self.assertEqual(first.json, {"targetRecall": 0.95})
            self.assertEqual(second.json, {"targetRecall": 0.95, "sample": 500, "async": True})

    def test_patch_sends_the_metadata_merge(self):
        with FakeShoal(lambda seen: (200, {"upserted": 1}, {})) as fake:
            res = client_for(fake).collection("docs").patch("id/1", {"lang": "fr", "draft": None})
            self.assertEqual(res, {"upserted": 1})
            (req,) = fake.requests
            self.assertEqual((req.method, req.path), ("PATCH", "/v1/collections/docs/vectors/id%2F1"))
            self.assertEqual(req.json, {"metadata": {"lang": "fr", "draft": None}})

    def test_upsert_batches_under_the_body_limit_and_1000_vectors_in_order(self):
        with FakeShoal(lambda seen: (200, {"upserted": len(seen.json["vectors"])}, {})) as fake:
            docs = client_for(fake).collection("docs")
            rows = [{"id": i, "values": [0.1 * (i % 7)] * 8, "metadata": {"i": i}} for i in range(2500)]
            res = docs.upsert(rows, max_body_bytes=40_000)
            self.assertEqual(res.upserted, 2500)
            self.assertEqual(res.batches, len(fake.requests))
            self.assertGreater(res.batches, 3)
            self.assertTrue(all(len(r.body) <= 40_000 for r in fake.requests))
            sent = [v["id"] for r in fake.requests for v in r.json["vectors"]]
            self.assertEqual(sent, list(range(2500)))

            fake.requests.clear()
            res = docs.upsert(rows)
            self.assertEqual([len(r.json["vectors"]) for r in fake.requests], [1000, 1000, 500])

    def test_upsert_accepts_columns_tuples_and_vectors_and_a_model_version(self):
        with FakeShoal(lambda seen: (200, {"upserted": len(seen.json["vectors"])}, {})) as fake:
            docs = client_for(fake).collection("docs")
            docs.upsert(["a", "b"], [[1, 2], [3, 4]], [{"k": 1}, None], model_version={"name": "m", "version": 2})
            docs.upsert([("c", (5, 6)), shoal.Vector("d", [7.0, 8.0], {"k": 2})])
            docs.upsert(ids=["e"], values=[[9, 10]])
            first, second, third = (r.json for r in fake.requests)
            self.assertEqual(first, {"vectors": [{"id": "a", "values": [1.0, 2.0], "metadata": {"k": 1}},
                                                 {"id": "b", "values": [3.0, 4.0]}],
                                     "modelVersion": {"name": "m", "version": 2}})
            self.assertEqual(second["vectors"][1], {"id": "d", "values": [7.0, 8.0], "metadata": {"k": 2}})
            self.assertEqual(third, {"vectors": [{"id": "e", "values": [9.0, 10.0]}]})

    def test_bad_input_is_refused_before_any_request(self):
        with FakeShoal(lambda seen: (200, {"upserted": 1}, {})) as fake:
            docs = client_for(fake).collection("docs")
            with self.assertRaisesRegex(ValueError, r"vectors\[1\]\.values\[0\] must be a finite number"):
                docs.upsert([("a", [1.0]), ("b", [float("nan")])])
            with self.assertRaisesRegex(ValueError, "2 ids for 1 rows"):
                docs.upsert(["a", "b"], [[1.0]])
            with self.assertRaises(ValueError):
                docs.delete()
            with self.assertRaises(ValueError):
                docs.delete(["a"], filter="x == 1")
            self.assertEqual(fake.requests, [])

    def test_get_and_delete_batch_ids_by_1000(self):
        def handler(seen):
            if seen.path.endswith("/get"):
                return 200, {"vectors": [{"id": i, "values": [0.0]} for i in seen.json["ids"][:1]]}, {}
            return 200, {"deleted": len(seen.json.get("ids", [])) or 7}, {}

        with FakeShoal(handler) as fake:
            docs = client_for(fake).collection("docs")
            self.assertEqual([v.id for v in docs.get([str(i) for i in range(1500)])], ["0", "1000"])
            self.assertEqual(docs.delete([str(i) for i in range(2001)]), 2001)
            self.assertEqual(docs.delete(filter={"year": {"$lt": 2022}}), 7)
            self.assertEqual([len(r.json.get("ids", [])) for r in fake.requests], [1000, 500, 1000, 1000, 1, 0])
            self.assertEqual(fake.requests[-1].json, {"filter": {"year": {"$lt": 2022}}})


class SearchTest(unittest.TestCase):
    def test_many_queries_are_sent_100_at_a_time_and_results_keep_their_order(self):
        def handler(seen):
            body = seen.json
            return 200, {"results": [[{"id": str(q[0]), "score": 1.0}] for q in body["vectors"]],
                         "servedBy": {"collection": "docs", "version": 3}, "stats": {}}, {}

        with FakeShoal(handler) as fake:
            res = client_for(fake).collection("docs").search([[i, 0] for i in range(250)], 1, include="metadata")
            self.assertEqual([hits[0].id for hits in res.results], [str(float(i)) for i in range(250)])
            self.assertEqual([len(r.json["vectors"]) for r in fake.requests], [100, 100, 50])
            self.assertEqual(fake.requests[0].json["include"], ["metadata"])
            self.assertEqual(res.served_by["version"], 3)

    def test_one_query_sends_vector_and_options(self):
        reply = {"results": [{"id": "a", "score": 0.5, "metadata": {"x": 1}}], "servedBy": {}, "stats": {},
                 "queryId": "q1"}
        with FakeShoal(lambda seen: (200, reply, {})) as fake:
            res = client_for(fake).collection("prod").search(
                (1, 2), 3, filter='x == 1', consistency="eventual", ef=32, sticky_key="user-9"
            )
            self.assertEqual((res.ids, res.query_id, res.hits[0].metadata), (["a"], "q1", {"x": 1}))
            self.assertEqual(fake.requests[0].json, {"vector": [1.0, 2.0], "k": 3, "filter": "x == 1",
                                                     "consistency": "eventual", "ef": 32, "stickyKey": "user-9"})


class ModelTest(unittest.TestCase):
    def test_register_with_an_artifact_puts_it_to_the_presigned_url_and_commits_its_sha256(self):
        artifact = b"weights" * 100

        def handler(seen):
            if seen.method == "POST" and seen.path == "/v1/models/enc/versions":
                return 201, {"model": {"name": "enc", "version": 4, "state": "pending", "dimension": 4,
                                       "metric": "cosine"},
                             "upload": {"url": f"{fake.url}/bucket/models/enc/4/artifact?sig=1", "headers": {}}}, {}
            if seen.method == "PUT":
                return 200, None, {}
            return 200, {"name": "enc", "version": 4, "state": "ready", "dimension": 4, "metric": "cosine",
                         "artifact": {"sha256": seen.json["sha256"]}}, {}

        with FakeShoal(handler) as fake:
            mv = client_for(fake).models.register("enc", dimension=4, metric="cosine", artifact=artifact,
                                                  tags={"team": "search"})
            self.assertEqual((mv.version, mv.state), (4, "ready"))
            create, put, commit = fake.requests
            self.assertEqual(create.json, {"dimension": 4, "metric": "cosine", "tags": {"team": "search"}})
            self.assertEqual((put.body, put.query), (artifact, {"sig": "1"}))
            self.assertNotIn("authorization", put.headers)
            self.assertEqual(commit.path, "/v1/models/enc/versions/4/commit")
            self.assertEqual(commit.json, {"sha256": hashlib.sha256(artifact).hexdigest()})


@unittest.skipUnless(HAS_NUMPY, "numpy is not installed: the numpy input paths are not exercised")
class NumpyTest(unittest.TestCase):
    def test_upsert_and_search_take_numpy_arrays(self):
        import numpy as np

        rng = np.random.default_rng(42)
        values = rng.random((5, 3), dtype=np.float32)
        ids = np.arange(5)

        def handler(seen):
            if seen.path.endswith("/search"):
                hits = [{"id": "0", "score": 1}]
                results = [hits] * len(seen.json["vectors"]) if "vectors" in seen.json else hits
                return 200, {"results": results, "servedBy": {}, "stats": {}}, {}
            if seen.path.endswith("/get"):
                return 200, {"vectors": []}, {}
            return 200, {"upserted": len(seen.json["vectors"])}, {}

        with FakeShoal(handler) as fake:
            docs = client_for(fake).collection("docs")
            self.assertEqual(docs.upsert(ids, values, [{"i": i} for i in range(5)]).upserted, 5)
            sent = fake.requests[0].json["vectors"]
            self.assertEqual([v["id"] for v in sent], [0, 1, 2, 3, 4])
            # float32 → JSON → float32 is exact, so the server stores the array's values bit for bit.
            np.testing.assert_array_equal(np.array([v["values"] for v in sent], dtype=np.float32), values)
            docs.search(values[0], 1)
            self.assertIn("vector", fake.requests[-1].json)
            self.assertEqual(len(docs.search(values[:2], 1).results), 2)
            self.assertEqual(len(fake.requests[-1].json["vectors"]), 2)
            docs.get(ids[:2])
            self.assertEqual(fake.requests[-1].json, {"ids": [0, 1]})

    def test_a_nan_in_an_array_is_named(self):
        import numpy as np

        values = np.zeros((2, 2), dtype=np.float32)
        values[1, 1] = np.nan
        docs = shoal.Client("http://127.0.0.1:9", "k").collection("docs")
        with self.assertRaisesRegex(ValueError, r"vectors\[1\]\.values\[1\]"):
            docs.upsert(["a", "b"], values)
        with self.assertRaisesRegex(ValueError, "must be 2-D"):
            docs.upsert(["a", "b"], np.zeros(2))


if __name__ == "__main__":
    unittest.main()
