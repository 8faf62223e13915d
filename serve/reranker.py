"""Deployment: stage 1 and the co-attention cascade for one query. It fetches the candidates from
Milvus itself (`serve.retriever.Candidates`), so their segment features (up to 500 x 44 KB) come
straight here, through no other replica, and it returns only the top k with how long each stage
took: one hop fewer than asking the Retriever deployment (BENCHMARKS.md).
Batched: the queries whose candidates are in when a replica frees up go through the cascade in
one forward pass (`query.rerank.rerank_hits`). On a GPU when the cluster has one (the app asks
for it), else on the replica's CPU."""

from __future__ import annotations

import asyncio

import numpy as np
import torch
from ray import serve

from coattn_dist.model import RetrievalModel
from coattn_dist.query.answer import Clock, Result
from coattn_dist.query.rerank import rerank_hits
from coattn_dist.store import Hit
from serve.retriever import Candidates


@serve.deployment(ray_actor_options={"num_cpus": 1})
class Reranker:
    def __init__(self, checkpoint: str, storage_options: dict, milvus_uri: str, collection: str):
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = RetrievalModel.load(
            checkpoint, storage_options=storage_options, map_location=device
        )
        self.candidates = Candidates(
            milvus_uri, collection, self.model.cfg.model.dim, self.model.fingerprint()
        )
        self._warm_up()

    def _warm_up(self) -> None:
        """One real pass before the replica reports ready: the first search after a deploy would
        otherwise pay the allocator's and kernels' first-call costs."""
        m = self.model.cfg.model
        rng = np.random.default_rng(0)
        hits = [
            Hit(str(i), 0.5, "", "", rng.standard_normal((8, m.audio_dim)).astype(np.float16))
            for i in range(50)
        ]
        rerank_hits(self.model, [torch.randn(6, m.text_dim)], [hits], [10])

    async def search(
        self, tokens: np.ndarray, vector: np.ndarray, k: int, depth: int, several: bool = False
    ) -> tuple[list[Result], dict[str, float]]:
        """The query's top `k` of its `depth` stage-1 candidates, and the retrieve and rerank
        milliseconds as this replica saw them; `several`: the query names several events (its
        fusion weight, `data.scenes.several_events`)."""
        clock = Clock()
        hits = await asyncio.to_thread(self.candidates.search, vector, k, depth)
        clock.lap("retrieve")
        results = await self._rerank(tokens, hits, k, several)
        clock.lap("rerank")
        return results, {stage: clock.laps[stage] for stage in ("retrieve", "rerank")}

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def _rerank(
        self,
        tokens: list[np.ndarray],
        hits: list[list[Hit]],
        ks: list[int],
        several: list[bool],
    ) -> list[list[Result]]:
        queries = [torch.tensor(t) for t in tokens]  # a copy: arrays from Ray are read-only
        return await asyncio.to_thread(rerank_hits, self.model, queries, hits, ks, several)

    async def ping(self) -> bool:
        return True
