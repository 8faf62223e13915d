"""Deployment: stage 1 against Milvus for stage-1 answers, queries by sound end to end
(`query.like`: the audio-audio rescoring is a little NumPy, cheaper here than a hop), and where a
clip's audio lives. It fails fast while Milvus is down (`StoreUnavailable`, the ingress answers
503) and reconnects by itself once it is back: `ClipStore` opens a fresh connection and reloads."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
from ray import serve

from coattn_dist.query.answer import Result
from coattn_dist.query.like import AudioRanking, like_depth, rank_like
from coattn_dist.query.retrieve import retrieve
from coattn_dist.store import ClipStore, Hit, StoreUnavailable
from coattn_dist.store.fingerprint import CheckpointMismatch, check_fingerprint
from coattn_dist.store.roots import decode_roots, may_serve

# A request waits at most a few seconds for Milvus: then a 503, and the client retries.
STORE_OPTIONS = {"attempts": 3, "backoff_s": 0.2, "timeout_s": 10.0, "connect_timeout_s": 2.0}


class Candidates:
    """Stage 1 against one collection: each query's nearest clips, with segment features when
    they are to be reranked. The Retriever and the Reranker each hold one, so the reranker's
    candidates come straight from Milvus, never through another replica. It refuses a collection
    of another checkpoint (`store.fingerprint`) once Milvus is reachable: the service may start
    before Milvus does, and a mismatch is then said on every search."""

    def __init__(self, milvus_uri: str, collection: str, dim: int, fingerprint: str):
        self.store = ClipStore(milvus_uri, collection, dim, **STORE_OPTIONS)
        self.fingerprint, self.checked = fingerprint, False
        # warm (connected, the collection loaded) before the replica reports ready, when it can
        with contextlib.suppress(StoreUnavailable, CheckpointMismatch):
            if self.store.exists():
                self.search(np.eye(1, dim, dtype=np.float32)[0], 1, 0)

    def check(self) -> None:
        if not self.checked:
            check_fingerprint(self.store.properties(), self.fingerprint, self.store.collection)
            self.checked = True

    def search(self, vector: np.ndarray, k: int, rerank_depth: int) -> list[Hit]:
        self.check()
        return retrieve(self.store, vector[None], k, rerank_depth)[0]


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
class Retriever:
    def __init__(
        self, milvus_uri: str, collection: str, dim: int, fingerprint: str, like_fusion: float
    ):
        self.candidates = Candidates(milvus_uri, collection, dim, fingerprint)
        self.store, self.like_fusion = self.candidates.store, like_fusion
        self.roots: list[str] | None = None  # the collection's roots, read again on a miss

    async def search(self, vector: np.ndarray, k: int, rerank_depth: int) -> list[Hit]:
        return await asyncio.to_thread(self.candidates.search, vector, k, rerank_depth)

    async def like(self, clip_id: str, k: int, depth: int) -> list[Result] | None:
        """The clips most like an indexed one, itself excluded; None for an id the collection
        does not hold (ValueError for a malformed one)."""
        await asyncio.to_thread(self.candidates.check)
        rescored = like_depth(AudioRanking(self.like_fusion, depth)) > 0
        rows = await asyncio.to_thread(self.store.fetch, [clip_id], rescored, True)
        if clip_id not in rows:
            return None
        row = rows[clip_id]
        return await asyncio.to_thread(self._like, row.segments, row.vector, k, depth, clip_id)

    async def search_sound(
        self, segments: np.ndarray, vector: np.ndarray, k: int, depth: int
    ) -> list[Result]:
        """The clips most like a sound the ingress embedded (`query.sound`)."""
        await asyncio.to_thread(self.candidates.check)
        return await asyncio.to_thread(self._like, segments, vector, k, depth)

    def _like(self, segments, vector, k: int, depth: int, exclude: str | None = None):
        ranking = AudioRanking(self.like_fusion, depth)
        hits = retrieve(self.store, vector[None], k + 1, like_depth(ranking))[0]
        return rank_like(segments, hits, k, ranking, exclude)

    async def locate(self, clip_id: str) -> str | None:
        """The clip's audio URI when the service may serve it (``store.roots``: under a root the
        collection was indexed from, an allowed scheme, an audio type); None for an unknown id
        and for a row that points anywhere else (ValueError for a malformed id)."""
        rows = await asyncio.to_thread(self.store.fetch, [clip_id], False)
        if clip_id not in rows:
            return None
        uri = rows[clip_id].uri
        if self.roots is None or not may_serve(uri, self.roots):  # read again: a new root?
            self.roots = decode_roots(await asyncio.to_thread(self.store.properties))
        return uri if may_serve(uri, self.roots) else None

    async def available(self) -> bool:
        try:
            return await asyncio.to_thread(self.store.exists)
        except StoreUnavailable:
            return False
