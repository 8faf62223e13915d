"""Query time, as the service answers: encode -> retrieve -> rank.

Three stages, each a plain function or object that knows nothing of HTTP or the command line:
`QueryEncoder` (text -> token features + stage-1 vector), `retrieve` (Milvus top-N with segment
features) and `rank` (the co-attention cascade over the candidates, fused with stage 1).
`Searcher` chains them in one process for `coattn search`; the Ray Serve app (`serve/`) puts
each stage in its own deployment. Both call these same functions, so they rank alike.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from coattn_dist.encoders import build_text_encoder
from coattn_dist.features import encode_texts
from coattn_dist.model import RetrievalModel
from coattn_dist.ranking import embed_texts, rerank
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


def check_request(queries: list[str], k: int, rerank_depth: int) -> None:
    if not queries or any(not q.strip() for q in queries):
        raise ValueError("every query needs some text")
    if k < 1 or rerank_depth < 0:
        raise ValueError(f"need k >= 1 and rerank >= 0, got k={k}, rerank={rerank_depth}")


def model_device(model: RetrievalModel) -> torch.device:
    return next(model.parameters()).device


class QueryEncoder:
    """Query text -> (token features for the reranker, stage-1 vectors for Milvus)."""

    def __init__(self, model: RetrievalModel, text_encoder):
        self.model, self.text_encoder = model, text_encoder

    def __call__(self, queries: list[str]) -> tuple[list[torch.Tensor], np.ndarray]:
        device = model_device(self.model)
        tokens = [t.to(device) for t in encode_texts(self.text_encoder, queries)]
        return tokens, embed_texts(self.model, tokens).cpu().numpy()


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


class Searcher:
    """The three stages in one process: what `coattn search` runs."""

    def __init__(self, model: RetrievalModel, text_encoder, store: ClipStore):
        self.model, self.store = model, store
        self.encode = QueryEncoder(model, text_encoder)

    @classmethod
    def open(cls, checkpoint: str, milvus_uri: str, collection: str,
             storage_options: dict | None = None, device: str = "cpu") -> Searcher:
        model = RetrievalModel.load(checkpoint, storage_options=storage_options, map_location=device)
        store = ClipStore(milvus_uri, collection, model.cfg.model.dim)
        if not store.exists():
            store.close()
            raise ValueError(f"no collection {collection!r} at {milvus_uri}: index it first "
                             "(coattn index)")
        return cls(model, build_text_encoder(model.cfg.text, device), store)

    def close(self) -> None:
        self.store.close()

    def search(self, query: str, k: int = 10, rerank_depth: int = 50) -> Answer:
        return self.search_batch([query], k, rerank_depth)[0]

    def search_batch(self, queries: list[str], k: int = 10, rerank_depth: int = 50) -> list[Answer]:
        """Top-`k` clips per query: stage 1 retrieves max(k, `rerank_depth`) candidates from
        Milvus with their segment features, the co-attention cascade rescores them (skipped when
        `rerank_depth` is 0), and the fused score ranks them."""
        check_request(queries, k, rerank_depth)
        clock = Clock()
        tokens, vectors = self.encode(queries)
        clock.lap("encode")
        hits = retrieve(self.store, vectors, k, rerank_depth)
        clock.lap("retrieve")
        ranked = rank(self.model, tokens, hits, [k] * len(queries))
        clock.lap("rerank")
        return [Answer(q, r, dict(clock.laps)) for q, r in zip(queries, ranked)]


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
