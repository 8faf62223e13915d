"""Stage-1 vectors in batches, and the padding both stages read: shared by the query path,
indexing (`pipeline/embed.py`), training and evaluation, so that all embed alike."""

from __future__ import annotations

import torch

from coattn_dist.model import RetrievalModel, pad_sequences


def model_device(model: RetrievalModel) -> torch.device:
    return next(model.parameters()).device


def pad_tokens(model: RetrievalModel, tokens: list[torch.Tensor]):
    return pad_sequences(tokens, model.cfg.model.max_tokens)


def pad_segments(model: RetrievalModel, segments: list[torch.Tensor]):
    return pad_sequences(segments, model.cfg.model.max_segments)


def _in_batches(embed, pad, model: RetrievalModel, seqs: list[torch.Tensor], batch: int):
    return torch.cat([embed(*pad(model, seqs[i : i + batch])) for i in range(0, len(seqs), batch)])


@torch.no_grad()
def embed_clips(
    model: RetrievalModel, segments: list[torch.Tensor], batch: int = 256
) -> torch.Tensor:
    return _in_batches(model.stage1.embed_audio, pad_segments, model, segments, batch)


@torch.no_grad()
def embed_texts(
    model: RetrievalModel, tokens: list[torch.Tensor], batch: int = 512
) -> torch.Tensor:
    return _in_batches(model.stage1.embed_text, pad_tokens, model, tokens, batch)


def stage1_matrix(
    model: RetrievalModel, tokens: list[torch.Tensor], segments: list[torch.Tensor]
) -> torch.Tensor:
    """(Q, C) stage-1 cosines of every query against every clip: what Milvus ranks by, as a
    matrix for evaluation."""
    return embed_texts(model, tokens) @ embed_clips(model, segments).T
