"""Stage 3: waves -> segment features (and, for the index, the pooled stage-1 vector), in an
actor pool.

An actor loads the audio encoder (and the checkpoint's stage 1) once and then embeds batches of
clips: the encoder runs the blocks of every clip in a batch through the CNN together. On a GPU
node each actor holds one GPU; on CPUs each runs `threads` torch threads (`runner.embed_pool`).
"""

from __future__ import annotations

from socket import gethostname

import numpy as np
import ray
import torch

from coattn_dist.config import AudioEncoderConfig
from coattn_dist.encoders import AisfxEncoder, build_audio_encoder
from coattn_dist.model import RetrievalModel
from coattn_dist.query.embed import embed_clips
from coattn_dist.store import pool_segments


def encoder_sample_rate(cfg: AudioEncoderConfig) -> int:
    """The rate decode tasks resample to, known without loading the encoder's weights."""
    if cfg.name == "aisfx":
        return AisfxEncoder.sample_rate
    from transformers import AutoFeatureExtractor

    return int(AutoFeatureExtractor.from_pretrained(cfg.name, local_files_only=True).sampling_rate)


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class SegmentEncoder:
    """Ray Data callable class: replaces ``wave`` by ``segments``, the audio encoder's features of
    every block of the clip (the frozen features that training and evaluation cache), and adds
    ``node``, the Ray node that encoded the clip, which jobs count to show where work ran."""

    def __init__(
        self,
        audio: AudioEncoderConfig,
        device: str | None = None,
        threads: int | None = None,
        precision: str = "auto",
    ):
        if threads:  # Ray gives a fractional-CPU actor one thread; the layout may want more
            torch.set_num_threads(threads)
        self.device = device or _default_device()
        self.encoder = build_audio_encoder(audio, self.device, precision)
        # the local layout (`pipeline.local`) may run without Ray: the machine's name stands in
        self.node = (
            ray.get_runtime_context().get_node_id() if ray.is_initialized() else gethostname()
        )

    def encode(self, batch: dict[str, np.ndarray]) -> tuple[list[int], list[torch.Tensor]]:
        """(rows that decoded, their segment features): failed rows pass through untouched."""
        ok = [i for i in range(len(batch["kind"])) if not batch["kind"][i]]
        # Ray hands out read-only views of its blocks; torch wants arrays it may write
        return ok, self.encoder([np.array(batch["wave"][i]) for i in ok]) if ok else []

    def columns(
        self, batch: dict[str, np.ndarray], ok: list[int], segments: list[np.ndarray], **extra
    ) -> dict:
        """The output batch: ``segments`` of the rows in `ok`, an empty (0, dim) array elsewhere."""
        n = len(batch["kind"])
        column = [np.zeros((0, self.encoder.dim), dtype=np.float32)] * n
        for i, s in zip(ok, segments):
            column[i] = s
        rest = {k: v for k, v in batch.items() if k != "wave"}
        return {
            **rest,
            **extra,
            "segments": np.fromiter(column, dtype=object, count=n),
            "node": np.full(n, self.node),
        }

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok, features = self.encode(batch)
        return self.columns(batch, ok, [f.cpu().numpy() for f in features])


class ClipEmbedder(SegmentEncoder):
    """Ray Data callable class for the index: ``segments`` pooled to at most the store's 32 per
    clip, plus ``vector``, the checkpoint's stage-1 embedding (unit norm)."""

    def __init__(
        self,
        checkpoint: str,
        storage_options: dict | None = None,
        device: str | None = None,
        threads: int | None = None,
        precision: str = "auto",
    ):
        device = device or _default_device()
        self.model = RetrievalModel.load(
            checkpoint, storage_options=storage_options, map_location=device
        )
        super().__init__(self.model.cfg.audio, device, threads, precision)
        self.dim = self.model.cfg.model.dim

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = np.zeros((len(batch["kind"]), self.dim), dtype=np.float32)
        ok, features = self.encode(batch)
        if ok:
            vectors[ok] = (
                embed_clips(self.model, [f.to(self.device) for f in features]).cpu().numpy()
            )
        return self.columns(
            batch, ok, [pool_segments(f.cpu().numpy()) for f in features], vector=vectors
        )
