"""The one rerank, and both ways into it: Milvus' candidates (the service, `coattn search`) and
the top of a stage-1 matrix (evaluation, training's validation) score and rank alike."""

import copy

import pytest
import torch

from coattn_dist.query.embed import pad_segments, pad_tokens, stage1_matrix
from coattn_dist.query.rerank import (
    LIFT,
    rerank,
    rerank_hits,
    rerank_matrix,
    score_matrix,
    several_flags,
)
from coattn_dist.store import Hit


def pairwise(model, tokens, segments, stage1, q: int, c: int) -> float:
    """The fused score of one (query, clip) pair scored alone: no padding, no batch."""
    stage2 = model.reranker(*pad_tokens(model, [tokens[q]]), *pad_segments(model, [segments[c]]))
    return float(model.fuse(stage1[q, c], stage2[0]))


@pytest.fixture
def passes(tiny_model) -> list:
    """One entry per forward pass of the cascade during the test."""
    calls = []
    hook = tiny_model.reranker.register_forward_hook(lambda *_: calls.append(1))
    yield calls
    hook.remove()


def test_rerank_scores_each_pair_as_alone_in_one_pass(tiny_model, features, passes):
    tokens, segments = features
    stage1 = stage1_matrix(tiny_model, tokens, segments)
    candidates = [[0, 3, 9], [5], [2, 8, 1, 4]]
    fused = rerank(
        tiny_model,
        tokens[:3],
        [[segments[c] for c in cs] for cs in candidates],
        [stage1[q, cs] for q, cs in enumerate(candidates)],
    )
    assert len(passes) == 1
    assert [len(f) for f in fused] == [3, 1, 4]
    with torch.no_grad():
        expected = [
            [pairwise(tiny_model, tokens, segments, stage1, q, c) for c in cs]
            for q, cs in enumerate(candidates)
        ]
    for f, e in zip(fused, expected):
        torch.testing.assert_close(f, torch.tensor(e), atol=1e-5, rtol=0)


def test_a_query_naming_several_events_takes_the_multi_event_weight(tiny_model, features):
    tokens, segments = features
    stage1 = stage1_matrix(tiny_model, tokens, segments)
    model = copy.deepcopy(tiny_model)
    model.reranker.fusion.fill_(1.0)  # one event: stage 1 alone
    model.reranker.multi_fusion.fill_(0.0)  # several: the reranker alone
    candidates = [[0, 3, 9], [0, 3, 9]]
    one, several = rerank(
        model,
        tokens[:2],
        [[segments[c] for c in cs] for cs in candidates],
        [stage1[q, cs] for q, cs in enumerate(candidates)],
        [False, True],
    )
    torch.testing.assert_close(one, stage1[0, [0, 3, 9]])
    with torch.no_grad():
        alone = [
            float(
                model.reranker(
                    *pad_tokens(model, [tokens[1]]), *pad_segments(model, [segments[c]])
                )[0]
            )
            for c in candidates[1]
        ]
    torch.testing.assert_close(several, torch.tensor(alone), atol=1e-5, rtol=0)
    assert several_flags(["a dog barks", "a dog barks, then rain falls"]) == [False, True]


def test_score_matrix_lifts_the_reranked_top_above_the_rest(tiny_model, features):
    tokens, segments = features
    stage1 = score_matrix(tiny_model, tokens, segments)
    torch.testing.assert_close(stage1, stage1_matrix(tiny_model, tokens, segments))
    final = score_matrix(tiny_model, tokens, segments, depth=4)
    top = stage1.topk(4, dim=1).indices
    assert torch.equal(final.topk(4, dim=1).indices.sort(1).values, top.sort(1).values)
    rest = torch.ones_like(final, dtype=torch.bool).scatter(1, top, False)
    assert torch.equal(final[rest], stage1[rest])
    with torch.no_grad():
        expected = torch.tensor(
            [
                [pairwise(tiny_model, tokens, segments, stage1, q, c) for c in row]
                for q, row in enumerate(top.tolist())
            ]
        )
    torch.testing.assert_close(final.gather(1, top) - LIFT, expected, atol=1e-5, rtol=0)


def test_rerank_matrix_is_one_pass_per_chunk_and_chunks_do_not_change_scores(
    tiny_model, features, passes
):
    tokens, segments = features
    stage1 = stage1_matrix(tiny_model, tokens, segments)
    whole = rerank_matrix(tiny_model, stage1, tokens, segments, depth=4)
    assert len(passes) == 1
    chunked = rerank_matrix(
        tiny_model, stage1, tokens, segments, depth=4, chunk=8
    )  # 2 queries a pass
    assert len(passes) == 1 + 4  # 7 queries
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("depth", [3, 10])
def test_milvus_candidates_rank_as_the_stage1_matrix_does(tiny_model, features, depth):
    """What the service gets from Milvus (stage-1 scores, float16 features) ranks and scores as
    evaluation ranks the same features."""
    tokens, segments = features
    stored = [s.half() for s in segments]  # as Milvus keeps them
    widened = [s.float() for s in stored]
    stage1 = stage1_matrix(tiny_model, tokens, widened)
    final = rerank_matrix(tiny_model, stage1, tokens, widened, depth)
    top = stage1.topk(depth, dim=1).indices.tolist()
    hits = [
        [Hit(f"clip-{c}", float(stage1[q, c]), f"/a/{c}.wav", "", stored[c].numpy()) for c in row]
        for q, row in enumerate(top)
    ]
    for q, results in enumerate(rerank_hits(tiny_model, tokens, hits, [3] * len(tokens))):
        expected = final[q].topk(3).indices
        assert [r.clip_id for r in results] == [f"clip-{c}" for c in expected.tolist()]
        torch.testing.assert_close(
            torch.tensor([r.score for r in results]), final[q, expected] - LIFT, atol=1e-5, rtol=0
        )
        assert [r.stage1_score for r in results] == pytest.approx(
            stage1[q, expected].tolist(), abs=1e-6
        )


def test_candidates_without_features_rank_by_stage1(tiny_model, features, passes):
    tokens, _ = features
    hits = [Hit(f"clip-{i}", s, "", "") for i, s in enumerate([0.1, 0.7, -0.2, 0.4])]
    [results] = rerank_hits(tiny_model, tokens[:1], [hits], [3])
    assert not passes
    assert [r.clip_id for r in results] == ["clip-1", "clip-3", "clip-0"]
    assert (
        [r.score for r in results]
        == [r.stage1_score for r in results]
        == pytest.approx([0.7, 0.4, 0.1])
    )
