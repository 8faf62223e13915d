"""The Milvus side of the product: one collection per index, vectors and reranker features.

The Milvus client (`milvus`, which imports pymilvus: half a second) loads on first use of its
names, so the index job's read and embed workers, which need only the codec and the row limits,
never import it."""

from .codec import MAX_SEGMENTS, decode_segments, encode_segments, pool_segments

_MILVUS = ("ClipStore", "Hit", "StoreUnavailable", "is_transient")


def __getattr__(name: str):
    if name in _MILVUS:
        from . import milvus

        return getattr(milvus, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
