"""Training both stages on precomputed features: stage 1 with in-batch InfoNCE, then the reranker
on each query's in-batch clips plus the hard negatives that the trained stage 1 confuses it with.

Features are small (a few KB per clip), so an epoch over thousands of pairs takes seconds on a CPU;
the Ray job only adds data parallelism and checkpointing around these loops.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F

from coattn_dist.config import TrainConfig
from coattn_dist.features import Features
from coattn_dist.model import RetrievalModel, hard_negatives, info_nce, soft_info_nce
from coattn_dist.query.embed import embed_clips, embed_texts, pad_segments, pad_tokens

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


def _average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Data parallelism without a wrapper: every worker steps with the mean gradient, so all
    replicas stay identical (same seed, same init, same updates)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()


def _my_batches(pairs: torch.Tensor, size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """This worker's share of the epoch: every worker draws the same permutation, then takes every
    world-th batch; the remainder is dropped so that all workers step the same number of times."""
    all_batches = list(batches(pairs, size, gen))
    if not (dist.is_available() and dist.is_initialized()):
        return all_batches
    world, rank = dist.get_world_size(), dist.get_rank()
    usable = max(world, len(all_batches) - len(all_batches) % world)
    return [b for i, b in enumerate(all_batches[:usable]) if i % world == rank]


class WeightAverage:
    """An exponential moving average of a module's weights, with the usual warm-up
    (decay min(d, (1 + n) / (10 + n)) at step n) so the random init fades within the first steps.
    `swapped()` puts the average in the module for validation and saving."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.module, self.decay, self.steps = module, decay, 0
        self.average = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for k, v in self.module.state_dict().items():
            if v.is_floating_point():
                self.average[k].lerp_(v, 1 - d)
            else:
                self.average[k].copy_(v)

    @contextlib.contextmanager
    def swapped(self):
        live = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        self.module.load_state_dict(self.average)
        try:
            yield
        finally:
            self.module.load_state_dict(live)


def fit(
    module: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    pairs: torch.Tensor,
    cfg: TrainConfig,
    epochs: int,
    batch_size: int,
    gen: torch.Generator,
    stage: str,
    log: Log | None = None,
    evaluate: Callable[[], float] | None = None,
) -> list[dict]:
    """Epochs of AdamW over shuffled batches of ``pairs``. With ``evaluate`` (validation mAP@10,
    higher is better) training stops after ``cfg.patience`` epochs without a new best, and the
    best epoch's weights are restored. With ``cfg.ema`` the moving average of the weights is what
    is validated and kept."""
    params = [p for p in module.parameters() if p.requires_grad]
    opt = _optimizer(params, cfg)
    average = WeightAverage(module, cfg.ema) if cfg.ema > 0 else None
    history, best, best_state, stale = [], -1.0, None, 0
    for epoch in range(1, epochs + 1):
        module.train()
        total, seen = 0.0, 0
        for batch in _my_batches(pairs, batch_size, gen):
            loss = loss_fn(batch)
            opt.zero_grad()
            loss.backward()
            _average_gradients(params)
            opt.step()
            if average is not None:
                average.update()
            total, seen = total + loss.item() * len(batch), seen + len(batch)
        module.eval()
        event = {"stage": stage, "epoch": epoch, "loss": total / max(seen, 1)}
        with average.swapped() if average is not None else contextlib.nullcontext():
            if evaluate is not None:
                event["val_mAP@10"] = score = evaluate()
                if score > best:
                    best, stale = score, 0
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    stale += 1
            elif average is not None and epoch == epochs:
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        history.append(event)
        if log:
            log(event)
        if evaluate is not None and stale >= cfg.patience:
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    return history


def crop_segments(
    seqs: list[torch.Tensor], chance: float, gen: torch.Generator
) -> list[torch.Tensor]:
    """Each clip, with probability ``chance``, cut to a random run of its segments: a short take
    and a long recording of one sound should pool to the same place (corpus clips are mostly
    one segment long, a user's recordings rarely are)."""
    out = []
    for s in seqs:
        n = len(s)
        if n > 1 and torch.rand((), generator=gen) < chance:
            length = int(torch.randint(1, n + 1, (), generator=gen))
            start = int(torch.randint(0, n - length + 1, (), generator=gen))
            s = s[start : start + length]
        out.append(s)
    return out


def heard_in(
    seqs: list[torch.Tensor],
    variants: list[list[torch.Tensor]],
    chance: float,
    gen: torch.Generator,
) -> tuple[list[torch.Tensor], list[int]]:
    """Each clip, with probability ``chance``, replaced by one of its augmented versions (the same
    sound under other recording conditions, `Features.variants`); also which version each row
    was heard in (-1: the clip itself)."""
    out, heard = [], []
    for s, versions in zip(seqs, variants):
        v = -1
        if versions and torch.rand((), generator=gen) < chance:
            v = int(torch.randint(len(versions), (), generator=gen))
            s = versions[v]
        out.append(s)
        heard.append(v)
    return out, heard


def name_beds(
    tokens: list[torch.Tensor],
    named: list[list[torch.Tensor | None]],
    heard: list[int],
    chance: float,
    gen: torch.Generator,
) -> list[torch.Tensor]:
    """Each caption whose clip was heard over a bed replaced, with probability ``chance``, by the
    caption naming the bed too (`features.bed_captions`)."""
    out = []
    for t, versions, v in zip(tokens, named, heard):
        if v >= 0 and versions[v] is not None and torch.rand((), generator=gen) < chance:
            t = versions[v]
        out.append(t)
    return out


def drop_tokens(
    seqs: list[torch.Tensor], chance: float, gen: torch.Generator
) -> list[torch.Tensor]:
    """Each caption without a random share ``chance`` of its token features (one always stays):
    a caption is matched by all of its words, not by the one word its concept was learned by."""
    out = []
    for s in seqs:
        keep = torch.rand(len(s), generator=gen) >= chance
        if not keep.any():
            keep[int(torch.randint(len(s), (), generator=gen))] = True
        out.append(s[keep])
    return out


def stage1_loss(
    model: RetrievalModel, tokens, segments, loss: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """`loss` of each stage-1 member's (captions, clips) logits, averaged: an ensemble's members
    each learn on their own. `tokens`, `segments`: padded batches with their masks."""
    losses = []
    for part in model.stage1.parts():
        scale = part.logit_scale.clamp(max=4.6052).exp()  # temperature >= 0.01
        losses.append(loss(scale * part.embed_text(*tokens) @ part.embed_audio(*segments).T))
    return sum(losses) / len(losses)


def train_stage1(
    model: RetrievalModel,
    data: Features,
    cfg: TrainConfig,
    log: Log | None = None,
    evaluate: Callable[[], float] | None = None,
) -> list[dict]:
    """In-batch symmetric InfoNCE: every other clip of the batch is a negative for a caption
    (softened by caption similarity when ``cfg.soft_targets`` > 0)."""
    if cfg.audio_aug > 0 and not data.variants:
        raise ValueError(
            "train.audio_aug > 0 hears clips in their recording-condition versions, and these "
            "features carry none: build them with features.with_variants, or set audio_aug 0"
        )
    if cfg.bed_captions > 0 and not data.variant_tokens:
        raise ValueError(
            "train.bed_captions > 0 names the bed behind a version in its caption, and these "
            "features name none: build them with features.bed_captions (and train.audio_bed > 0)"
        )
    sentences = None
    if cfg.soft_targets > 0:  # the frozen text encoder's sentence vectors: mean of its tokens
        sentences = F.normalize(torch.stack([t.float().mean(dim=0) for t in data.tokens]), dim=1)
    crop_gen = torch.Generator().manual_seed(cfg.seed + 1)  # its own stream: batches stay the same
    drop_gen = torch.Generator().manual_seed(cfg.seed + 2)
    aug_gen = torch.Generator().manual_seed(cfg.seed + 3)
    bed_gen = torch.Generator().manual_seed(cfg.seed + 4)

    def loss_fn(batch: torch.Tensor) -> torch.Tensor:
        q, c = batch[:, 0], batch[:, 1]
        tokens = [data.tokens[i] for i in q]
        segments = [data.segments[i] for i in c]
        if cfg.audio_aug > 0:
            segments, heard = heard_in(
                segments, [data.variants[i] for i in c], cfg.audio_aug, aug_gen
            )
            if cfg.bed_captions > 0:
                named = [data.variant_tokens[i] for i in c]
                tokens = name_beds(tokens, named, heard, cfg.bed_captions, bed_gen)
        if cfg.token_drop > 0:
            tokens = drop_tokens(tokens, cfg.token_drop, drop_gen)
        tokens = pad_tokens(model, tokens)
        if cfg.segment_crop > 0:
            segments = crop_segments(segments, cfg.segment_crop, crop_gen)
        segments = pad_segments(model, segments)
        positives = data.relevant[q][:, c]
        # column j's clip is worded by caption q[j]
        similarity = None if sentences is None else sentences[q] @ sentences[q].T
        if similarity is None:
            return stage1_loss(model, tokens, segments, lambda lg: info_nce(lg, positives))
        return stage1_loss(
            model,
            tokens,
            segments,
            lambda lg: soft_info_nce(
                lg, positives, similarity, cfg.soft_targets, cfg.soft_temperature
            ),
        )

    gen = torch.Generator().manual_seed(cfg.seed)
    return fit(
        model.stage1,
        loss_fn,
        positive_pairs(data),
        cfg,
        cfg.epochs,
        cfg.batch_size,
        gen,
        "stage1",
        log,
        evaluate,
    )


def candidates(
    batch: torch.Tensor, negatives: torch.Tensor, n_random: int, generator: torch.Generator
) -> torch.Tensor:
    """(B, K) clips per query: its positive first, then its hard negatives, then other clips of the
    batch. A fixed short list per query keeps a step at B*K pairs instead of B x (all candidates)."""
    q, c = batch[:, 0], batch[:, 1]
    others = c[torch.randint(len(c), (len(c), n_random), generator=generator)]
    return torch.cat([c[:, None], negatives[q], others], dim=1)


def train_reranker(
    model: RetrievalModel,
    data: Features,
    cfg: TrainConfig,
    log: Log | None = None,
    evaluate: Callable[[], float] | None = None,
) -> list[dict]:
    """Each query is scored against its positive, its stage-1 hard negatives and random batch clips;
    any candidate that is relevant too counts as a positive. A caption that names events in
    sequence also meets its order-swapped twin: its clip must prefer the true order (audio ->
    text). Stage 1 pools over time, so this order signal exists even where no clip of the reversed
    order is there to be mined as a hard negative."""
    model.eval()
    with torch.no_grad():
        stage1 = embed_texts(model, data.tokens) @ embed_clips(model, data.segments).T
    negatives = hard_negatives(stage1, data.relevant, cfg.hard_negatives)
    gen = torch.Generator().manual_seed(cfg.seed + 1)

    def loss_fn(batch: torch.Tensor) -> torch.Tensor:
        q = batch[:, 0]
        cand = candidates(batch, negatives, cfg.batch_negatives, gen)  # (B, K)
        K = cand.shape[1]
        tok, tok_mask = pad_tokens(model, [data.tokens[i] for i in q])
        seg, seg_mask = pad_segments(model, [data.segments[i] for i in cand.reshape(-1)])
        scores = model.reranker(
            tok.repeat_interleave(K, 0), tok_mask.repeat_interleave(K, 0), seg, seg_mask
        ).view(len(q), K)
        scale = model.reranker.logit_scale.clamp(max=4.6052).exp()
        loss = info_nce(scale * scores, data.relevant[q[:, None], cand], symmetric=False)
        rows = [k for k, i in enumerate(q.tolist()) if i in data.swapped]
        if rows:
            twins = model.reranker(
                *pad_tokens(model, [data.swapped[int(batch[k, 0])] for k in rows]),
                *pad_segments(model, [data.segments[int(batch[k, 1])] for k in rows]),
            )
            loss = loss + F.softplus(scale * (twins - scores[rows, 0])).mean()
        return loss

    return fit(
        model.reranker,
        loss_fn,
        positive_pairs(data),
        cfg,
        cfg.rerank_epochs,
        cfg.rerank_batch_size,
        gen,
        model.cfg.model.cascade,
        log,
        evaluate,
    )
