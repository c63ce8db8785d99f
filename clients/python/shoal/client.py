"""`Client` and its resources: collections, vectors, search, index, versions, imports, aliases, experiments,
feedback, models and keys. Every method is one or a few calls of docs/api.md."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from ._convert import is_matrix, to_floats, to_ids, to_rows, to_vector_json, zip_columns
from ._http import Transport
from .errors import JobFailedError, NotFoundError, ShoalTimeoutError
from .types import (
    Alias,
    AliasEvent,
    ApiKey,
    Collection,
    CollectionStats,
    Experiment,
    Feedback,
    Filter,
    ImportJob,
    IndexRequest,
    IndexVersion,
    Json,
    Metadata,
    ModelVersion,
    RejectsPage,
    SearchResult,
    UploadTicket,
    UpsertResult,
    Vector,
)

# API Gateway refuses bodies over 6 MB (10 MiB for the payload, 6 MB for Lambda's invoke); a margin keeps the
# envelope and any proxy's additions under it.
MAX_BODY_BYTES = 6 * 1000 * 1000 - 64 * 1024
MAX_ITEMS = 1000  # vectors per upsert, ids per get/delete
MAX_QUERIES = 100  # queries per search


def _q(segment: Union[str, int]) -> str:
    return urllib.parse.quote(str(segment), safe="")


def _drop_none(d: Json) -> Json:
    return {k: v for k, v in d.items() if v is not None}


def _rows(vectors: Optional[Sequence[Sequence[float]]]) -> Optional[List[List[float]]]:
    """Vectors as JSON lists (any sequence of numbers, e.g. NumPy rows)."""
    return None if vectors is None else [[float(x) for x in v] for v in vectors]


def _include(include: Union[None, str, Sequence[str]]) -> Optional[List[str]]:
    if include is None:
        return None
    if isinstance(include, str):
        return [s.strip() for s in include.split(",") if s.strip()]
    return list(include)


def _chunks(items: List[Any], size: int) -> Iterator[List[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Client:
    """A Shoal API client. `url` and `api_key` default to the `SHOAL_URL` and `SHOAL_API_KEY` variables.

    >>> import shoal
    >>> client = shoal.Client("http://localhost:8787", "…")
    >>> docs = client.collections.create("docs", dimension=4, metric="cosine")

    `timeout` is per HTTP request (seconds); `max_retries` bounds resends of 429/503/connection failures.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.25,
        backoff_max: float = 20.0,
        user_agent: Optional[str] = None,
        seed: Optional[int] = None,
    ) -> None:
        url = url or os.environ.get("SHOAL_URL") or ""
        api_key = api_key if api_key is not None else os.environ.get("SHOAL_API_KEY")
        self._http = Transport(
            url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            user_agent=user_agent,
            seed=seed,
        )
        self.collections = Collections(self)
        self.aliases = Aliases(self)
        self.experiments = Experiments(self)
        self.models = Models(self)
        self.keys = Keys(self)

    @property
    def url(self) -> str:
        return self._http.base_url

    def __repr__(self) -> str:
        return f"shoal.Client({self.url!r})"

    def with_key(self, api_key: str) -> "Client":
        """A client for the same server and settings with another key (e.g. a read-only key just created)."""
        h = self._http
        return Client(h.base_url, api_key, timeout=h.timeout, max_retries=h.max_retries,
                      backoff_base=h.backoff_base, backoff_max=h.backoff_max, user_agent=h.user_agent)

    def request(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None) -> Any:
        """Any route, as parsed JSON: for calls this client has no method for yet."""
        return self._http.request(method, path, body, query)

    def health(self) -> Json:
        return self._http.request("GET", "/v1/health")

    def collection(self, name: str) -> "CollectionHandle":
        """A handle on collection (or alias, for reads) `name`; no request is made."""
        return CollectionHandle(self, name)

    def feedback(self, query_id: str, id: Union[str, int], event: str = "click") -> Feedback:
        """Reports a click or convert on result `id` of the search `query_id` (experiments attribute it)."""
        if event not in ("click", "convert"):
            raise ValueError('event must be "click" or "convert"')
        body = {"queryId": query_id, "id": str(id), "event": event}
        # Not resent after a timeout: a click the server already counted would count twice.
        return Feedback.from_json(self._http.request("POST", "/v1/feedback", body, idempotent=False))


class Collections:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._http = client._http

    def create(
        self,
        name: str,
        dimension: int,
        metric: str = "cosine",
        *,
        index: Optional[Json] = None,
        min_recall: Optional[float] = None,
        model: Optional[Json] = None,
    ) -> "CollectionHandle":
        """Creates a collection; `metric` is `cosine`, `ip` or `l2`. Returns its handle (with `.info`)."""
        body = _drop_none(
            {"name": name, "dimension": dimension, "metric": metric, "index": index, "minRecall": min_recall,
             "model": model}
        )
        # A resend after a timeout that hid a success would answer 409 for a collection that was just made.
        created = Collection.from_json(self._http.request("POST", "/v1/collections", body, idempotent=False))
        handle = CollectionHandle(self._client, created.name)
        handle.info = created
        return handle

    def list(self) -> List[Collection]:
        res = self._http.request("GET", "/v1/collections")
        return [Collection.from_json(c) for c in res.get("collections", [])]

    def get(self, name: str) -> Collection:
        """The collection with the `stats` of its serving index line (also through an alias)."""
        return Collection.from_json(self._http.request("GET", f"/v1/collections/{_q(name)}"))

    def delete(self, name: str) -> Json:
        return self._http.request("DELETE", f"/v1/collections/{_q(name)}")

    def patch(self, name: str, *, min_recall: Optional[float]) -> Collection:
        """Sets (or with None clears) the collection's `minRecall` quality gate."""
        res = self._http.request("PATCH", f"/v1/collections/{_q(name)}", {"minRecall": min_recall})
        return Collection.from_json(res)

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
            return True
        except NotFoundError:
            return False


class CollectionHandle:
    """Operations on one collection: `client.collection("docs")`."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self._http = client._http
        self.name = name
        # The answer of `collections.create`, when this handle came from it.
        self.info: Optional[Collection] = None
        self._path = f"/v1/collections/{_q(name)}"

    def __repr__(self) -> str:
        return f"CollectionHandle({self.name!r})"

    # -- the collection itself

    def get_info(self) -> Collection:
        self.info = Collection.from_json(self._http.request("GET", self._path))
        return self.info

    def stats(self) -> CollectionStats:
        """count, indexed, pending (distinct ids newer than the index), shards, version, watermark."""
        info = self.get_info()
        assert info.stats is not None
        return info.stats

    def delete_collection(self) -> Json:
        return self._http.request("DELETE", self._path)

    # -- vectors

    def upsert(
        self,
        vectors: Any = None,
        values: Any = None,
        metadata: Optional[Sequence[Optional[Metadata]]] = None,
        *,
        ids: Any = None,
        model_version: Optional[Json] = None,
        batch_size: int = MAX_ITEMS,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> UpsertResult:
        """Inserts or replaces vectors, in as many requests as the limits need (≤ 1000 vectors, < 6 MB each).

        Either `upsert(vectors)` with dicts `{"id", "values", "metadata"?}`, `Vector`s or `(id, values[,
        metadata])` tuples, or columns: `upsert(ids, values, metadata)` / `upsert(ids=…, values=…)` where
        `values` is a 2-D numpy array or a list of rows. Batches are sent in order; when one fails the
        earlier ones stay written (resending them is safe: the newest write wins).
        """
        if values is not None:
            items: Iterable[Any] = zip_columns(ids if ids is not None else vectors, values, metadata)
        elif ids is not None:
            raise ValueError("ids= needs values=")
        elif vectors is None:
            raise ValueError("nothing to upsert")
        else:
            items = vectors
        extra = {"modelVersion": model_version} if model_version is not None else {}
        head = b'{"vectors":['
        tail = b"]" + (b"," + json.dumps(extra)[1:-1].encode() if extra else b"") + b"}"
        overhead = len(head) + len(tail)
        upserted = 0
        batches = 0
        batch: List[bytes] = []
        size = overhead

        def flush() -> None:
            nonlocal upserted, batches, batch, size
            if not batch:
                return
            body = head + b",".join(batch) + tail
            res = self._http.request("POST", f"{self._path}/vectors", body)
            upserted += int(res.get("upserted", 0))
            batches += 1
            batch = []
            size = overhead

        for i, item in enumerate(items):
            encoded = json.dumps(to_vector_json(item, i), separators=(",", ":"), allow_nan=False).encode("utf-8")
            if batch and (len(batch) >= batch_size or size + len(encoded) + 1 > max_body_bytes):
                flush()
            batch.append(encoded)
            size += len(encoded) + 1
        flush()
        if batches == 0:
            raise ValueError("nothing to upsert")
        return UpsertResult(upserted=upserted, batches=batches)

    def get(self, ids: Any, *, include: Union[None, str, Sequence[str]] = None) -> List[Vector]:
        """The vectors with these ids (missing and deleted ones are left out), in batches of 1000."""
        out: List[Vector] = []
        for chunk in _chunks(to_ids(ids), MAX_ITEMS):
            res = self._http.request("POST", f"{self._path}/vectors/get", {"ids": chunk})
            out.extend(Vector.from_json(v) for v in res.get("vectors", []))
        return out

    def delete(self, ids: Any = None, *, filter: Optional[Filter] = None) -> int:
        """Deletes by ids or by filter (exactly one); returns how many live vectors were removed."""
        if (ids is None) == (filter is None):
            raise ValueError("delete takes ids or filter, exactly one")
        if filter is not None:
            return int(self._http.request("POST", f"{self._path}/vectors/delete", {"filter": filter})["deleted"])
        deleted = 0
        for chunk in _chunks(to_ids(ids), MAX_ITEMS):
            deleted += int(self._http.request("POST", f"{self._path}/vectors/delete", {"ids": chunk})["deleted"])
        return deleted

    def patch(self, id: Union[str, int], metadata: Metadata) -> Json:
        """Merges `metadata` into vector `id`'s (a None value removes that key); the vector keeps its values."""
        return self._http.request("PATCH", f"{self._path}/vectors/{_q(id)}", {"metadata": metadata})

    def list_page(
        self,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        *,
        filter: Optional[Filter] = None,
        include: Union[None, str, Sequence[str]] = None,
    ) -> Json:
        """One page of `GET …/vectors`: `{"vectors": [...], "nextCursor": str | None}`."""
        inc = _include(include)
        query = {"limit": limit, "cursor": cursor, "filter": filter, "include": ",".join(inc) if inc else None}
        return self._http.request("GET", f"{self._path}/vectors", query=query)

    def list(
        self,
        *,
        filter: Optional[Filter] = None,
        include: Union[None, str, Sequence[str]] = None,
        page_size: int = 100,
        limit: Optional[int] = None,
    ) -> Iterator[Vector]:
        """Iterates over the collection's vectors (all, or those matching `filter`), page by page, lazily.
        `limit` stops after that many vectors."""
        cursor: Optional[str] = None
        seen = 0
        while True:
            want = page_size if limit is None else min(page_size, limit - seen)
            if want <= 0:
                return
            page = self.list_page(want, cursor, filter=filter, include=include)
            for v in page.get("vectors", []):
                yield Vector.from_json(v)
                seen += 1
            cursor = page.get("nextCursor")
            if not cursor:
                return

    # -- search

    def search(
        self,
        vector: Any = None,
        k: int = 10,
        *,
        filter: Optional[Filter] = None,
        include: Union[None, str, Sequence[str]] = None,
        consistency: Optional[str] = None,
        ef: Optional[int] = None,
        nprobe: Optional[int] = None,
        sticky_key: Optional[str] = None,
    ) -> SearchResult:
        """The k nearest vectors, best first. `vector` is one query (a list or 1-D array) or several (a list
        of rows or a 2-D array: `results` then has one list per query; more than 100 are sent in batches).
        `filter` is an expression string or a JSON object; `include` any of "metadata", "values";
        `consistency` "strong" (the default: sees every acknowledged write) or "eventual"."""
        if vector is None:
            raise ValueError("search needs a query vector")
        opts = _drop_none(
            {"k": k, "filter": filter, "include": _include(include), "consistency": consistency, "ef": ef,
             "nprobe": nprobe, "stickyKey": sticky_key}
        )
        if not is_matrix(vector):
            res = self._http.request("POST", f"{self._path}/search", {"vector": to_floats(vector, "vector"), **opts})
            return SearchResult.from_json(res, multi=False)
        rows = to_rows(vector, "vectors")
        if not rows:
            raise ValueError("search needs at least one query vector")
        merged: Optional[SearchResult] = None
        for chunk in _chunks(rows, MAX_QUERIES):
            part = SearchResult.from_json(
                self._http.request("POST", f"{self._path}/search", {"vectors": chunk, **opts}), multi=True
            )
            if merged is None:
                merged = part
            else:
                merged.results.extend(part.results)
        assert merged is not None
        return merged

    # -- index

    def build_index(self, index: Optional[Json] = None, *, candidate: Optional[str] = None) -> IndexRequest:
        """Queues a build of the serving line now; with `index` settings starts a candidate line instead."""
        body = _drop_none({"index": index, "candidate": candidate}) or None
        return IndexRequest.from_json(self._http.request("POST", f"{self._path}/index", body))

    def wait_for_index(
        self,
        timeout: float = 120.0,
        on_progress: Optional[Callable[[CollectionStats], None]] = None,
        poll_interval: float = 0.5,
    ) -> CollectionStats:
        """Polls the collection's stats until no write is pending (every acknowledged write is in the serving
        index version); returns those stats. `on_progress(stats)` sees each poll. Raises `ShoalTimeoutError`."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if on_progress is not None:
                on_progress(stats)
            if stats.pending == 0:
                return stats
            if time.monotonic() >= deadline:
                raise ShoalTimeoutError(
                    f"collection {self.name!r} still has {stats.pending} pending ids after {timeout:g} s"
                )
            time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))

    def versions(self) -> List[IndexVersion]:
        """The index versions, newest first."""
        res = self._http.request("GET", f"{self._path}/versions")
        return [IndexVersion.from_json(v) for v in res.get("versions", [])]

    def evaluate(self, version: int, **body: Any) -> Json:
        """Recall and latency of `version` (`queries`, `sample`, `k`, `ef`: docs/api.md, Evaluation)."""
        return self._http.request("POST", f"{self._path}/versions/{int(version)}/evaluate", body or None)

    def tune(
        self,
        version: int,
        target_recall: float,
        *,
        k: Optional[int] = None,
        sample: Optional[int] = None,
        queries: Optional[Sequence[Sequence[float]]] = None,
        graph: Optional[Json] = None,
    ) -> Json:
        """Sweeps (nprobe, ef) of `version` for `target_recall` inside the request and makes the cheapest
        setting meeting it the line's default; returns the evaluation. `queries` (20–2000, e.g. from your query
        log) instead of `sample`: sampled rows overstate recall a little. A version too large for the API's
        time raises `AsyncRequiredError` (code `ASYNC_REQUIRED`): use `start_tune` then."""
        body = {"targetRecall": target_recall, "k": k, "sample": sample, "queries": _rows(queries), "graph": graph}
        return self._tune(version, body)

    def start_tune(
        self,
        version: int,
        target_recall: float,
        *,
        k: Optional[int] = None,
        sample: Optional[int] = None,
        queries: Optional[Sequence[Sequence[float]]] = None,
        graph: Optional[Json] = None,
    ) -> Json:
        """The same tune as a tune job on a build worker (any version size); returns the job (`id`,
        `status`, `progress`). Follow it with `tune_job` or `wait_for_tune`. A job carries at most 81,920
        query floats (len(queries) × dimension)."""
        body = {
            "targetRecall": target_recall,
            "k": k,
            "sample": sample,
            "queries": _rows(queries),
            "graph": graph,
            "async": True,
        }
        return self._tune(version, body)

    def _tune(self, version: int, body: Json) -> Json:
        return self._http.request("POST", f"{self._path}/versions/{int(version)}/tune", _drop_none(body))

    def tune_job(self, job_id: str) -> Json:
        """A tune job: `status` (queued, running, succeeded, failed), `progress`, and once succeeded its
        `evaluation` (once failed its `error`: `{code, message}`)."""
        return self._http.request("GET", f"{self._path}/tune-jobs/{_q(job_id)}")

    def wait_for_tune(
        self,
        job_id: str,
        timeout: float = 3600.0,
        on_progress: Optional[Callable[[Json], None]] = None,
        poll_interval: float = 1.0,
    ) -> Json:
        """Polls a tune job until it succeeds (returns it) or fails (raises `JobFailedError` with the job's error
        code). Raises `ShoalTimeoutError` past `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.tune_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.get("status") == "succeeded":
                return job
            if job.get("status") == "failed":
                err = job.get("error") or {}
                raise JobFailedError(str(err.get("code", "INTERNAL")), str(err.get("message", "tune job failed")), job)
            if time.monotonic() >= deadline:
                raise ShoalTimeoutError(f"tune job {job_id} still {job.get('status')} after {timeout:g} s")
            time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))

    # -- imports

    def start_import(
        self,
        uri: str,
        *,
        max_rows: Optional[int] = None,
        max_duration_seconds: Optional[int] = None,
        max_reject_ratio: Optional[float] = None,
    ) -> ImportJob:
        """Imports an object already in S3 (`s3://bucket/key`); returns the job (the existing one when that
        object was imported before)."""
        body = _drop_none(
            {"uri": uri, "maxRows": max_rows, "maxDurationSeconds": max_duration_seconds,
             "maxRejectRatio": max_reject_ratio}
        )
        return ImportJob.from_json(self._http.request("POST", f"{self._path}/imports", body))

    def upload_ticket(self, filename: str, content_type: Optional[str] = None) -> UploadTicket:
        """A presigned PUT for a file to import: `POST …/imports/uploads`."""
        body = _drop_none({"filename": filename, "contentType": content_type})
        return UploadTicket.from_json(self._http.request("POST", f"{self._path}/imports/uploads", body))

    def import_file(
        self,
        path: Union[str, "os.PathLike[str]"],
        on_progress: Optional[Callable[[ImportJob], None]] = None,
        *,
        wait: bool = True,
        timeout: float = 3600.0,
        poll_interval: float = 1.0,
        filename: Optional[str] = None,
        content_type: Optional[str] = None,
        max_rows: Optional[int] = None,
        max_duration_seconds: Optional[int] = None,
        max_reject_ratio: Optional[float] = None,
    ) -> ImportJob:
        """Uploads a local JSONL/CSV/Parquet/.npy file (gzip too; the format comes from its name) and imports
        it: a presigned upload ticket, a PUT of the bytes straight to S3, then the import job. With `wait`
        polls the job until it ends (`on_progress(job)` sees each poll) and returns it; check `job.state`
        (`partial` has rejects: `rejects(job.job_id)`)."""
        path = os.fspath(path)
        name = filename or os.path.basename(path)
        ticket = self.upload_ticket(name, content_type)
        size = os.path.getsize(path)
        self._http.put_bytes(ticket.upload_url, lambda: open(path, "rb"), size, ticket.headers)
        job = self.start_import(
            ticket.uri, max_rows=max_rows, max_duration_seconds=max_duration_seconds,
            max_reject_ratio=max_reject_ratio
        )
        if on_progress is not None:
            on_progress(job)
        if not wait:
            return job
        return self.wait_for_import(job.job_id, timeout=timeout, on_progress=on_progress, poll_interval=poll_interval,
                                    _first=job)

    def wait_for_import(
        self,
        job_id: str,
        timeout: float = 3600.0,
        on_progress: Optional[Callable[[ImportJob], None]] = None,
        poll_interval: float = 1.0,
        _first: Optional[ImportJob] = None,
    ) -> ImportJob:
        """Polls an import job until it ends (succeeded, partial, failed, cancelled)."""
        deadline = time.monotonic() + timeout
        job = _first
        while job is None or not job.done:
            if time.monotonic() >= deadline:
                raise ShoalTimeoutError(f"import {job_id} still {job.state if job else 'unknown'} after {timeout:g} s")
            if job is not None:
                time.sleep(poll_interval)
            job = self.get_import(job_id)
            if on_progress is not None:
                on_progress(job)
        return job

    def imports(self) -> List[ImportJob]:
        """The collection's import jobs, newest first (up to 100)."""
        res = self._http.request("GET", f"{self._path}/imports")
        return [ImportJob.from_json(j) for j in res.get("jobs", [])]

    def get_import(self, job_id: str) -> ImportJob:
        return ImportJob.from_json(self._http.request("GET", f"{self._path}/imports/{_q(job_id)}"))

    def cancel_import(self, job_id: str) -> ImportJob:
        return ImportJob.from_json(self._http.request("DELETE", f"{self._path}/imports/{_q(job_id)}"))

    def rejects_page(self, job_id: str, limit: Optional[int] = None, cursor: Optional[str] = None) -> RejectsPage:
        res = self._http.request(
            "GET", f"{self._path}/imports/{_q(job_id)}/rejects", query={"limit": limit, "cursor": cursor}
        )
        return RejectsPage(
            rejects=res.get("rejects", []),
            next_cursor=res.get("nextCursor"),
            rows_rejected=int(res.get("rowsRejected", 0)),
            reported=int(res.get("reported", 0)),
        )

    def rejects(self, job_id: str, *, page_size: int = 1000) -> Iterator[Any]:
        """Iterates over an import job's rejected rows in file order: `{"line"|"row", "id"?, "code", "reason"}`."""
        cursor: Optional[str] = None
        while True:
            page = self.rejects_page(job_id, page_size, cursor)
            yield from page.rejects
            cursor = page.next_cursor
            if not cursor:
                return


class Aliases:
    def __init__(self, client: Client) -> None:
        self._http = client._http

    def get(self, alias: str) -> Alias:
        return Alias.from_json(self._http.request("GET", f"/v1/aliases/{_q(alias)}"))

    def list(self) -> List[Alias]:
        return [Alias.from_json(a) for a in self._http.request("GET", "/v1/aliases").get("aliases", [])]

    def set(
        self,
        alias: str,
        collection: str,
        *,
        version: Optional[int] = None,
        line: Optional[str] = None,
        expected_revision: Optional[int] = None,
        reason: Optional[str] = None,
        force: Optional[bool] = None,
    ) -> Alias:
        """Creates or moves `alias` to a collection (its serving line), a pinned `version`, or a `line`."""
        body = _drop_none(
            {"collection": collection, "version": version, "line": line, "expectedRevision": expected_revision,
             "reason": reason, "force": force}
        )
        return Alias.from_json(self._http.request("PUT", f"/v1/aliases/{_q(alias)}", body))

    def delete(self, alias: str, *, expected_revision: Optional[int] = None) -> Json:
        return self._http.request(
            "DELETE", f"/v1/aliases/{_q(alias)}", query={"expectedRevision": expected_revision}
        )

    def history(self, alias: str) -> List[AliasEvent]:
        return self._http.request("GET", f"/v1/aliases/{_q(alias)}/history").get("history", [])

    def rollback(
        self, alias: str, *, reason: Optional[str] = None, expected_revision: Optional[int] = None
    ) -> Alias:
        """Moves the alias back to its previous target in one call."""
        body = _drop_none({"reason": reason, "expectedRevision": expected_revision}) or None
        # Each rollback steps back once more: never resent after a timeout.
        path = f"/v1/aliases/{_q(alias)}/rollback"
        return Alias.from_json(self._http.request("POST", path, body, idempotent=False))


class Experiments:
    """Champion/challenger experiments on an alias (docs/lifecycle.md)."""

    def __init__(self, client: Client) -> None:
        self._http = client._http

    def start(
        self,
        alias: str,
        challenger: Union[str, Json],
        *,
        mode: str = "split",
        weight: Optional[int] = None,
        overlap_sample: Optional[float] = None,
        tau2: Optional[float] = None,
        guardrails: Optional[Json] = None,
    ) -> Experiment:
        """Starts an experiment; `challenger` is a collection name or `{"collection", "version"? | "line"?}`."""
        ch = {"collection": challenger} if isinstance(challenger, str) else challenger
        body = _drop_none(
            {"challenger": ch, "mode": mode, "weight": weight, "overlapSample": overlap_sample, "tau2": tau2,
             "guardrails": guardrails}
        )
        res = self._http.request("POST", f"/v1/aliases/{_q(alias)}/experiment", body, idempotent=False)
        return Experiment.from_json(res)

    def get(self, alias: str) -> Experiment:
        """The experiment with per-arm numbers and the sequential tests (each read is a look)."""
        return Experiment.from_json(self._http.request("GET", f"/v1/aliases/{_q(alias)}/experiment"))

    def promote(self, alias: str, *, reason: Optional[str] = None, force: Optional[bool] = None) -> Experiment:
        body = _drop_none({"reason": reason, "force": force}) or None
        path = f"/v1/aliases/{_q(alias)}/experiment/promote"
        return Experiment.from_json(self._http.request("POST", path, body, idempotent=False))

    def abort(self, alias: str, *, reason: Optional[str] = None) -> Experiment:
        body = _drop_none({"reason": reason}) or None
        path = f"/v1/aliases/{_q(alias)}/experiment/abort"
        return Experiment.from_json(self._http.request("POST", path, body, idempotent=False))


class Models:
    """The model registry: models, versions, artifacts."""

    def __init__(self, client: Client) -> None:
        self._http = client._http

    def list(self) -> List[Json]:
        return self._http.request("GET", "/v1/models").get("models", [])

    def get(self, model: str) -> Json:
        """The model with its versions and aliases."""
        return self._http.request("GET", f"/v1/models/{_q(model)}")

    def versions(self, model: str) -> List[ModelVersion]:
        res = self._http.request("GET", f"/v1/models/{_q(model)}/versions")
        return [ModelVersion.from_json(v) for v in res.get("versions", [])]

    def get_version(self, model: str, version: int) -> ModelVersion:
        return ModelVersion.from_json(self._http.request("GET", f"/v1/models/{_q(model)}/versions/{int(version)}"))

    def register(
        self,
        model: str,
        *,
        dimension: int,
        metric: str,
        artifact: Union[None, bytes, str, "os.PathLike[str]"] = None,
        framework: Optional[str] = None,
        description: Optional[str] = None,
        params: Optional[Json] = None,
        metrics: Optional[Dict[str, float]] = None,
        tags: Optional[Dict[str, str]] = None,
    ) -> ModelVersion:
        """Registers a new version of `model`. With an `artifact` (bytes, or the path of a file) uploads it
        straight to S3 through the presigned URL and commits it with its sha256, so the version comes back
        `ready` (or `verifying` for very large files); without one the version stays `pending`."""
        body = _drop_none(
            {"dimension": dimension, "metric": metric, "framework": framework, "description": description,
             "params": params, "metrics": metrics, "tags": tags}
        )
        created = self._http.request("POST", f"/v1/models/{_q(model)}/versions", body, idempotent=False)
        version = ModelVersion.from_json(created)
        if artifact is None:
            return version
        if isinstance(artifact, (bytes, bytearray)):
            data = bytes(artifact)
            digest = hashlib.sha256(data).hexdigest()
            size = len(data)
            reader: Callable[[], Any] = lambda: data  # noqa: E731
        else:
            file_path = os.fspath(artifact)
            digest = _sha256_file(file_path)
            size = os.path.getsize(file_path)
            reader = lambda: open(file_path, "rb")  # noqa: E731
        upload = created.get("upload") or {}
        self._http.put_bytes(upload["url"], reader, size, upload.get("headers") or {})
        return self.commit(model, version.version, digest)

    def commit(self, model: str, version: int, sha256: str) -> ModelVersion:
        path = f"/v1/models/{_q(model)}/versions/{int(version)}/commit"
        return ModelVersion.from_json(self._http.request("POST", path, {"sha256": sha256}))

    def upload_inline(self, model: str, version: int, artifact: bytes) -> Json:
        """Sends a small artifact (≤ 4 MB) through the API instead of S3; commit it afterwards."""
        body = {"artifact": base64.b64encode(artifact).decode("ascii")}
        return self._http.request("PUT", f"/v1/models/{_q(model)}/versions/{int(version)}/artifact", body)


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Keys:
    """API keys (admin keys only): create, list, revoke."""

    def __init__(self, client: Client) -> None:
        self._http = client._http

    def create(
        self,
        name: str,
        role: str = "read",
        *,
        collections: Optional[Sequence[str]] = None,
        expires_at: Optional[str] = None,
        rate_limit: Optional[Json] = None,
    ) -> ApiKey:
        """A new key; its secret is `.key`, shown this once. `role` is read, write or admin."""
        body = _drop_none(
            {"name": name, "role": role, "collections": list(collections) if collections is not None else None,
             "expiresAt": expires_at, "rateLimit": rate_limit}
        )
        return ApiKey.from_json(self._http.request("POST", "/v1/keys", body, idempotent=False))

    def list(self) -> List[ApiKey]:
        return [ApiKey.from_json(k) for k in self._http.request("GET", "/v1/keys").get("keys", [])]

    def revoke(self, key_id: str) -> Json:
        return self._http.request("DELETE", f"/v1/keys/{_q(key_id)}")
