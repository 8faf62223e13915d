"""Indexing, stage 3: waves -> segment features and the pooled stage-1 vector, in an actor pool.

An actor loads the audio encoder and the checkpoint's stage 1 once and then embeds batches of
clips: the encoder runs the blocks of every clip in a batch through the CNN together. On a GPU
node each actor holds one GPU; on CPUs each runs one torch thread, so actors scale with cores.
"""
from __future__ import annotations

import numpy as np
import ray
import torch

from coattn_dist.config import AudioEncoderConfig
from coattn_dist.encoders import AisfxEncoder, build_audio_encoder
from coattn_dist.model import RetrievalModel
from coattn_dist.ranking import embed_clips
from coattn_dist.store import pool_segments


def encoder_sample_rate(cfg: AudioEncoderConfig) -> int:
    """The rate decode tasks resample to, known without loading the encoder's weights."""
    if cfg.name == "aisfx":
        return AisfxEncoder.sample_rate
    from transformers import AutoFeatureExtractor

    return int(AutoFeatureExtractor.from_pretrained(cfg.name, local_files_only=True).sampling_rate)


class ClipEmbedder:
    """Ray Data callable class: replaces ``wave`` by ``vector`` (stage-1, unit norm) and
    ``segments`` (the reranker's features, at most the store's 32 per clip), and adds ``node``,
    the Ray node that embedded the clip, which the job's summary counts per node."""

    def __init__(self, checkpoint: str, storage_options: dict | None = None,
                 device: str | None = None):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = RetrievalModel.load(checkpoint, storage_options=storage_options,
                                         map_location=self.device)
        self.encoder = build_audio_encoder(self.model.cfg.audio, self.device)
        self.dim = self.model.cfg.model.dim
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["kind"])
        ok = [i for i in range(n) if not batch["kind"][i]]
        vectors = np.zeros((n, self.dim), dtype=np.float32)
        segments = [np.zeros((0, self.encoder.dim), dtype=np.float32)] * n
        if ok:
            # Ray hands out read-only views of its blocks; torch wants arrays it may write
            features = self.encoder([np.array(batch["wave"][i]) for i in ok])
            vectors[ok] = embed_clips(self.model, [f.to(self.device) for f in features]).cpu().numpy()
            for i, f in zip(ok, features):
                segments[i] = pool_segments(f.numpy())
        rest = {k: v for k, v in batch.items() if k != "wave"}
        return {**rest, "vector": vectors, "segments": np.fromiter(segments, dtype=object, count=n),
                "node": np.full(n, self.node)}
