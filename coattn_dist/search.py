"""Query time in one process, as `coattn search` answers: encode -> retrieve -> rank.

`QueryEncoder` turns query text into token features and stage-1 vectors; `Searcher` chains it
with `stages.retrieve` and `stages.rank`. The Ray Serve app (`serve/`) runs the same three in
three deployments, so both rank alike.
"""
from __future__ import annotations

import numpy as np
import torch

from coattn_dist.encoders import build_text_encoder
from coattn_dist.features import encode_texts
from coattn_dist.model import RetrievalModel
from coattn_dist.ranking import embed_texts
from coattn_dist.stages import Answer, Clock, model_device, rank, retrieve
from coattn_dist.store import ClipStore


def check_request(queries: list[str], k: int, rerank_depth: int) -> None:
    if not queries or any(not q.strip() for q in queries):
        raise ValueError("every query needs some text")
    if k < 1 or rerank_depth < 0:
        raise ValueError(f"need k >= 1 and rerank >= 0, got k={k}, rerank={rerank_depth}")


class QueryEncoder:
    """Query text -> (token features for the reranker, stage-1 vectors for Milvus)."""

    def __init__(self, model: RetrievalModel, text_encoder):
        self.model, self.text_encoder = model, text_encoder

    def __call__(self, queries: list[str]) -> tuple[list[torch.Tensor], np.ndarray]:
        device = model_device(self.model)
        tokens = [t.to(device) for t in encode_texts(self.text_encoder, queries)]
        return tokens, embed_texts(self.model, tokens).cpu().numpy()


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
