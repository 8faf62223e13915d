"""Training and evaluation features on Ray Data: the index job's read -> decode -> encode stages
with the audio encoder alone (there is no checkpoint yet), so that a large training set is
encoded by every worker of the cluster rather than by the driver. The features come back to the
driver, which needs them all to train anyway; `coattn_dist.features` caches them (float16)."""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import torch

from coattn_dist.config import AudioEncoderConfig
from coattn_dist.data import clips
from coattn_dist.features import Failure, Features, build_features
from coattn_dist.pipeline.embed import SegmentEncoder, encoder_sample_rate
from coattn_dist.pipeline.runner import build_dataset


def encode_clips_distributed(
    cfg: AudioEncoderConfig,
    table: pa.Table,
    storage_options: dict | None = None,
    progress=None,
    num_workers: int | None = None,
    batch_size: int | None = None,
) -> tuple[dict[str, torch.Tensor], list[Failure]]:
    """clip_id -> segment features for every distinct clip of a manifest table, and the clips
    that failed with their typed error: what `features.encode_clips` returns, computed on Ray."""
    rows = clips(table)
    if not rows.num_rows:
        return {}, []
    todo = pa.table({"clip_id": rows["clip_id"], "uri": rows["audio"]})
    dataset = build_dataset(
        todo,
        encoder_sample_rate(cfg),
        batch_size,
        num_workers,
        storage_options,
        SegmentEncoder,
        {"audio": cfg},
    )
    out, failures = {}, []
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for clip_id, uri, kind, message, segments in zip(
            batch["clip_id"], batch["uri"], batch["kind"], batch["message"], batch["segments"]
        ):
            if kind:
                failures.append(Failure(str(clip_id), str(uri), str(kind), str(message)))
            else:
                out[str(clip_id)] = torch.from_numpy(
                    np.array(segments, dtype=np.float32)
                )  # a writable copy
        if progress:
            progress(len(out) + len(failures), rows.num_rows)
    return out, failures


def build_features_distributed(
    cfg: AudioEncoderConfig,
    audio_encoder,
    text_encoder,
    table: pa.Table,
    storage_options: dict | None = None,
    progress=None,
    cache: str | None = None,
) -> Features:
    """`features.build_features` with the clips that the cache lacks encoded on Ray Data, by
    actors that build the encoder `cfg` names (`audio_encoder`, the same one, names the cache)."""
    encode = functools.partial(
        encode_clips_distributed, cfg, storage_options=storage_options, progress=progress
    )
    return build_features(
        audio_encoder, text_encoder, table, storage_options, progress, cache, encode
    )
