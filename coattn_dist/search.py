"""Query time, as the service answers: encode -> retrieve -> rerank.

`Searcher` holds a checkpoint, its text encoder and the collection; `search` turns query text into
the top clips with both stages' scores and the time each stage took. It knows nothing of HTTP or
the command line: `coattn search` and the Ray Serve app both call it, so they rank alike.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

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


class Searcher:
    def __init__(self, model: RetrievalModel, text_encoder, store: ClipStore):
        self.model, self.text_encoder, self.store = model, text_encoder, store

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
        if not queries or any(not q.strip() for q in queries):
            raise ValueError("every query needs some text")
        if k < 1 or rerank_depth < 0:
            raise ValueError(f"need k >= 1 and rerank >= 0, got k={k}, rerank={rerank_depth}")
        clock = _Clock()
        tokens = encode_texts(self.text_encoder, queries)
        vectors = embed_texts(self.model, [t.to(self.model_device) for t in tokens])
        clock.lap("encode")
        hits = self.store.search(vectors.cpu().numpy(), max(k, rerank_depth),
                                 with_segments=rerank_depth > 0)
        clock.lap("retrieve")
        ranked = [self._rank(t, h, k, rerank_depth > 0) for t, h in zip(tokens, hits)]
        clock.lap("rerank")
        return [Answer(q, r, dict(clock.laps)) for q, r in zip(queries, ranked)]

    @property
    def model_device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _rank(self, tokens: torch.Tensor, hits: list[Hit], k: int, rescore: bool) -> list[Result]:
        if not hits:
            return []
        device = self.model_device
        stage1 = torch.tensor([h.score for h in hits], device=device)
        scores = stage1
        if rescore:
            segments = [torch.from_numpy(h.segments).to(device) for h in hits]
            scores, _ = rerank(self.model, tokens.to(device), segments, stage1)
        order = scores.argsort(descending=True)[:k].tolist()
        return [Result(hits[i].clip_id, hits[i].uri, hits[i].label, float(scores[i]),
                       float(stage1[i])) for i in order]


class _Clock:
    """Milliseconds per named stage, and the total."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self.last) * 1e3, 2)
        self.laps["total"] = round((now - self.start) * 1e3, 2)
        self.last = now
