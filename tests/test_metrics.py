import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from coattn_dist.metrics import (
    clip_classification_accuracy,
    map_at_k,
    map_at_k_dcase,
    recall_at_k,
    retrieval_metrics,
)


def one_query(num_clips, relevant_idx, scores=None):
    """Scores descending by clip index unless given, so clip i sits at rank i + 1."""
    s = (
        np.arange(num_clips, 0, -1, dtype=np.float64)
        if scores is None
        else np.asarray(scores, np.float64)
    )
    rel = np.zeros(s.shape, dtype=bool)
    rel[list(relevant_idx)] = True
    return s[None], rel[None]


# Scores from a tiny integer range so that ties are frequent; every query gets >= 1 relevant clip.
@st.composite
def score_relevance(draw, one_relevant=False):
    q = draw(st.integers(1, 5))
    n = draw(st.integers(1, 12))
    s = draw(arrays(np.float64, (q, n), elements=st.integers(0, 3).map(float)))
    if one_relevant:
        rel = np.zeros((q, n), dtype=bool)
        rel[np.arange(q), draw(arrays(np.int64, q, elements=st.integers(0, n - 1)))] = True
    else:
        rel = draw(arrays(np.bool_, (q, n)))
        rel[np.arange(q), draw(arrays(np.int64, q, elements=st.integers(0, n - 1)))] = True
    return s, rel


def reference_metrics(s, rel, ks, map_k):
    """Per-query loop straight from the definitions, to check the vectorised code."""
    recalls = {k: [] for k in ks}
    aps = []
    for row, r in zip(s, rel):
        ranks = sorted(int((row >= row[j]).sum()) for j in np.flatnonzero(r))
        for k in ks:
            recalls[k].append(ranks[0] <= k)
        ap = sum(sum(x <= rk for x in ranks) / rk for rk in ranks if rk <= map_k)
        aps.append(ap / min(len(ranks), map_k))
    out = {f"R@{k}": float(np.mean(v)) for k, v in recalls.items()}
    out[f"mAP@{map_k}"] = float(np.mean(aps))
    return out


def test_perfect_ranking():
    s, rel = np.eye(4) + 0.1, np.eye(4, dtype=bool)
    m = retrieval_metrics(s, rel)
    assert m == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "mAP@10": 1.0, "mAP@10_dcase": 1.0}
    assert all(type(v) is float for v in m.values())
    assert clip_classification_accuracy(s, rel) == 1.0


def test_relevant_at_rank_3():
    s, rel = one_query(5, [2])
    assert map_at_k_dcase(s, rel) == pytest.approx(1 / 3)
    assert map_at_k(s, rel) == pytest.approx(1 / 3)
    assert recall_at_k(s, rel, 2) == 0.0
    assert recall_at_k(s, rel, 3) == 1.0


def test_relevant_at_rank_11_is_outside_top_10():
    s, rel = one_query(12, [10])
    m = retrieval_metrics(s, rel)
    assert m["R@10"] == 0.0 and m["mAP@10"] == 0.0 and m["mAP@10_dcase"] == 0.0
    assert recall_at_k(s, rel, 11) == 1.0
    assert map_at_k_dcase(s, rel, k=11) == pytest.approx(1 / 11)


def test_tie_with_two_other_clips_is_pessimistic():
    # Relevant clip 2 ties clips 1 and 3 at 0.5: rank = 1 (higher) + 2 (tied others) + 1 = 4.
    s, rel = one_query(5, [2], scores=[0.9, 0.5, 0.5, 0.5, 0.1])
    assert map_at_k_dcase(s, rel) == pytest.approx(1 / 4)
    assert recall_at_k(s, rel, 3) == 0.0
    assert recall_at_k(s, rel, 4) == 1.0


def test_two_relevant_clips_tied_at_the_top():
    # Both share rank 2: neither is in the top 1, but both are hits within rank 2.
    s, rel = one_query(3, [0, 1], scores=[1.0, 1.0, 0.5])
    assert recall_at_k(s, rel, 1) == 0.0
    assert recall_at_k(s, rel, 2) == 1.0
    assert map_at_k(s, rel, k=1) == 0.0
    assert map_at_k(s, rel, k=2) == 1.0


def test_two_relevant_clips_tied_with_a_non_relevant_one():
    # All three tied at the top get rank 3; each relevant clip sees 2 hits by rank 3.
    s, rel = one_query(4, [0, 1], scores=[1.0, 1.0, 1.0, 0.0])
    assert map_at_k(s, rel) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert recall_at_k(s, rel, 2) == 0.0


def test_constant_scorer_gets_the_worst_rank():
    s, rel = np.zeros((10, 10)), np.eye(10, dtype=bool)
    m = retrieval_metrics(s, rel)
    assert m["R@1"] == 0.0 and m["R@5"] == 0.0
    assert m["R@10"] == 1.0  # rank 10 of 10 is still inside the top 10
    assert m["mAP@10"] == pytest.approx(0.1)
    assert clip_classification_accuracy(s, rel) == 0.0


def test_several_relevant_clips_hand_computed_ap():
    s, rel = one_query(10, [0, 2, 5])  # ranks 1, 3, 6; R = 3
    assert map_at_k(s, rel, k=10) == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    # k = 5 drops the rank-6 hit but still divides by min(R, k) = 3.
    assert map_at_k(s, rel, k=5) == pytest.approx((1 + 2 / 3) / 3)
    m = retrieval_metrics(s, rel)
    assert "mAP@10_dcase" not in m
    assert m["mAP@10"] == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)


def test_more_relevant_clips_than_k_uses_min_r_k():
    s, rel = one_query(10, [0, 1, 2])  # R = 3 > k = 2
    assert map_at_k(s, rel, k=2) == 1.0
    s, rel = one_query(10, [1, 2, 3])  # ranks 2, 3, 4: only P@2 = 1/2 counts
    assert map_at_k(s, rel, k=2) == pytest.approx(0.5 / 2)


def test_clip_classification_accuracy_hand_case():
    # Rows are queries (class captions), columns clips.
    s = np.array(
        [
            [0.9, 0.1, 0.5, 0.9],
            [0.2, 0.3, 0.5, 0.1],
            [0.1, 0.8, 0.2, 0.3],
        ]
    )
    rel = np.array(
        [
            [True, False, False, False],
            [False, True, True, False],
            [False, False, False, False],
        ]
    )
    # clip 0: best query 0, relevant -> correct; clip 1: best query 2, wrong;
    # clip 2: relevant query 1 ties irrelevant query 0 -> wrong; clip 3 has no relevant query.
    assert clip_classification_accuracy(s, rel) == pytest.approx(1 / 3)


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((6, 15)).astype(np.float32)
    s[:, 5] = s[:, 6]  # include ties
    rel = rng.random((6, 15)) < 0.3
    rel[:, 0] = True
    expected = retrieval_metrics(s, rel)
    assert (
        retrieval_metrics(torch.from_numpy(s).requires_grad_(), torch.from_numpy(rel)) == expected
    )
    assert clip_classification_accuracy(
        torch.from_numpy(s), torch.from_numpy(rel)
    ) == clip_classification_accuracy(s, rel)
    # bfloat16 has no numpy counterpart; it must still be accepted.
    bf = torch.from_numpy(s).bfloat16()
    assert retrieval_metrics(bf, torch.from_numpy(rel)) == retrieval_metrics(
        bf.float().numpy(), rel
    )


def test_errors():
    s, rel = np.zeros((3, 4)), np.zeros((3, 4), dtype=bool)
    rel[0, 0] = True
    for fn in (recall_at_k, map_at_k, map_at_k_dcase):
        with pytest.raises(ValueError, match="2 of 3 queries have no relevant clip"):
            fn(s, rel, 1)
    with pytest.raises(ValueError, match="no relevant clip"):
        retrieval_metrics(s, rel)

    s, rel = one_query(4, [0, 1])
    with pytest.raises(
        ValueError, match="1 queries have more than one relevant clip.*use map_at_k"
    ):
        map_at_k_dcase(s, rel)
    with pytest.raises(ValueError, match="k must be >= 1"):
        recall_at_k(s, rel, 0)
    with pytest.raises(ValueError, match="shape"):
        map_at_k(s, rel[:, :2])
    with pytest.raises(TypeError, match="boolean"):
        map_at_k(s, rel.astype(int))
    with pytest.raises(ValueError, match="NaN"):
        map_at_k(np.array([[np.nan, 1.0, 0.0, 0.0]]), rel)
    with pytest.raises(ValueError, match="no clip is relevant"):
        clip_classification_accuracy(np.zeros((2, 2)), np.zeros((2, 2), dtype=bool))


@settings(max_examples=200, deadline=None)
@given(score_relevance())
def test_matches_per_query_reference(data):
    s, rel = data
    m = retrieval_metrics(s, rel, ks=(1, 3), map_k=4)
    ref = reference_metrics(s, rel, ks=(1, 3), map_k=4)
    assert m.keys() - {"mAP@4_dcase"} == ref.keys()
    for key, value in ref.items():
        assert m[key] == pytest.approx(value)


@settings(max_examples=100, deadline=None)
@given(score_relevance(one_relevant=True), st.integers(1, 12))
def test_map_at_k_equals_dcase_for_one_relevant_clip(data, k):
    s, rel = data
    assert map_at_k(s, rel, k) == pytest.approx(map_at_k_dcase(s, rel, k))


@settings(max_examples=100, deadline=None)
@given(score_relevance(), st.randoms(use_true_random=False))
def test_invariant_to_permuting_clips_and_queries(data, rnd):
    s, rel = data
    cols = rnd.sample(range(s.shape[1]), s.shape[1])
    rows = rnd.sample(range(s.shape[0]), s.shape[0])
    p_s, p_rel = s[rows][:, cols], rel[rows][:, cols]
    assert retrieval_metrics(p_s, p_rel) == pytest.approx(retrieval_metrics(s, rel))
    assert clip_classification_accuracy(p_s, p_rel) == pytest.approx(
        clip_classification_accuracy(s, rel)
    )
