"""The local layout's stream: real files read, decoded and embedded by worker threads, every batch
written once, in order; a failed write stops it with the earlier batches written. And the layout
choice."""

import os
import threading

import pyarrow as pa
import pytest

from coattn_dist.audio import DEFAULT_LIMITS
from coattn_dist.pipeline.local import stream_local
from coattn_dist.pipeline.runner import LOCAL_MAX_CPUS, choose_layout


def listing(paths: list[str]) -> pa.Table:
    return pa.table({"clip_id": [f"c{i}" for i in range(len(paths))], "uri": paths})


def run(todo: pa.Table, write, batch_size: int = 2) -> list[dict]:
    embedded = []

    def embed(batch: dict) -> dict:
        embedded.append(threading.current_thread().name)
        return {**batch, "n": [len(w) for w in batch["wave"]]}

    stream_local(
        todo,
        embed,
        write,
        sample_rate=16000,
        batch_size=batch_size,
        storage_options=None,
        limits=DEFAULT_LIMITS,
        workers=2,
    )
    return embedded


def test_every_batch_once_in_order_with_failures_as_rows(sample_dir):
    files = sorted(str(p) for p in (sample_dir / "audio").glob("*.flac"))[:6]
    todo = listing([*files[:3], str(sample_dir / "gone.flac"), *files[3:]])  # 4 batches
    written, threads = [], []

    def write(batch: dict) -> None:
        threads.append(threading.current_thread().name)
        written.extend(zip(batch["clip_id"], batch["kind"], batch["n"]))

    embedded = run(todo, write)
    assert [c for c, _, _ in written] == todo["clip_id"].to_pylist()  # none lost, none twice
    assert [(k, n) for c, k, n in written if c == "c3"] == [("unreadable", 0)]
    assert all(n == 5 * 16000 for c, k, n in written if c != "c3")
    # two threads read and embed, never the caller's; one other writes
    assert len(set(embedded)) == 2 and threading.current_thread().name not in embedded
    assert set(threads) == {"index-write_0"} and len(threads) == 4


def test_a_failed_write_stops_the_run_with_earlier_batches_written(sample_dir):
    files = sorted(str(p) for p in (sample_dir / "audio").glob("*.flac"))[:8]
    written = []

    def write(batch: dict) -> None:
        if len(written) == 2:
            raise ConnectionError("milvus went away")
        written.append(list(batch["clip_id"]))

    with pytest.raises(ConnectionError, match="went away"):
        run(listing(files), write)
    assert written == [["c0", "c1"], ["c2", "c3"]]


def test_layout_choice(monkeypatch):
    assert choose_layout("ray") == "ray" and choose_layout("local") == "local"
    with pytest.raises(ValueError, match="layout"):
        choose_layout("spark")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(LOCAL_MAX_CPUS)))
    assert choose_layout() == "local"  # no GPU on the test machines
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert choose_layout() == "ray"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert choose_layout() == "ray"  # a cluster is named: the job goes to it
