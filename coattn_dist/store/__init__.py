"""The Milvus side of the product: one collection per index, vectors and reranker features."""

from .codec import MAX_SEGMENTS, decode_segments, encode_segments, pool_segments
from .milvus import ClipStore, Hit, StoreUnavailable, is_transient

__all__ = [
    "MAX_SEGMENTS",
    "ClipStore",
    "Hit",
    "StoreUnavailable",
    "decode_segments",
    "encode_segments",
    "is_transient",
    "pool_segments",
]
