"""Indexing, stage 4: rows into Milvus from several write tasks, failures into a Parquet table.

Writes are upserts by deterministic clip id, so a task that Ray retries, or a whole rerun, cannot
duplicate a clip. Transient Milvus errors are retried by `ClipStore` with back-off; when they
persist (`StoreUnavailable`), or a row is refused for good (a wrong vector size), the write task
raises and the job stops: every upsert acknowledged before that is already durable in Milvus.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlparse

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from ray.data import Datasink
from ray.data.block import Block, BlockAccessor

from coattn_dist.store import ClipStore

FAILURES_SCHEMA = pa.schema(
    [
        ("uri", pa.string()),
        ("clip_id", pa.string()),
        ("kind", pa.string()),
        ("message", pa.string()),
    ]
)
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def store_batch(store: ClipStore, columns: dict) -> tuple[list[str], list[dict], dict[str, str]]:
    """Upserts a batch's healthy rows; (their clip ids, the failure rows, the node that
    embedded each stored clip, from the optional ``node`` column)."""
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    good = [r for r in rows if not r["kind"]]
    bad = [{name: str(r[name]) for name in FAILURES_SCHEMA.names} for r in rows if r["kind"]]
    if good:
        store.upsert(good)
    nodes = {str(r["clip_id"]): str(r["node"]) for r in good if "node" in r}
    return [str(r["clip_id"]) for r in good], bad, nodes


class MilvusSink(Datasink[dict]):
    """Upserts healthy rows (clip_id, uri, label, vector, segments) into the collection and
    returns failure rows to the driver, where `failures` collects them for `write_failures`.

    `tally`: an optional actor with ``add(indexed_ids, failure_rows, node_of_id)``, told after
    every committed block, so the driver can report progress while the job streams and keep the
    failures should the job stop (``node_of_id``: the Ray node that embedded each indexed row,
    from the rows' optional ``node`` column).
    """

    def __init__(
        self,
        milvus_uri: str,
        collection: str,
        dim: int,
        store_options: dict | None = None,
        tally=None,
    ):
        self.milvus_uri, self.collection, self.dim = milvus_uri, collection, dim
        self.store_options = store_options or {}
        self.tally = tally
        self.indexed = self.write_tasks = 0
        self.failures: list[dict] = []

    def _store(self) -> ClipStore:
        return ClipStore(self.milvus_uri, self.collection, self.dim, **self.store_options)

    @property
    def supports_distributed_writes(self) -> bool:
        """A server on loopback (Milvus Lite's, for a `.db` path) is reachable from this node only."""
        return urlparse(self.milvus_uri).hostname not in _LOOPBACK

    def on_write_start(self, schema=None) -> None:
        with self._store() as store:
            store.create_if_absent()

    def write(self, blocks: Iterable[Block], ctx) -> dict:
        indexed, failures = 0, []
        with self._store() as store:
            for block in blocks:
                ids, bad, nodes = store_batch(store, BlockAccessor.for_block(block).to_numpy())
                indexed += len(ids)
                failures += bad
                if self.tally is not None:
                    self.tally.add.remote(ids, bad, nodes)
        return {"indexed": indexed, "failures": failures}

    def on_write_complete(self, write_result) -> None:
        self.write_tasks = len(write_result.write_returns)
        self.indexed = sum(r["indexed"] for r in write_result.write_returns)
        self.failures = [f for r in write_result.write_returns for f in r["failures"]]
        with self._store() as store:
            store.flush()  # sealed segments: unflushed rows make every Milvus Lite search slow


def write_failures(failures: list[dict], path: str, storage_options: dict | None = None) -> None:
    """The failures table (uri, clip_id, kind, message), empty when nothing failed, so a stale
    table from an earlier run is never mistaken for this one's."""
    table = pa.Table.from_pylist(failures, schema=FAILURES_SCHEMA)
    with fsspec.open(path, "wb", **(storage_options or {})) as f:
        pq.write_table(table, f)
