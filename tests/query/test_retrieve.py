"""Stage 1 in a real Milvus Lite: nearest clips first, segment features only when reranked."""

import numpy as np
import pytest

from coattn_dist.query.retrieve import retrieve
from coattn_dist.store import ClipStore

DIM = 8


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Clip i's vector is the i-th axis; its segments are (i + 1, 512) random features."""
    rng = np.random.default_rng(0)
    store = ClipStore(str(tmp_path_factory.mktemp("retrieve") / "milvus.db"), "clips", DIM)
    store.create_if_absent()
    store.upsert(
        [
            {
                "clip_id": f"clip-{i}",
                "vector": np.eye(DIM, dtype=np.float32)[i],
                "uri": f"/a/{i}.wav",
                "label": "",
                "segments": rng.standard_normal((i + 1, 512)).astype(np.float32),
            }
            for i in range(6)
        ]
    )
    store.flush()
    yield store
    store.close()


def query(*weights: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(weights)] = weights
    return v / np.linalg.norm(v)


def test_nearest_first_without_features_at_depth_0(store):
    hits = retrieve(store, np.stack([query(0.1, 0.2, 0.9), query(0.9, 0.3)]), k=2, rerank_depth=0)
    assert [[h.clip_id for h in hs] for hs in hits] == [["clip-2", "clip-1"], ["clip-0", "clip-1"]]
    assert all(h.segments is None for hs in hits for h in hs)
    assert hits[0][0].score == pytest.approx(0.9 / np.linalg.norm([0.1, 0.2, 0.9]), abs=1e-5)


def test_rerank_depth_widens_the_candidates_and_brings_their_features(store):
    [hits] = retrieve(store, query(0.1, 0.2, 0.9, 0.3, 0.05)[None], k=2, rerank_depth=4)
    assert [h.clip_id for h in hits] == ["clip-2", "clip-3", "clip-1", "clip-0"]
    assert [h.segments.shape for h in hits] == [(3, 512), (4, 512), (2, 512), (1, 512)]
    assert all(h.segments.dtype == np.float16 for h in hits)
