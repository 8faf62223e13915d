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
    features are rescored by the cascade (`ranking.rerank`, all such queries in one pass);
    without them the stage-1 score ranks."""
    device = model_device(model)
    stage1 = [torch.tensor([h.score for h in hs], dtype=torch.float32, device=device) for hs in hits]
    scores = list(stage1)
    todo = [i for i, hs in enumerate(hits) if hs and hs[0].segments is not None]
    if todo:
        fused = rerank(model, [tokens[i].to(device) for i in todo],
                       [[torch.tensor(h.segments, dtype=torch.float32, device=device) for h in hits[i]]
                        for i in todo],
                       [stage1[i] for i in todo])
        for i, f in zip(todo, fused):
            scores[i] = f
    return [[Result(hs[i].clip_id, hs[i].uri, hs[i].label, float(s[i]), float(s1[i]))
             for i in s.argsort(descending=True)[:k].tolist()]
            for hs, s, s1, k in zip(hits, scores, stage1, ks)]


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
