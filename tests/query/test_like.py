"""Queries by sound: the segment max-sim and the ranking of Milvus' candidates, on arrays whose
answers are known."""

import numpy as np
import pytest

from coattn_dist.query.like import AudioRanking, like_depth, rank_like, segment_similarity
from coattn_dist.store import Hit


def brute_force(query: np.ndarray, clip: np.ndarray) -> float:
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit(query) @ unit(clip).T
    return (sims.max(axis=1).mean() + sims.max(axis=0).mean()) / 2


def test_segment_similarity_is_symmetric_max_sim():
    rng = np.random.default_rng(0)
    query = rng.standard_normal((3, 16))
    clips = [rng.standard_normal((n, 16)) for n in (1, 4, 7)]
    clips.append(np.concatenate([query, rng.standard_normal((2, 16))]))  # holds the query
    got = segment_similarity(query, clips)
    np.testing.assert_allclose(got, [brute_force(query, c) for c in clips], rtol=1e-5)
    assert segment_similarity(query, [query])[0] == pytest.approx(1.0)
    assert got.argmax() == 3  # the recording the take occurs in beats unrelated ones


def hits(rng, n=6, dim=16):
    return [
        Hit(f"c{i}", 0.9 - 0.1 * i, f"/a/{i}.wav", "x", rng.standard_normal((2, dim)))
        for i in range(n)
    ]


def test_rank_like_drops_the_query_and_rescores_within_depth():
    rng = np.random.default_rng(1)
    candidates = hits(rng)
    query = candidates[4].segments  # c4 is the query's twin, low in stage 1
    alone = rank_like(query, candidates, 3, AudioRanking(1.0, 50), exclude="c0")
    assert [r.clip_id for r in alone] == ["c1", "c2", "c3"]  # stage 1's order, c0 gone
    mixed = rank_like(query, candidates, 3, AudioRanking(0.0, 50), exclude="c0")
    assert mixed[0].clip_id == "c4" and mixed[0].score == pytest.approx(1.0)
    assert mixed[0].stage1_score == pytest.approx(0.5)
    shallow = rank_like(query, candidates, 6, AudioRanking(0.0, 2), exclude="c0")
    # only c1 and c2 rescored; the rest follow in stage 1's order
    assert [r.clip_id for r in shallow][2:] == ["c3", "c4", "c5"]


def test_like_depth_fetches_features_only_when_they_are_used():
    assert like_depth(AudioRanking(1.0, 50)) == 0
    assert like_depth(AudioRanking(0.5, 0)) == 0
    assert like_depth(AudioRanking(0.5, 50)) == 51
