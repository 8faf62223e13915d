"""Stage `rerank`: the co-attention cascade over each query's candidates, fused with stage 1.

`rerank` is the one implementation. `rerank_hits` feeds it Milvus' candidates (`coattn search`
and the service's reranker); `rerank_matrix` feeds it the top of a full stage-1 matrix
(`score_matrix`: evaluation and training's validation). So every path ranks alike. `like_matrix`
is the same for queries by sound (`query.like`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from coattn_dist.data.scenes import several_events
from coattn_dist.model import RetrievalModel
from coattn_dist.query.answer import Result
from coattn_dist.query.embed import (
    embed_clips,
    model_device,
    pad_segments,
    pad_tokens,
    stage1_matrix,
)
from coattn_dist.query.like import AudioRanking, segment_similarity

if TYPE_CHECKING:  # training and evaluation rerank too, and need no Milvus client
    from coattn_dist.store import Hit

LIFT = 10.0  # cosines lie in [-1, 1]: reranked clips + LIFT rank above every clip left out


@torch.no_grad()
def rerank(
    model: RetrievalModel,
    tokens: list[torch.Tensor],
    candidates: list[list[torch.Tensor]],
    stage1: list[torch.Tensor],
    several: list[bool] | None = None,
) -> list[torch.Tensor]:
    """Each query's (n_tokens, D) features against its own candidates' (n_segments, D) features,
    with their stage-1 scores -> each query's fused scores; `several` says which queries name
    several events (`several_flags`; None: none). Every (query, candidate) pair goes through one
    forward pass: a batch of queries costs one pass, not one per query."""
    counts = [len(c) for c in candidates]
    tok, tok_mask = pad_tokens(model, tokens)
    seg, seg_mask = pad_segments(model, [s for c in candidates for s in c])
    owner = torch.arange(len(tokens), device=tok.device).repeat_interleave(
        torch.tensor(counts, device=tok.device)
    )
    stage2 = model.reranker(tok[owner], tok_mask[owner], seg, seg_mask)
    kinds = torch.tensor(several or [False] * len(tokens), device=tok.device)[owner]
    return list(model.fuse(torch.cat(stage1), stage2, kinds).split(counts))


def several_flags(texts: list[str]) -> list[bool]:
    """Per query, whether it names several events: which fusion weight it takes."""
    return [several_events(t) for t in texts]


def rerank_hits(
    model: RetrievalModel,
    tokens: list[torch.Tensor],
    hits: list[list[Hit]],
    ks: list[int],
    several: list[bool] | None = None,
) -> list[list[Result]]:
    """Each query's top-`k` of its Milvus candidates by fused score. Candidates that carry segment
    features (float16 as stored, widened exactly) are rescored, all such queries in one pass;
    without them the stage-1 score ranks. `several`: as in `rerank`."""
    device = model_device(model)
    stage1 = [
        torch.tensor([h.score for h in hs], dtype=torch.float32, device=device) for hs in hits
    ]
    scores = list(stage1)
    todo = [i for i, hs in enumerate(hits) if hs and hs[0].segments is not None]
    if todo:
        widen = lambda h: torch.tensor(h.segments, dtype=torch.float32, device=device)
        candidates = [[widen(h) for h in hits[i]] for i in todo]
        fused = rerank(
            model,
            [tokens[i].to(device) for i in todo],
            candidates,
            [stage1[i] for i in todo],
            [several[i] for i in todo] if several else None,
        )
        for i, f in zip(todo, fused):
            scores[i] = f
    return [
        [
            Result(hs[i].clip_id, hs[i].uri, hs[i].label, float(s[i]), float(s1[i]))
            for i in s.argsort(descending=True)[:k].tolist()
        ]
        for hs, s, s1, k in zip(hits, scores, stage1, ks)
    ]


def rerank_matrix(
    model: RetrievalModel,
    scores: torch.Tensor,
    tokens: list[torch.Tensor],
    segments: list[torch.Tensor],
    depth: int,
    chunk: int = 2048,
    several: list[bool] | None = None,
) -> torch.Tensor:
    """Each query's top-`depth` clips of the (Q, C) stage-1 `scores` rescored and lifted above the
    rest, as a two-stage system ranks (depth 0: stage 1 alone); about `chunk` (query, clip) pairs
    per pass bound memory. `several`: as in `rerank`."""
    if depth <= 0:
        return scores
    top = scores.topk(min(depth, scores.shape[1]), dim=1).indices  # (Q, depth)
    stage1 = scores.gather(1, top)
    step = max(1, chunk // top.shape[1])
    fused = []
    for q in range(0, len(tokens), step):
        candidates = [[segments[c] for c in row] for row in top[q : q + step].tolist()]
        kinds = several[q : q + step] if several else None
        fused += rerank(model, tokens[q : q + step], candidates, list(stage1[q : q + step]), kinds)
    return scores.scatter(1, top, torch.stack(fused) + LIFT)


def score_matrix(
    model: RetrievalModel,
    tokens: list[torch.Tensor],
    segments: list[torch.Tensor],
    depth: int = 0,
    several: list[bool] | None = None,
) -> torch.Tensor:
    """(Q, C) final scores: stage 1 alone (depth 0) or stage 1 + the cascade over its top `depth`
    (`several`: as in `rerank`)."""
    scores = stage1_matrix(model, tokens, segments)
    return rerank_matrix(model, scores, tokens, segments, depth, several=several)


def like_matrix(
    model: RetrievalModel, segments: list[torch.Tensor], queries: list[int], ranking: AudioRanking
) -> torch.Tensor:
    """(Q, C) final scores of clips `queries` (indices into `segments`) as queries by sound
    against every clip, as the index ranks them, each query's own column below every other.
    Linear in the weight (the rescored candidates are stage 1's top whatever the weight), so two
    weights price them all."""
    vectors = embed_clips(model, segments)
    scores = vectors[queries] @ vectors.T
    scores[torch.arange(len(queries)), torch.tensor(queries)] = -LIFT  # finite: weights mix it
    top = scores.topk(min(ranking.depth, scores.shape[1] - 1), dim=1).indices
    w = ranking.stage1_weight
    for row, (q, cols) in enumerate(zip(queries, top.tolist())):
        similar = segment_similarity(
            segments[q].cpu().numpy(), [segments[c].cpu().numpy() for c in cols]
        )
        fused = w * scores[row, cols] + (1 - w) * torch.from_numpy(similar).to(scores)
        scores[row, cols] = fused + LIFT
    return scores
