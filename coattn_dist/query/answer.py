"""What a search answers, and how long each stage took: shared by `coattn search` and the
service's ingress and reranker."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the ingress answers with these and needs no Milvus client
    from coattn_dist.store import Hit


@dataclass
class Result:
    clip_id: str
    uri: str
    label: str
    score: float  # the final (fused) score, or the stage-1 one when nothing was reranked
    stage1_score: float


@dataclass
class Answer:
    query: str | dict  # the words, or {"like": clip_id} / {"audio": file name} for a sound
    results: list[Result]
    timings_ms: dict[str, float]  # encode, retrieve, rerank, total (shared by a batch)
    degraded: str | None = None  # why a stage was skipped (the service: "rerank_unavailable")

    def to_dict(self) -> dict:
        return asdict(self)


def ranked_by_stage1(hits: list[Hit], k: int) -> list[Result]:
    """The top `k` of Milvus' best-first candidates as stage 1 ranks them, nothing rescored."""
    return [Result(h.clip_id, h.uri, h.label, h.score, h.score) for h in hits[:k]]


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
