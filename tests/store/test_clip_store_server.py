"""ClipStore against Milvus Lite's server: several writers at once, an outage, a restart."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from coattn_dist.store import ClipStore, StoreUnavailable
from coattn_dist.store.lite_server import free_port, milvus_lite_server

DIM = 64


def test_parallel_writers_lose_nothing(tmp_path, make_rows):
    with milvus_lite_server(tmp_path / "milvus") as uri:
        ClipStore(uri, "clips", DIM).create_if_absent()

        def write(worker):
            with ClipStore(uri, "clips", DIM) as store:
                store.create_if_absent()  # every index worker calls it: must be safe to race
                rows = make_rows(150, start=worker * 150, seed=worker)
                for i in range(0, len(rows), 30):
                    store.upsert(rows[i : i + 30])
                return [r["clip_id"] for r in rows]

        with ThreadPoolExecutor(4) as pool:
            ids = [i for chunk in pool.map(write, range(4)) for i in chunk]
        with ClipStore(uri, "clips", DIM) as store:
            assert store.count() == 600
            assert store.all_ids() == set(ids)


def test_outage_then_recovery_with_the_same_object(tmp_path, make_rows):
    data, port = tmp_path / "milvus", free_port()
    rows = make_rows(40)
    with milvus_lite_server(data, port) as uri:
        store = ClipStore(uri, "clips", DIM, attempts=3, backoff_s=0.1, connect_timeout_s=1.0)
        store.create_if_absent()
        store.upsert(rows[:30])
        # not flushed: Milvus Lite's WAL keeps the rows across the SIGTERM

    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unavailable after 3 attempts"):
        store.search(rows[0]["vector"], k=3)
    assert time.monotonic() - started < 10

    with milvus_lite_server(data, port):
        assert store.count() == 30  # reconnected, reloaded, data still there
        (hits,) = store.search(rows[5]["vector"], k=3)
        assert hits[0].clip_id == rows[5]["clip_id"] and hits[0].segments is not None
        store.upsert(rows[30:])
        assert store.count() == 40
    store.close()
