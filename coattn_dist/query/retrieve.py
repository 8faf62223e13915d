"""Stage `retrieve`: stage 1 in Milvus, each query's nearest clips with the segment features
the reranker reads, in the same round trip."""

from __future__ import annotations

import numpy as np

from coattn_dist.store import ClipStore, Hit


def retrieve(store: ClipStore, vectors: np.ndarray, k: int, rerank_depth: int) -> list[list[Hit]]:
    """max(k, `rerank_depth`) candidates per query, with segment features only when they are to
    be reranked."""
    return store.search(vectors, max(k, rerank_depth), with_segments=rerank_depth > 0)
