"""Stage `encode` for a query by sound: an uploaded file's bytes -> the segment features and
stage-1 vector the index would store for it (as `pipeline.embed.ClipEmbedder` makes them), so an
upload searches exactly as its indexed copy would. Decoded with the index job's typed errors;
nothing is stored."""

from __future__ import annotations

import numpy as np
import torch

from coattn_dist.audio import DecodeLimits, decode
from coattn_dist.encoders import build_audio_encoder
from coattn_dist.model import RetrievalModel
from coattn_dist.query.embed import embed_clips, model_device
from coattn_dist.store import pool_segments

# An upload is one query, not a collection: a tenth of the index job's byte cap, ten minutes.
UPLOAD_LIMITS = DecodeLimits(max_bytes=50 * 2**20, max_seconds=600.0)


class SoundEncoder:
    def __init__(self, model: RetrievalModel, device: str | torch.device = "cpu"):
        self.model = model
        self.encoder = build_audio_encoder(model.cfg.audio, device)

    def __call__(
        self, data: bytes, name: str, limits: DecodeLimits = UPLOAD_LIMITS
    ) -> tuple[np.ndarray, np.ndarray]:
        """(segments as float16 (n <= 32, d), as stored; the (dim,) stage-1 vector). Raises the
        `AudioError` of a file that is empty, not audio, truncated or over `limits`."""
        wave = decode(data, name, self.encoder.sample_rate, limits)
        segments = self.encoder([wave])[0]
        vector = embed_clips(self.model, [segments.to(model_device(self.model))])[0]
        return pool_segments(segments.numpy()).astype(np.float16), vector.cpu().numpy()
