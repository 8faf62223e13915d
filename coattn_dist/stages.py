"""The query stages after encoding: `retrieve` (stage 1 in Milvus) and `rank` (the co-attention
cascade over its candidates, fused with stage 1), what a search answers, and per-stage timing.

Kept apart from `search` (the text encoder and `Searcher`) so that the service's retriever and
reranker replicas start without importing the text encoder's libraries: a replica's start is
what an autoscaling step waits for.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from coattn_dist.model import RetrievalModel
from coattn_dist.ranking import rerank
from coattn_dist.store import ClipStore, Hit


@dataclass
class Result:
    clip_id: str
    uri: str
    label: str
    score: float  # the final (fused) score, or the stage-1 one when nothing was reranked
    stage1_score: float


@dataclass
class Answer:
    query: str
    results: list[Result]
    timings_ms: dict[str, float]  # encode, retrieve, rerank, total (shared by a batch)

    def to_dict(self) -> dict:
        return asdict(self)


def model_device(model: RetrievalModel) -> torch.device:
    return next(model.parameters()).device


def retrieve(store: ClipStore, vectors: np.ndarray, k: int, rerank_depth: int) -> list[list[Hit]]:
    """Stage 1: max(k, `rerank_depth`) candidates per query, with segment features when they
    are to be reranked."""
    return store.search(vectors, max(k, rerank_depth), with_segments=rerank_depth > 0)


def rank(model: RetrievalModel, tokens: list[torch.Tensor], hits: list[list[Hit]],
         ks: list[int]) -> list[list[Result]]:
    """Each query's top-`k` of its candidates by fused score. Candidates that carry segment
    features are rescored by the cascade (`ranking.rerank`, the function evaluation agrees
    with); without them the stage-1 score ranks."""
    return [_rank_one(model, t, h, k) for t, h, k in zip(tokens, hits, ks)]


def _rank_one(model: RetrievalModel, tokens: torch.Tensor, hits: list[Hit], k: int) -> list[Result]:
    if not hits:
        return []
    device = model_device(model)
    stage1 = torch.tensor([h.score for h in hits], dtype=torch.float32, device=device)
    scores = stage1
    if hits[0].segments is not None:
        segments = [torch.from_numpy(h.segments).to(device) for h in hits]
        scores, _ = rerank(model, tokens.to(device), segments, stage1)
    order = scores.argsort(descending=True)[:k].tolist()
    return [Result(hits[i].clip_id, hits[i].uri, hits[i].label, float(scores[i]),
                   float(stage1[i])) for i in order]


class Clock:
    """Milliseconds per named stage, and the total."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self.last) * 1e3, 2)
        self.laps["total"] = round((now - self.start) * 1e3, 2)
        self.last = now
