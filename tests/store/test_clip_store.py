"""ClipStore on a Milvus Lite file: the embedded default."""

import math
import subprocess
import sys

import numpy as np
import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException, ParamError

from coattn_dist.store import (
    ClipStore,
    StoreUnavailable,
    decode_segments,
    encode_segments,
    is_transient,
)

DIM = 64


@pytest.fixture(scope="module")
def filled(tmp_path_factory, make_rows):
    store = ClipStore(str(tmp_path_factory.mktemp("lite") / "milvus.db"), "clips", DIM)
    store.create_if_absent()
    rows = make_rows(200)
    assert store.upsert(rows) == 200
    store.flush()
    yield store, rows
    store.close()


def test_count_and_ids(filled):
    store, rows = filled
    ids = [r["clip_id"] for r in rows]
    assert store.count() == 200
    assert store.all_ids() == set(ids)
    assert store.existing_ids(ids[:5] + ["clip-99999"]) == set(ids[:5])
    assert store.existing_ids([]) == set()


def test_search_returns_the_exact_neighbour_first_with_its_segments(filled):
    store, rows = filled
    picks = [0, 57, 199]
    results = store.search(np.stack([rows[i]["vector"] for i in picks]), k=5)
    assert len(results) == 3
    for i, hits in zip(picks, results):
        assert len(hits) == 5
        best = hits[0]
        assert best.clip_id == rows[i]["clip_id"] and best.uri == rows[i]["uri"]
        assert best.label == "dog" and math.isclose(best.score, 1.0, abs_tol=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        np.testing.assert_array_equal(
            best.segments, decode_segments(encode_segments(rows[i]["segments"]))
        )
        assert best.segments.shape == (min(1 + i % 40, 32), 512)


def test_search_without_segments_and_bad_queries(filled):
    store, rows = filled
    (hits,) = store.search(rows[3]["vector"], k=3, with_segments=False)
    assert hits[0].clip_id == rows[3]["clip_id"] and all(h.segments is None for h in hits)
    with pytest.raises(ValueError):
        store.search(np.zeros((1, DIM + 1)), k=3)
    with pytest.raises(ValueError):
        store.search(rows[3]["vector"], k=0)


def test_fetch_by_id(filled):
    store, rows = filled
    got = store.fetch([rows[7]["clip_id"], rows[8]["clip_id"], "clip-99999"])
    assert set(got) == {rows[7]["clip_id"], rows[8]["clip_id"]}
    hit = got[rows[8]["clip_id"]]
    assert hit.uri == rows[8]["uri"] and math.isnan(hit.score) and hit.segments.shape == (9, 512)
    assert (
        store.fetch([rows[7]["clip_id"]], with_segments=False)[rows[7]["clip_id"]].segments is None
    )
    assert hit.vector is None
    with_vector = store.fetch([rows[8]["clip_id"]], with_vectors=True)[rows[8]["clip_id"]]
    assert np.allclose(with_vector.vector, rows[8]["vector"], atol=1e-6)  # what search ranks by


def test_upsert_again_replaces_rows_instead_of_duplicating(tmp_path, make_rows):
    store = ClipStore(str(tmp_path / "m.db"), "clips", DIM)
    store.create_if_absent()
    store.upsert(make_rows(50))
    again = make_rows(50, seed=1, label="cat")
    store.upsert(again)
    assert store.count() == 50
    (hits,) = store.search(again[10]["vector"], k=1)
    assert hits[0].clip_id == again[10]["clip_id"] and hits[0].label == "cat"
    np.testing.assert_allclose(hits[0].segments, again[10]["segments"], rtol=1e-3, atol=1e-3)
    store.drop()
    store.create_if_absent()
    assert store.count() == 0


def test_existing_collection_with_another_dim_is_a_clear_error(tmp_path):
    uri = str(tmp_path / "m.db")
    ClipStore(uri, "clips", DIM).create_if_absent()
    ClipStore(uri, "clips", DIM).create_if_absent()  # same schema: fine, idempotent
    with pytest.raises(ValueError, match="vector dim 64 vs 32"):
        ClipStore(uri, "clips", 32).create_if_absent()


def test_explicit_hnsw_index(tmp_path, make_rows):
    store = ClipStore(str(tmp_path / "m.db"), "clips", DIM, index="HNSW")
    store.create_if_absent()
    rows = make_rows(100)
    store.upsert(rows)
    (hits,) = store.search(rows[42]["vector"], k=80)
    assert len(hits) == 80 and hits[0].clip_id == rows[42]["clip_id"]


def test_all_ids_pages_past_16384_rows(tmp_path):
    store = ClipStore(str(tmp_path / "m.db"), "tiny", 2)
    store.create_if_absent()
    ids = [f"{i:x}" for i in range(16_500)]
    store.upsert(
        [
            {"clip_id": i, "vector": [1.0, 0.0], "uri": "u", "segments": np.zeros((1, 1))}
            for i in ids
        ]
    )
    assert store.count() == 16_500
    assert store.all_ids() == set(ids)


@pytest.mark.parametrize("bad", ["", 'a"b', "a\\b", "x" * 65, "tab\there"])
def test_unsafe_clip_ids_are_refused(tmp_path, bad, make_rows):
    store = ClipStore(str(tmp_path / "m.db"), "clips", DIM)
    row = make_rows(1)[0] | {"clip_id": bad}
    with pytest.raises(ValueError, match="invalid clip_id"):
        store.upsert([row])


def test_bad_arguments(make_rows):
    with pytest.raises(ValueError):
        ClipStore("x.db", "clips", DIM, index="DISKANN")
    with pytest.raises(ValueError):
        ClipStore("x.db", "clips", DIM)._row(make_rows(1, dim=DIM + 1)[0])


def test_unreachable_server_is_store_unavailable():
    store = ClipStore(
        "http://127.0.0.1:9", "clips", DIM, attempts=2, backoff_s=0.05, connect_timeout_s=0.5
    )
    with pytest.raises(StoreUnavailable, match="after 2 attempts"):
        store.count()


def test_a_released_collection_is_reloaded_transparently(tmp_path, make_rows, caplog):
    uri = str(tmp_path / "m.db")
    store = ClipStore(uri, "clips", DIM)
    store.create_if_absent()
    rows = make_rows(20)
    store.upsert(rows)
    other = MilvusClient(uri=uri)
    other.release_collection("clips")  # what a server restart does to every collection
    (hits,) = store.search(rows[4]["vector"], k=1)
    assert hits[0].clip_id == rows[4]["clip_id"]
    assert "attempt 1/5" in caplog.text  # it did fail once, and recovered by itself
    other.close()


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (
            MilvusException(code=2, message="Fail connecting to server on x, server unavailable"),
            True,
        ),
        (MilvusException(code=101, message="collection not loaded"), True),
        (MilvusException(code=1, message="service not ready: unavailable"), True),
        (
            MilvusException(
                code=1, message="Unexpected error, message=<Cannot invoke RPC on closed channel!>"
            ),
            True,
        ),  # another thread dropped the connection
        (MilvusException(code=1, message="field vector: dim mismatch"), False),
        (ParamError(message="bad param"), False),
        (ConnectionResetError(), True),
        (ValueError("no"), False),
    ],
)
def test_transient_errors_are_told_from_permanent_ones(error, transient):
    assert is_transient(error) is transient


def test_pymilvus_is_tuned_when_a_store_connects_not_on_import(tmp_path):
    """Importing the store leaves pymilvus as other code in the process expects it."""
    script = f"""
import logging
from pymilvus.client import entity_helper
from coattn_dist.store import ClipStore
quiet = lambda: logging.getLogger("pymilvus").level == logging.CRITICAL
assert entity_helper.CHECK_STR_ARRAY and not quiet()
with ClipStore({str(tmp_path / "milvus.db")!r}, "clips", 4) as store:
    assert not store.exists()
assert not entity_helper.CHECK_STR_ARRAY and quiet()
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_versions_properties_and_delete(tmp_path, make_rows):
    with ClipStore(str(tmp_path / "milvus.db"), "clips", DIM) as store:
        store.create_if_absent()
        rows = make_rows(5)
        rows[0] = {**rows[0], "size": 1234, "version": '"etag-1"'}
        store.upsert(rows)
        versions = store.versions([r["clip_id"] for r in rows[:2]] + ["clip-none"])
        assert versions == {rows[0]["clip_id"]: (1234, '"etag-1"'), rows[1]["clip_id"]: (-1, "")}
        store.set_properties(**{"coattn.roots": '["/data"]'})
        store.set_properties(**{"coattn.checkpoint": "abc"})
        assert store.properties() == {"coattn.roots": '["/data"]', "coattn.checkpoint": "abc"}
        store.delete([rows[1]["clip_id"], "clip-none"])
        assert {r["clip_id"] for r in store.scan(["clip_id", "uri"])} == {
            r["clip_id"] for r in rows
        } - {rows[1]["clip_id"]}
        with pytest.raises(ValueError):
            store.delete(['bad"id'])
