"""Frozen-encoder features for a manifest: segment sequences per clip, token sequences per caption.

Encoders are frozen, so these are computed once and reused by training, evaluation and the index.
A clip that cannot be decoded is reported with its typed error, never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import torch

from coattn_dist.audio import AudioError, load
from coattn_dist.data import clips, queries


@dataclass
class Failure:
    clip_id: str
    uri: str
    kind: str
    message: str


@dataclass
class Features:
    """A retrieval set in feature space: ``relevant[q, c]`` says clip c answers caption q."""

    clip_ids: list[str]
    uris: list[str]
    segments: list[torch.Tensor]  # per clip: (n_segments, audio_dim)
    texts: list[str]
    tokens: list[torch.Tensor]  # per caption: (n_tokens, text_dim)
    relevant: torch.Tensor  # (len(texts), len(clip_ids)) bool
    failures: list[Failure] = field(default_factory=list)


def encode_clips(encoder, table: pa.Table, batch_size: int = 16, storage_options: dict | None = None,
                 progress=None) -> tuple[dict[str, torch.Tensor], list[Failure]]:
    """clip_id -> segment features for every distinct clip of a manifest table."""
    rows = clips(table).to_pylist()
    out, failures = {}, []
    for start in range(0, len(rows), batch_size):
        batch, waves = [], []
        for row in rows[start : start + batch_size]:
            try:
                waves.append(load(row["audio"], encoder.sample_rate, storage_options))
                batch.append(row["clip_id"])
            except AudioError as err:
                failures.append(Failure(row["clip_id"], row["audio"], err.kind, str(err)))
        if waves:
            out.update(zip(batch, encoder(waves)))
        if progress:
            progress(min(start + batch_size, len(rows)), len(rows))
    return out, failures


def encode_texts(encoder, texts: list[str], batch_size: int = 128) -> list[torch.Tensor]:
    """One (n_tokens, dim) tensor per text, padding stripped."""
    out = []
    for start in range(0, len(texts), batch_size):
        tokens, mask = encoder(texts[start : start + batch_size])
        out.extend(t[m] for t, m in zip(tokens, mask))
    return out


def build_features(audio_encoder, text_encoder, table: pa.Table, storage_options: dict | None = None,
                   progress=None) -> Features:
    segments, failures = encode_clips(audio_encoder, table, storage_options=storage_options,
                                      progress=progress)
    ids = [c for c in clips(table)["clip_id"].to_pylist() if c in segments]
    uris = dict(zip(clips(table)["clip_id"].to_pylist(), clips(table)["audio"].to_pylist()))
    texts, relevant_ids = queries(table)
    column = {c: j for j, c in enumerate(ids)}
    relevant = torch.zeros(len(texts), len(ids), dtype=torch.bool)
    for i, rel in enumerate(relevant_ids):
        relevant[i, [column[c] for c in rel if c in column]] = True
    keep = relevant.any(dim=1)  # captions whose every clip failed to decode cannot be queries
    texts = [t for t, k in zip(texts, keep.tolist()) if k]
    return Features(ids, [uris[c] for c in ids], [segments[c] for c in ids], texts,
                    encode_texts(text_encoder, texts), relevant[keep], failures)
