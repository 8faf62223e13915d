"""MilvusSink: several write tasks upsert into Milvus Lite's server; failures come back."""

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from coattn_dist.pipeline.writer import FAILURES_SCHEMA, MilvusSink, write_failures
from coattn_dist.store import ClipStore
from coattn_dist.store.lite_server import milvus_lite_server

DIM = 8


def embedded_rows(n: int) -> list[dict]:
    """Rows as the embed stage emits them; every 7th one failed upstream."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        failed = i % 7 == 3
        vector = rng.standard_normal(DIM).astype(np.float32)
        rows.append(
            {
                "clip_id": f"clip-{i:03d}",
                "uri": f"s3://b/{i}.flac",
                "label": "dog",
                "kind": "truncated" if failed else "",
                "message": f"{i}: cut" if failed else "",
                "vector": np.zeros(DIM, np.float32) if failed else vector / np.linalg.norm(vector),
                "segments": rng.standard_normal((0 if failed else 1 + i % 5, 512)).astype(
                    np.float32
                ),
            }
        )
    return rows


def test_parallel_write_tasks_upsert_every_good_row_once(tmp_path, ray_local):
    rows = embedded_rows(84)
    good = {r["clip_id"] for r in rows if not r["kind"]}
    with milvus_lite_server(tmp_path / "milvus") as uri:
        for _attempt in range(2):  # the second run rewrites the same ids: upserts, no duplicates
            sink = MilvusSink(uri, "clips", DIM)
            ray.data.from_items(rows, override_num_blocks=12).write_datasink(sink, concurrency=3)
            assert sink.write_tasks >= 3
            assert sink.indexed == len(good)
            assert {f["clip_id"] for f in sink.failures} == {r["clip_id"] for r in rows} - good
            assert len(sink.failures) == len(rows) - len(good)
        with ClipStore(uri, "clips", DIM) as store:
            assert store.count() == len(good)
            assert store.all_ids() == good
            stored = store.fetch(["clip-005"])["clip-005"]
            assert stored.uri == "s3://b/5.flac" and stored.segments.shape == (1, 512)

    write_failures(sink.failures, str(tmp_path / "failures.parquet"))
    table = pq.read_table(tmp_path / "failures.parquet")
    assert table.schema == FAILURES_SCHEMA
    assert set(table["kind"].to_pylist()) == {"truncated"}
    assert table.filter(pc.equal(table["clip_id"], "clip-003"))["message"].to_pylist() == ["3: cut"]
