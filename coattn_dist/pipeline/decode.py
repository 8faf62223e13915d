"""Indexing, stage 2: bytes -> mono float32 at the encoder's sample rate, in CPU tasks.

Never raises: whatever a file does to the decoder (every `AudioError` kind, or something no one
anticipated) becomes a failure row, so one bad file can neither stop nor hang the job.
"""

from __future__ import annotations

import numpy as np

from coattn_dist.audio import DEFAULT_LIMITS, AudioError, DecodeLimits, decode


def decode_audio(
    batch: dict[str, np.ndarray], sample_rate: int, limits: DecodeLimits = DEFAULT_LIMITS
) -> dict[str, np.ndarray]:
    """Ray Data map: replaces ``data`` by ``wave``; rows that failed earlier pass through."""
    kind, message = list(batch["kind"]), list(batch["message"])
    waves = [np.zeros(0, dtype=np.float32)] * len(kind)
    for i, (uri, data) in enumerate(zip(batch["uri"], batch["data"])):
        if kind[i]:
            continue
        try:
            waves[i] = decode(bytes(data), str(uri), sample_rate, limits)
        except Exception as error:  # noqa: BLE001 - a bad file must become a row, whatever it raises
            kind[i] = getattr(error, "kind", AudioError.kind)
            message[i] = str(error) if isinstance(error, AudioError) else f"{uri}: {error!r}"
    rest = {k: v for k, v in batch.items() if k != "data"}
    return {
        **rest,
        "wave": np.fromiter(waves, dtype=object, count=len(waves)),
        "kind": np.array(kind, dtype=object),
        "message": np.array(message, dtype=object),
    }
