"""Scoring a set of queries against a set of clips with both stages: the one ranking used by
evaluation, ``coattn search`` and the service, so that all three agree."""
from __future__ import annotations

import torch

from coattn_dist.model import RetrievalModel, pad_sequences


def pad_tokens(model: RetrievalModel, tokens: list[torch.Tensor]):
    return pad_sequences(tokens, model.cfg.model.max_tokens)


def pad_segments(model: RetrievalModel, segments: list[torch.Tensor]):
    return pad_sequences(segments, model.cfg.model.max_segments)


@torch.no_grad()
def embed_clips(model: RetrievalModel, segments: list[torch.Tensor], batch: int = 256) -> torch.Tensor:
    out = [model.stage1.embed_audio(*pad_segments(model, segments[i : i + batch]))
           for i in range(0, len(segments), batch)]
    return torch.cat(out)


@torch.no_grad()
def embed_texts(model: RetrievalModel, tokens: list[torch.Tensor], batch: int = 512) -> torch.Tensor:
    out = [model.stage1.embed_text(*pad_tokens(model, tokens[i : i + batch]))
           for i in range(0, len(tokens), batch)]
    return torch.cat(out)


@torch.no_grad()
def rerank(model: RetrievalModel, tokens: list[torch.Tensor], candidates: list[list[torch.Tensor]],
           stage1: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each query's (n_tokens, D) features against its own candidates' segments -> each query's
    fused scores. Every (query, candidate) pair goes through one forward pass: a batch of
    service requests costs one pass, not one per request."""
    counts = [len(c) for c in candidates]
    tok, tok_mask = pad_tokens(model, tokens)
    seg, seg_mask = pad_segments(model, [s for c in candidates for s in c])
    owner = torch.arange(len(tokens), device=tok.device).repeat_interleave(
        torch.tensor(counts, device=tok.device))
    stage2 = model.reranker(tok[owner], tok_mask[owner], seg, seg_mask)
    return list(model.fuse(torch.cat(stage1), stage2).split(counts))


@torch.no_grad()
def stage1_matrix(model: RetrievalModel, tokens: list[torch.Tensor], segments: list[torch.Tensor]) -> torch.Tensor:
    return embed_texts(model, tokens) @ embed_clips(model, segments).T


@torch.no_grad()
def rerank_top(model: RetrievalModel, scores: torch.Tensor, tokens: list[torch.Tensor],
               segments: list[torch.Tensor], depth: int, chunk: int = 2048) -> torch.Tensor:
    """Each query's top-``depth`` clips of ``scores`` rescored by the fused cascade and lifted
    above the rest, as a two-stage system ranks."""
    top = scores.topk(min(depth, scores.shape[1]), dim=1).indices  # (Q, depth)
    tok, tok_mask = pad_tokens(model, tokens)
    seg, seg_mask = pad_segments(model, segments)
    qi = torch.arange(len(tokens)).repeat_interleave(top.shape[1])
    ci = top.reshape(-1)
    stage2 = torch.cat([model.reranker(tok[q], tok_mask[q], seg[c], seg_mask[c])
                        for q, c in zip(qi.split(chunk), ci.split(chunk))]).view_as(top)
    fused = model.fuse(scores.gather(1, top), stage2)
    return scores.scatter(1, top, fused + 10.0)  # cosines lie in [-1, 1]: +10 keeps candidates on top


def score_matrix(model: RetrievalModel, tokens: list[torch.Tensor], segments: list[torch.Tensor],
                 depth: int = 0) -> torch.Tensor:
    """(Q, C) final scores: stage 1 alone (depth 0) or stage 1 + the cascade over its top ``depth``."""
    scores = stage1_matrix(model, tokens, segments)
    return rerank_top(model, scores, tokens, segments, depth) if depth > 0 else scores
