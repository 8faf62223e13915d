"""`ClipStore`: one Milvus collection per index, one row per clip.

A row holds the clip's pooled vector for ANN search *and* its segment features for the reranker
(see `codec`), so a search returns the top-N candidates with everything stage 2 needs in one
round trip. The same code runs on a Milvus Lite file (`./milvus.db`, one process), Milvus
Lite's server or a real Milvus (`http://host:port`, many processes).

Failures are split in two: transient ones (connection refused or reset, timeouts, the server
restarting, a collection released by a restart) are retried with exponential back-off on a
fresh connection that reloads the collection, then surface as `StoreUnavailable` (the service
answers 503, the index job stops cleanly); permanent ones (an existing collection with another
schema) raise `ValueError` at once.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.client import entity_helper
from pymilvus.exceptions import MilvusException

from .codec import MAX_CHARS, decode_segments, encode_segments
from .rows import ID_MAX_BYTES, LABEL_MAX_BYTES, URI_MAX_BYTES, VERSION_MAX_BYTES, check_clip_id

log = logging.getLogger(__name__)

T = TypeVar("T")

TOKEN_ENV = "COATTN_MILVUS_TOKEN"
INDEX_TYPES = ("FLAT", "IVF_FLAT", "HNSW")
_BUILD_PARAMS = {"FLAT": {}, "IVF_FLAT": {"nlist": 1024}, "HNSW": {"M": 16, "efConstruction": 200}}
_UPSERT_BATCH = 256  # <= 12 MB per request even with 32 segments of 512-d per clip
_ID_CHUNK = 1000  # ids per `clip_id in [...]` filter

# Milvus "service unavailable" (also pymilvus' CONNECT_FAILED), rate limited, and "collection
# not loaded" (a restarted server forgets what was loaded). Code 1 means both "unexpected" and
# "not ready": only its message can tell.
_TRANSIENT_CODES = {2, 8, 101}
_TRANSIENT_GRPC = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}
# "closed channel": another thread's failed call dropped the shared connection mid-flight (the
# service's concurrent searches meet it under load); a fresh connection serves the retry.
_TRANSIENT_WORDS = (
    "unavailable",
    "connection refused",
    "connection reset",
    "timed out",
    "timeout",
    "deadline exceeded",
    "not loaded",
    "fail connecting",
    "closed channel",
)


@functools.cache
def _tune_pymilvus() -> None:
    """Process-wide settings, so applied when a store first connects rather than on import."""
    # pymilvus logs every failed RPC with a full traceback at ERROR; we retry and then raise.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    # pymilvus 3.0.2's row path "checks" a VARCHAR value by iterating over its characters: 95 %
    # of an upsert's time with 44 kB segment strings (256 rows: 7.2 s -> 0.35 s without it).
    # `_row` checks the lengths itself and the server enforces max_length anyway.
    entity_helper.CHECK_STR_ARRAY = False


class StoreUnavailable(Exception):
    """Milvus did not answer within the retry budget; callers map it to HTTP 503 / a clean stop."""


@dataclass(frozen=True, eq=False)  # compared by identity: the segments array has no truth value
class Hit:
    """One clip as the service and the reranker see it; `score` is the inner product of
    L2-normalised vectors (cosine), NaN for rows fetched by id."""

    clip_id: str
    score: float
    uri: str
    label: str
    segments: np.ndarray | None = None
    vector: np.ndarray | None = None  # the stored stage-1 vector, when fetched with it


def is_transient(error: BaseException) -> bool:
    """Whether the same call may succeed later (after a reconnect and reload)."""
    if isinstance(error, (ConnectionError, TimeoutError, grpc.FutureTimeoutError)):
        return True
    if isinstance(error, grpc.RpcError):
        return error.code() in _TRANSIENT_GRPC
    if isinstance(error, MilvusException):
        if error.retriable or error.code in _TRANSIENT_GRPC or error.code in _TRANSIENT_CODES:
            return True
        message = str(error.message).lower()
        return any(word in message for word in _TRANSIENT_WORDS)
    return False


def _ids_filter(ids: Sequence[str]) -> str:
    return "clip_id in [" + ",".join(json.dumps(i, ensure_ascii=False) for i in ids) + "]"


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    return (items[i : i + size] for i in range(0, len(items), size))


class ClipStore:
    """The Milvus side of an index: create, upsert, look up, search.

    `uri`: a Milvus Lite path ending in `.db` (a directory) or `http://host:port`.
    `index`: "auto" (FLAT on Milvus Lite, which only brute-forces well, HNSW on a real Milvus),
    or one of "FLAT", "IVF_FLAT", "HNSW". Thread-safe; reconnects by itself, so one object
    survives a server restart.
    """

    def __init__(
        self,
        uri: str,
        collection: str,
        dim: int,
        token: str | None = None,
        index: str = "auto",
        *,
        attempts: int = 5,
        backoff_s: float = 0.2,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if index != "auto" and index not in INDEX_TYPES:
            raise ValueError(f"index must be 'auto' or one of {INDEX_TYPES}, got {index!r}")
        self.uri, self.collection, self.dim, self.index = str(uri), collection, int(dim), index
        # the credentials of a Milvus with authentication ("user:password" or an API key): from
        # the environment unless given, so no command line (visible in `ps`) has to carry them
        self._token = os.environ.get(TOKEN_ENV, "") if token is None else token
        self.attempts, self.backoff_s = attempts, backoff_s
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self._client: MilvusClient | None = None
        self._index_type = "FLAT"
        self._lock = threading.Lock()

    # -- connection and retries -------------------------------------------------------------

    def _connected(self) -> MilvusClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> MilvusClient:
        """A connection of our own (closing it really closes it), with the collection loaded:
        after a restart the server has forgotten what was loaded."""
        _tune_pymilvus()
        if self.uri.endswith(".db"):
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        client = MilvusClient(
            uri=self.uri, token=self._token, dedicated=True, timeout=self.connect_timeout_s
        )
        try:
            if client.has_collection(self.collection, timeout=self.timeout_s):
                indexes = client.list_indexes(
                    self.collection, field_name="vector", timeout=self.timeout_s
                )
                if indexes:  # a real Milvus refuses to load an unindexed collection
                    client.load_collection(self.collection, timeout=self.timeout_s)
                    self._index_type = client.describe_index(
                        self.collection, indexes[0], timeout=self.timeout_s
                    )["index_type"]
        except Exception:
            client.close()
            raise
        return client

    def _discard(self, client: MilvusClient | None) -> None:
        """Drop a connection that failed, unless another thread has already replaced it."""
        with self._lock:
            if client is not None and self._client is client:
                self._client = None
                try:
                    client.close()
                except Exception as error:  # a broken channel may fail to close; it is gone
                    log.debug("closing a failed Milvus connection: %s", error)

    def _retry(self, fn: Callable[[MilvusClient], T]) -> T:
        """Run fn(client); on a transient error back off, reconnect (and reload), and try again."""
        delay, start, error = self.backoff_s, time.monotonic(), None
        for attempt in range(1, self.attempts + 1):
            client = None
            try:
                client = self._connected()
                return fn(client)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                error = exc
                self._discard(client)
            if attempt < self.attempts:
                log.warning(
                    "Milvus at %s unavailable (attempt %d/%d), retrying in %.1f s: %s",
                    self.uri,
                    attempt,
                    self.attempts,
                    delay,
                    error,
                )
                time.sleep(delay)
                delay *= 2
        raise StoreUnavailable(
            f"Milvus at {self.uri} unavailable after {self.attempts} attempts over "
            f"{time.monotonic() - start:.1f} s (collection {self.collection!r}): {error}"
        ) from error

    # -- collection lifecycle ---------------------------------------------------------------

    def _schema(self):
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("clip_id", DataType.VARCHAR, max_length=ID_MAX_BYTES, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("uri", DataType.VARCHAR, max_length=URI_MAX_BYTES)
        schema.add_field("label", DataType.VARCHAR, max_length=LABEL_MAX_BYTES)
        schema.add_field("segments", DataType.VARCHAR, max_length=MAX_CHARS)
        schema.add_field("n_segments", DataType.INT64)
        schema.add_field("size", DataType.INT64)  # bytes of the file when indexed (-1: unknown)
        schema.add_field("version", DataType.VARCHAR, max_length=VERSION_MAX_BYTES)
        return schema

    def _check_schema(self, description: dict) -> None:
        fields = {f["name"]: f for f in description["fields"]}
        missing = {f.name for f in self._schema().fields} - fields.keys()
        dim = int(fields.get("vector", {}).get("params", {}).get("dim", -1))
        if missing or dim != self.dim:
            raise ValueError(
                f"collection {self.collection!r} at {self.uri} does not match this store "
                f"(vector dim {dim} vs {self.dim}, missing fields {sorted(missing)}): "
                "use another collection name or drop it"
            )

    def _pick_index(self, client: MilvusClient) -> str:
        if self.index != "auto":
            return self.index
        is_lite = client.get_server_version(timeout=self.timeout_s).startswith("milvus_lite")
        return "FLAT" if is_lite else "HNSW"

    def _vector_indexes(self, client: MilvusClient) -> list[str]:
        return client.list_indexes(self.collection, field_name="vector", timeout=self.timeout_s)

    def _ensure_index(self, client: MilvusClient) -> None:
        """Index the vector field while the collection is still empty: building it after a bulk
        insert is far slower (PLATFORM.md). Kept apart from creating the collection so that a
        retried or racing create still ends with exactly one index."""
        if not self._vector_indexes(client):
            kind = self._pick_index(client)
            params = client.prepare_index_params()
            params.add_index(
                "vector", index_type=kind, metric_type="IP", params=_BUILD_PARAMS[kind]
            )
            try:
                client.create_index(self.collection, params, timeout=self.timeout_s)
            except MilvusException:
                if not self._vector_indexes(client):
                    raise  # not a lost race with another process: a real error
        self._index_type = client.describe_index(
            self.collection, self._vector_indexes(client)[0], timeout=self.timeout_s
        )["index_type"]

    def create_if_absent(self) -> None:
        """Create (or check) the collection and its index, and load it; safe to race."""

        def create(client: MilvusClient) -> None:
            if not client.has_collection(self.collection, timeout=self.timeout_s):
                try:
                    client.create_collection(
                        self.collection,
                        schema=self._schema(),
                        consistency_level="Bounded",
                        timeout=self.timeout_s,
                    )
                except MilvusException:
                    if not client.has_collection(self.collection, timeout=self.timeout_s):
                        raise  # not a lost race with another process: a real error
            self._check_schema(client.describe_collection(self.collection, timeout=self.timeout_s))
            self._ensure_index(client)
            client.load_collection(self.collection, timeout=self.timeout_s)

        self._retry(create)

    def properties(self) -> dict[str, str]:
        """The collection's own key-value properties (``coattn.roots``, ...)."""
        description = self._retry(
            lambda c: c.describe_collection(self.collection, timeout=self.timeout_s)
        )
        return dict(description.get("properties") or {})

    def set_properties(self, **properties: str) -> None:
        self._retry(
            lambda c: c.alter_collection_properties(
                self.collection, properties=properties, timeout=self.timeout_s
            )
        )

    def exists(self) -> bool:
        """Whether the collection is there (searching a missing one is a user error, not an outage)."""
        return self._retry(lambda c: c.has_collection(self.collection, timeout=self.timeout_s))

    def flush(self) -> None:
        """Seal what was written: unflushed rows make every Milvus Lite search take seconds."""
        self._retry(lambda c: c.flush(self.collection, timeout=self.timeout_s))

    def drop(self) -> None:
        def drop(client: MilvusClient) -> None:
            if client.has_collection(self.collection, timeout=self.timeout_s):
                client.drop_collection(self.collection, timeout=self.timeout_s)

        self._retry(drop)

    def close(self) -> None:
        self._discard(self._client)

    @property
    def index_type(self) -> str:
        """The vector index in use ("FLAT", "IVF_FLAT", "HNSW"), known once connected."""
        return self._index_type

    def __enter__(self) -> ClipStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writes -----------------------------------------------------------------------------

    def _row(self, row: dict) -> dict:
        vector = np.asarray(row["vector"], dtype=np.float32)
        if vector.shape != (self.dim,):
            raise ValueError(
                f"clip {row['clip_id']!r}: vector shape {vector.shape}, expected ({self.dim},)"
            )
        uri, label = str(row["uri"]), str(row.get("label") or "")
        if len(uri.encode()) > URI_MAX_BYTES or len(label.encode()) > LABEL_MAX_BYTES:
            raise ValueError(
                f"clip {row['clip_id']!r}: uri or label too long "
                f"(max {URI_MAX_BYTES} / {LABEL_MAX_BYTES} bytes)"
            )
        segments = encode_segments(row["segments"])
        return {
            "clip_id": check_clip_id(row["clip_id"]),
            "vector": vector.tolist(),
            "uri": uri,
            "label": label,
            "segments": segments,
            "n_segments": int(segments.partition(",")[0]),
            "size": int(row.get("size", -1)),
            "version": str(row.get("version") or "")[:VERSION_MAX_BYTES],
        }

    def upsert(self, rows: Sequence[dict]) -> int:
        """Write rows (clip_id, vector, uri, label, segments as an (n, d) array); an id written
        before is replaced, never duplicated, so a rerun is harmless. Returns rows written."""
        encoded = [self._row(row) for row in rows]
        for batch in _chunks(encoded, _UPSERT_BATCH):
            self._retry(
                lambda c, b=batch: c.upsert(self.collection, list(b), timeout=self.timeout_s)
            )
        return len(encoded)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove the rows of `ids` (unknown ids are ignored)."""
        for chunk in _chunks([check_clip_id(i) for i in ids], _ID_CHUNK):
            self._retry(
                lambda c, ids=chunk: c.delete(
                    self.collection, filter=_ids_filter(ids), timeout=self.timeout_s
                )
            )

    # -- reads ------------------------------------------------------------------------------

    def count(self) -> int:
        """Exact row count, including this process' latest writes."""
        res = self._retry(
            lambda c: c.query(
                self.collection,
                filter="",
                output_fields=["count(*)"],
                consistency_level="Strong",
                timeout=self.timeout_s,
            )
        )
        return int(res[0]["count(*)"])

    def _query_ids(self, ids: Sequence[str], fields: list[str], **kwargs) -> list[dict]:
        ids = [check_clip_id(i) for i in dict.fromkeys(ids)]
        rows: list[dict] = []
        for chunk in _chunks(ids, _ID_CHUNK):
            rows += self._retry(
                lambda c, ch=chunk: c.query(
                    self.collection,
                    filter=_ids_filter(ch),
                    output_fields=fields,
                    timeout=self.timeout_s,
                    **kwargs,
                )
            )
        return rows

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are stored."""
        return set(self.versions(ids))

    def versions(self, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """(size, version) of the file each stored id was indexed from: what a resumed index job
        compares with the listing to skip a clip or embed it again."""
        rows = self._query_ids(ids, ["clip_id", "size", "version"], consistency_level="Strong")
        return {r["clip_id"]: (int(r["size"]), r["version"]) for r in rows}

    def scan(self, fields: list[str], batch_size: int = 5000) -> list[dict]:
        """`fields` of every row, paged by primary key (plain queries stop at 16,384 rows)."""

        def scan(client: MilvusClient) -> list[dict]:
            it = client.query_iterator(
                self.collection,
                batch_size=batch_size,
                output_fields=fields,
                consistency_level="Strong",
                timeout=self.timeout_s,
            )
            rows: list[dict] = []
            try:
                while batch := it.next():
                    rows += batch
            finally:
                it.close()
            return rows

        return self._retry(scan)

    def all_ids(self) -> set[str]:
        return {r["clip_id"] for r in self.scan(["clip_id"])}

    def fetch(
        self, ids: Sequence[str], with_segments: bool = True, with_vectors: bool = False
    ) -> dict[str, Hit]:
        """Rows by id (missing ids are absent from the result); score is NaN."""
        fields = ["clip_id", "uri", "label"] + (["segments"] if with_segments else [])
        fields += ["vector"] if with_vectors else []
        return {r["clip_id"]: _hit(r, math.nan) for r in self._query_ids(ids, fields)}

    def search(self, vectors: np.ndarray, k: int, with_segments: bool = True) -> list[list[Hit]]:
        """Top-k clips per query vector by inner product (cosine on normalised vectors), best
        first, with their decoded segment features unless with_segments is False."""
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"query vectors must be (Q, {self.dim}), got {queries.shape}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        fields = ["uri", "label"] + (["segments"] if with_segments else [])
        res = self._retry(
            lambda c: c.search(  # params after connecting: it learns the index
                self.collection,
                data=queries.tolist(),
                limit=k,
                anns_field="vector",
                output_fields=fields,
                search_params=self._search_params(k),
                timeout=self.timeout_s,
            )
        )
        return [
            [_hit({"clip_id": _primary_key(h), **h["entity"]}, h["distance"]) for h in hits]
            for hits in res
        ]

    def _search_params(self, k: int) -> dict:
        params = {
            "HNSW": {"ef": max(64, k)},  # ef below k would return fewer than k hits
            "IVF_FLAT": {"nprobe": 16},
        }.get(self._index_type, {})
        return {"metric_type": "IP", "params": params}


def _primary_key(hit) -> str:
    """Milvus Lite keys a hit by the primary field's name; Milvus 2.3 servers call it "id"."""
    return hit["clip_id"] if "clip_id" in hit.keys() else hit["id"]


def _hit(row: dict, score: float) -> Hit:
    text = row.get("segments")
    return Hit(
        clip_id=row["clip_id"],
        score=float(score),
        uri=row["uri"],
        label=row["label"],
        segments=None if text is None else decode_segments(text),
        vector=None if row.get("vector") is None else np.asarray(row["vector"], np.float32),
    )
