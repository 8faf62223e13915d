"""Queries by sound ("more like this"): a clip, indexed or uploaded, instead of words.

Stage 1 is the cosine of stage-1 audio vectors, the ones Milvus already holds, so a clip's own
vector searches the index as a caption's does. Its top candidates are then rescored audio against
audio on the audio encoder's segment features, which the index stores for the text reranker:
`segment_similarity` matches each segment with its best counterpart on the other side (max-sim,
both ways), so a short take finds the long recording it occurs in. How the two mix is the
checkpoint's `model.like_fusion`, chosen on its validation clips when it was trained
(`train.run.choose_like_fusion`; RESULTS.md, "Search by a sound").

NumPy only: the retriever ranks with it and starts without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from coattn_dist.query.answer import Result

if TYPE_CHECKING:  # the ingress and training rank these too, and need no Milvus client
    from coattn_dist.store import Hit


@dataclass(frozen=True)
class AudioRanking:
    """final = stage1_weight * stage 1 + (1 - stage1_weight) * segment max-sim over the top
    `depth` candidates (weight 1.0, or depth 0: stage 1 alone)."""

    stage1_weight: float = 1.0
    depth: int = 50


def like_depth(ranking: AudioRanking) -> int:
    """Candidates to fetch with segment features (`query.retrieve`): none when stage 1 ranks
    alone. One more than asked is fetched, for the query clip itself."""
    return ranking.depth + 1 if ranking.stage1_weight < 1.0 and ranking.depth > 0 else 0


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def segment_similarity(query: np.ndarray, candidates: list[np.ndarray]) -> np.ndarray:
    """(m,) symmetric max-sim between a query's (n, d) segment features and each candidate's:
    the mean over the query's segments of their best cosine in the candidate, averaged with the
    same the other way round. One matrix product for all candidates."""
    q = _unit(query)
    lengths = [len(c) for c in candidates]
    sims = q @ _unit(np.concatenate(candidates)).T  # (n, total candidate segments)
    starts = np.cumsum([0, *lengths[:-1]])
    query_to_clip = np.maximum.reduceat(sims, starts, axis=1).mean(axis=0)
    best = sims.max(axis=0)  # each candidate segment's best query segment
    clip_to_query = np.add.reduceat(best, starts) / lengths
    return (query_to_clip + clip_to_query) / 2


def rank_like(
    query: np.ndarray,
    hits: list[Hit],
    k: int,
    ranking: AudioRanking,
    exclude: str | None = None,
) -> list[Result]:
    """The top `k` of Milvus' best-first candidates for a sound whose segment features are
    `query`, `exclude` (the query clip itself) dropped; the candidates within `ranking.depth`
    rescored (they carry segment features) and ranked above the rest, as stage 1 ranks them."""
    hits = [h for h in hits if h.clip_id != exclude]
    stage1 = np.array([h.score for h in hits], dtype=np.float32)
    scores = stage1.copy()
    top = min(ranking.depth, len(hits)) if ranking.stage1_weight < 1.0 else 0
    if top and hits[0].segments is not None:
        w = ranking.stage1_weight
        similar = segment_similarity(query, [h.segments for h in hits[:top]])
        scores[:top] = w * stage1[:top] + (1 - w) * similar
    else:
        top = 0
    order = [*np.argsort(-scores[:top], kind="stable"), *range(top, len(hits))][:k]
    return [
        Result(hits[i].clip_id, hits[i].uri, hits[i].label, float(scores[i]), float(stage1[i]))
        for i in order
    ]
