"""Training both stages on precomputed features: stage 1 with in-batch InfoNCE, then the reranker
on each query's in-batch clips plus the hard negatives that the trained stage 1 confuses it with.

Features are small (a few KB per clip), so an epoch over thousands of pairs takes seconds on a CPU;
the Ray job only adds data parallelism and checkpointing around these loops.
"""
from __future__ import annotations

import random
from collections.abc import Callable

import torch

from coattn_dist.config import TrainConfig
from coattn_dist.features import Features
from coattn_dist.model import RetrievalModel, hard_negatives, info_nce
from coattn_dist.ranking import embed_clips, embed_texts, pad_segments, pad_tokens

Log = Callable[[dict], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def positive_pairs(features: Features) -> torch.Tensor:
    """(P, 2) (caption, clip) index pairs: one training example per relevant pair."""
    return features.relevant.nonzero()


def batches(pairs: torch.Tensor, size: int, generator: torch.Generator):
    order = torch.randperm(len(pairs), generator=generator)
    for start in range(0, len(pairs), size):
        yield pairs[order[start : start + size]]


def _optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_stage1(model: RetrievalModel, data: Features, cfg: TrainConfig, log: Log | None = None) -> list[float]:
    """Returns the mean loss of every epoch."""
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = _optimizer(model.stage1.parameters(), cfg)
    pairs, losses = positive_pairs(data), []
    model.train()
    for epoch in range(cfg.epochs):
        total = 0.0
        for batch in batches(pairs, cfg.batch_size, gen):
            q, c = batch[:, 0], batch[:, 1]
            t = model.stage1.embed_text(*pad_tokens(model, [data.tokens[i] for i in q]))
            a = model.stage1.embed_audio(*pad_segments(model, [data.segments[i] for i in c]))
            scale = model.stage1.logit_scale.clamp(max=4.6052).exp()  # temperature >= 0.01
            loss = info_nce(scale * t @ a.T, data.relevant[q][:, c])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        losses.append(total / len(pairs))
        if log:
            log({"stage": "stage1", "epoch": epoch + 1, "loss": losses[-1]})
    model.eval()
    return losses


def candidates(batch: torch.Tensor, negatives: torch.Tensor, n_random: int,
               generator: torch.Generator) -> torch.Tensor:
    """(B, K) clips per query: its positive first, then its hard negatives, then other clips of the
    batch. A fixed short list per query keeps a step at B*K pairs instead of B x (all candidates)."""
    q, c = batch[:, 0], batch[:, 1]
    others = c[torch.randint(len(c), (len(c), n_random), generator=generator)]
    return torch.cat([c[:, None], negatives[q], others], dim=1)


def train_reranker(model: RetrievalModel, data: Features, cfg: TrainConfig, log: Log | None = None) -> list[float]:
    """Each query is scored against its positive, its stage-1 hard negatives and random batch clips;
    any candidate that is relevant too counts as a positive."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    model.eval()
    with torch.no_grad():
        stage1 = embed_texts(model, data.tokens) @ embed_clips(model, data.segments).T
    negatives = hard_negatives(stage1, data.relevant, cfg.hard_negatives)
    opt = _optimizer(model.reranker.parameters(), cfg)
    pairs, losses = positive_pairs(data), []
    model.reranker.train()
    for epoch in range(cfg.rerank_epochs):
        total = 0.0
        for batch in batches(pairs, cfg.batch_size, gen):
            q = batch[:, 0]
            cand = candidates(batch, negatives, cfg.batch_negatives, gen)  # (B, K)
            K = cand.shape[1]
            tok, tok_mask = pad_tokens(model, [data.tokens[i] for i in q])
            seg, seg_mask = pad_segments(model, [data.segments[i] for i in cand.reshape(-1)])
            scores = model.reranker(tok.repeat_interleave(K, 0), tok_mask.repeat_interleave(K, 0),
                                    seg, seg_mask).view(len(q), K)
            scale = model.reranker.logit_scale.clamp(max=4.6052).exp()
            loss = info_nce(scale * scores, data.relevant[q[:, None], cand], symmetric=False)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        losses.append(total / len(pairs))
        if log:
            log({"stage": "reranker", "epoch": epoch + 1, "loss": losses[-1]})
    model.eval()
    return losses
