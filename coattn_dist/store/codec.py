"""The reranker's per-clip segment features as one VARCHAR value.

They ride in the same row as the search vector, so one search returns the top-N candidates
together with what the co-attention reranker needs: no second round trip, no second store.

Format: ``"n,d:" + base64(float16 little-endian bytes)``; the shape prefix means decoding needs
no side information. Byte budget (d = 512): 1,024 raw bytes per segment, 4/3 of that after
base64, so 3 segments take 4,102 chars and 32 segments 43,699 chars, well inside Milvus'
VARCHAR limit of 65,535 (47 segments would be the most that fit).
"""

from __future__ import annotations

import base64

import numpy as np

MAX_SEGMENTS = 32  # longer sequences are average-pooled in time down to this many
MAX_CHARS = 65_535  # Milvus' largest VARCHAR


def pool_segments(segments: np.ndarray, max_segments: int = MAX_SEGMENTS) -> np.ndarray:
    """Average-pool in time into at most `max_segments` contiguous, near-equal chunks, so long
    clips keep their coarse time structure instead of losing their tail."""
    if len(segments) <= max_segments:
        return segments
    return np.stack([chunk.mean(axis=0) for chunk in np.array_split(segments, max_segments)])


def encoded_length(n: int, d: int) -> int:
    """Characters of the encoding of an (n, d) array."""
    return len(f"{n},{d}:") + 4 * -(-n * d * 2 // 3)


def encode_segments(segments: np.ndarray) -> str:
    """(n, d) float array -> str that fits a VARCHAR(65535); n > MAX_SEGMENTS is pooled first.

    Raises ValueError for a non-2-D input, values float16 cannot hold, or a d so wide that
    even the pooled sequence does not fit (d = 512 always fits).
    """
    segments = np.asarray(segments)
    if segments.ndim != 2:
        raise ValueError(f"segments must be (n, d), got shape {segments.shape}")
    with np.errstate(over="ignore"):  # overflow is reported just below, as a ValueError
        half = pool_segments(segments).astype("<f2")
    if not np.isfinite(half).all():
        raise ValueError("segment features are not finite in float16 (|x| > 65504 or NaN)")
    n, d = half.shape
    if encoded_length(n, d) > MAX_CHARS:
        fits = ((MAX_CHARS - len(f"{n},{d}:")) // 4 * 3) // (2 * d)
        raise ValueError(
            f"{n} segments of width {d} exceed the {MAX_CHARS}-char VARCHAR; "
            f"at most {fits} fit at this width"
        )
    return f"{n},{d}:" + base64.b64encode(half.tobytes()).decode("ascii")


def decode_segments(text: str) -> np.ndarray:
    """Inverse of `encode_segments`: a float16 (n, d) array, the stored precision. The reranker
    widens it to float32 (exactly); until then candidates cross between replicas at half the bytes."""
    shape, _, payload = text.partition(":")
    n, d = (int(x) for x in shape.split(","))
    return np.frombuffer(base64.b64decode(payload), dtype="<f2").reshape(n, d)
