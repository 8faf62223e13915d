"""Deployment: the co-attention cascade over each query's candidates, fused with stage 1.
Batched: the requests waiting when a replica frees up go through the cascade in one forward pass
(`query.rerank.rerank_hits`). On a GPU when the cluster has one (the app asks for it), else on the
replica's CPU."""

from __future__ import annotations

import asyncio

import numpy as np
import torch
from ray import serve

from coattn_dist.model import RetrievalModel
from coattn_dist.query.answer import Result
from coattn_dist.query.rerank import rerank_hits
from coattn_dist.store import Hit


@serve.deployment(ray_actor_options={"num_cpus": 1})
class Reranker:
    def __init__(self, checkpoint: str, storage_options: dict):
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = RetrievalModel.load(
            checkpoint, storage_options=storage_options, map_location=device
        )

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def __call__(
        self, requests: list[tuple[np.ndarray, list[Hit], int]]
    ) -> list[list[Result]]:
        """Each request is (query tokens, its candidates, k) -> its top-k results."""
        tokens = [torch.tensor(t) for t, _, _ in requests]  # a copy: arrays from Ray are read-only
        return await asyncio.to_thread(
            rerank_hits,
            self.model,
            tokens,
            [h for _, h, _ in requests],
            [k for _, _, k in requests],
        )
