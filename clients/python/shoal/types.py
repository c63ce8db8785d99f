"""Typed views of the API's JSON answers.

Each dataclass names the fields a caller usually reads and keeps the whole answer in `raw`, so fields the
server adds later (or this module does not model) are one `obj.raw["…"]` away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, TypedDict, Union

Json = Dict[str, Any]
Metadata = Dict[str, Any]
Filter = Union[str, Dict[str, Any]]


def _get(d: Json, key: str, default: Any = None) -> Any:
    v = d.get(key, default)
    return default if v is None else v


@dataclass
class CollectionStats:
    count: int
    indexed: int
    pending: int
    shards: int
    version: int
    watermark: int
    raw: Json = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: Json) -> "CollectionStats":
        return cls(
            count=_get(d, "count", 0),
            indexed=_get(d, "indexed", 0),
            pending=_get(d, "pending", 0),
            shards=_get(d, "shards", 0),
            version=_get(d, "version", 0),
            watermark=_get(d, "watermark", 0),
            raw=d,
        )


@dataclass
class Collection:
    name: str
    dimension: int
    metric: str
    index: Json
    created_at: Optional[str] = None
    stats: Optional[CollectionStats] = None
    min_recall: Optional[float] = None
    model: Optional[Json] = None
    raw: Json = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: Json) -> "Collection":
        stats = d.get("stats")
        return cls(
            name=d["name"],
            dimension=d["dimension"],
            metric=d["metric"],
            index=_get(d, "index", {}),
            created_at=d.get("createdAt"),
            stats=CollectionStats.from_json(stats) if isinstance(stats, dict) else None,
            min_recall=d.get("minRecall"),
            model=d.get("model"),
            raw=d,
        )


@dataclass
class Vector:
    """A stored vector; `values` and `metadata` are None when the call did not ask for them."""

    id: str
    values: Optional[List[float]] = None
    metadata: Optional[Metadata] = None

    @classmethod
    def from_json(cls, d: Json) -> "Vector":
        return cls(id=str(d["id"]), values=d.get("values"), metadata=d.get("metadata"))

    def to_json(self) -> Json:
        out: Json = {"id": self.id, "values": self.values}
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@dataclass
class SearchHit:
    id: str
    score: float
    metadata: Optional[Metadata] = None
    values: Optional[List[float]] = None

    @classmethod
    def from_json(cls, d: Json) -> "SearchHit":
        return cls(id=str(d["id"]), score=d["score"], metadata=d.get("metadata"), values=d.get("values"))


@dataclass
class SearchResult:
    """One search call. `hits` are the first (or only) query's results, best first; `results` has one list per
    query; `served_by` says which collection/version/alias/arm answered; `query_id` is for `Client.feedback`."""

    results: List[List[SearchHit]]
    served_by: Json
    stats: Json
    query_id: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False)

    @property
    def hits(self) -> List[SearchHit]:
        return self.results[0] if self.results else []

    @property
    def ids(self) -> List[str]:
        return [h.id for h in self.hits]

    def __iter__(self) -> Iterator[SearchHit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    @classmethod
    def from_json(cls, d: Json, multi: bool) -> "SearchResult":
        raw_results = d.get("results") or []
        lists = raw_results if multi else [raw_results]
        return cls(
            results=[[SearchHit.from_json(h) for h in hits] for hits in lists],
            served_by=_get(d, "servedBy", {}),
            stats=_get(d, "stats", {}),
            query_id=d.get("queryId"),
            raw=d,
        )


@dataclass
class UpsertResult:
    upserted: int
    batches: int


@dataclass
class IndexRequest:
    """The answer to `build_index`: the build is queued; `version` is the version serving at that moment."""

    queued: bool
    version: int
    shards: int
    watermark: int
    candidate: Optional[Json] = None
    raw: Json = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: Json) -> "IndexRequest":
        return cls(
            queued=bool(d.get("queued")),
            version=_get(d, "version", 0),
            shards=_get(d, "shards", 0),
            watermark=_get(d, "watermark", 0),
            candidate=d.get("candidate"),
            raw=d,
        )


@dataclass
class IndexVersion:
    version: int
    parent: Optional[int]
    watermark: int
    engine: str
    params: Json
    shards: List[Json]
    created_at: Optional[str]
    kind: Optional[str]
    line: Optional[str] = None
    evaluation: Optional[Json] = None
    raw: Json = field(default_factory=dict, repr=False)

    @property
    def rows(self) -> int:
        return int(_get(_get(self.raw, "stats", {}), "liveRows", 0))

    @classmethod
    def from_json(cls, d: Json) -> "IndexVersion":
        return cls(
            version=d["version"],
            parent=d.get("parent"),
            watermark=_get(d, "watermark", 0),
            engine=_get(d, "engine", ""),
            params=_get(d, "params", {}),
            shards=_get(d, "shards", []),
            created_at=d.get("createdAt"),
            kind=_get(d, "stats", {}).get("kind"),
            line=d.get("line"),
            evaluation=d.get("evaluation"),
            raw=d,
        )


@dataclass
class Alias:
    name: str
    collection: str
    version: Optional[int]
    revision: int
    line: Optional[str] = None
    experiment: Optional[Json] = None
    created_at: Optional[str] = None
    updated_at: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: Json) -> "Alias":
        return cls(
            name=d["name"],
            collection=d["collection"],
            version=d.get("version"),
            revision=_get(d, "revision", 0),
            line=d.get("line"),
            experiment=d.get("experiment"),
            created_at=d.get("createdAt"),
            updated_at=d.get("updatedAt"),
            raw=d,
        )


class AliasEvent(TypedDict, total=False):
    revision: int
    at: str
    by: str
    action: str
    to: Json
    reason: str
    forced: bool


@dataclass
class Experiment:
    """`GET /v1/aliases/{alias}/experiment`: the experiment plus, when the server computed them, per-arm
    numbers (`arms`), the overlap and the click/convert tests (see docs/api.md, Experiments)."""

    id: str
    mode: str
    state: str
    champion: Json
    challenger: Json
    weight: Optional[int] = None
    reason: Optional[str] = None
    arms: Optional[Json] = None
    tests: Optional[Json] = None
    raw: Json = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: Json) -> "Experiment":
        e = d.get("experiment") if isinstance(d.get("experiment"), dict) else d
        return cls(
            id=e["id"],
            mode=_get(e, "mode", ""),
            state=_get(e, "state", ""),
            champion=_get(e, "champion", {}),
            challenger=_get(e, "challenger", {}),
            weight=e.get("weight"),
            reason=e.get("reason"),
            arms=d.get("arms"),
            tests=d.get("tests"),
            raw=d,
        )


@dataclass
class Feedback:
    attributed: bool
    experiment: Optional[str] = None
    alias: Optional[str] = None
    arm: Optional[str] = None

    @classmethod
    def from_json(cls, d: Json) -> "Feedback":
        return cls(
            attributed=bool(d.get("attributed")), experiment=d.get("experiment"), alias=d.get("alias"), arm=d.get("arm")
        )


FINAL_IMPORT_STATES = frozenset({"succeeded", "partial", "failed", "cancelled"})


@dataclass
class ImportJob:
    job_id: str
    collection: str
    uri: str
    state: str
    format: Optional[str] = None
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    percent: float = 0
    error: Optional[str] = None
    reason: Optional[str] = None
    report: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        return self.state in FINAL_IMPORT_STATES

    @classmethod
    def from_json(cls, d: Json) -> "ImportJob":
        return cls(
            job_id=d["jobId"],
            collection=_get(d, "collection", ""),
            uri=_get(d, "uri", ""),
            state=d["state"],
            format=d.get("format"),
            rows_read=_get(d, "rowsRead", 0),
            rows_written=_get(d, "rowsWritten", 0),
            rows_rejected=_get(d, "rowsRejected", 0),
            percent=_get(d, "percent", 0),
            error=d.get("error"),
            reason=d.get("reason"),
            report=d.get("report"),
            raw=d,
        )


class Reject(TypedDict, total=False):
    """One rejected import row: `line` (text formats, 1-based) or `row` (Parquet, .npy, 0-based)."""

    line: int
    row: int
    id: str
    code: str
    reason: str


@dataclass
class RejectsPage:
    rejects: List[Reject]
    next_cursor: Optional[str]
    rows_rejected: int
    reported: int


@dataclass
class UploadTicket:
    """Where to PUT an import file: `POST /v1/collections/{name}/imports/uploads`."""

    upload_url: str
    method: str
    headers: Dict[str, str]
    uri: str
    expires_at: Optional[str] = None

    @classmethod
    def from_json(cls, d: Json) -> "UploadTicket":
        return cls(
            upload_url=d["uploadUrl"],
            method=_get(d, "method", "PUT"),
            headers=_get(d, "headers", {}),
            uri=d["uri"],
            expires_at=d.get("expiresAt"),
        )


@dataclass
class ApiKey:
    """An API key's record; `key` (the secret, `shoal_…`) is set only on the answer that created it."""

    id: str
    name: str
    role: str
    collections: Optional[List[str]] = None
    key: Optional[str] = None
    created_at: Optional[str] = None
    expires_at: Optional[str] = None
    rate_limit: Optional[Json] = None
    last_used_at: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: Json) -> "ApiKey":
        return cls(
            id=d["id"],
            name=d["name"],
            role=d["role"],
            collections=d.get("collections"),
            key=d.get("key"),
            created_at=d.get("createdAt"),
            expires_at=d.get("expiresAt"),
            rate_limit=d.get("rateLimit"),
            last_used_at=d.get("lastUsedAt"),
            raw=d,
        )


@dataclass
class ModelVersion:
    model: str
    version: int
    state: str
    dimension: int
    metric: str
    artifact: Optional[Json] = None
    raw: Json = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: Json) -> "ModelVersion":
        m = d.get("model") if isinstance(d.get("model"), dict) else d
        return cls(
            model=_get(m, "name", _get(m, "model", "")),
            version=m["version"],
            state=_get(m, "state", ""),
            dimension=_get(m, "dimension", 0),
            metric=_get(m, "metric", ""),
            artifact=m.get("artifact"),
            raw=d,
        )
