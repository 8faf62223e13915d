"""One evaluation cell = one checkpoint x one test set x one condition, scored for every system
(stage 1 alone, stage 1 + each cascade). Cells are independent, so the job runs them as Ray tasks.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pyarrow as pa
import torch

from coattn_dist.audio import AudioError, load
from coattn_dist.data import clips
from coattn_dist.features import Failure, Features, build_features, cached_texts
from coattn_dist.metrics import clip_classification_accuracy, map_at_k, retrieval_metrics
from coattn_dist.model import RetrievalModel
from coattn_dist.noise import fit_length, mix_at_snr, perturb_text, synthetic
from coattn_dist.query.embed import (
    embed_clips,
    embed_texts,
    stage1_matrix,
)
from coattn_dist.query.rerank import rerank, rerank_matrix, several_flags

STAGE1 = "stage1"
# Identical inputs score up to ~2e-7 apart in different rows of one batch: closer is a tie.
TIE = 1e-5


def load_systems(
    checkpoint: str, cascades: list[str], storage_options: dict | None = None
) -> dict[str, RetrievalModel]:
    """ "stage1" plus one model per cascade; all share the checkpoint's stage 1."""
    models = {
        c: RetrievalModel.load(checkpoint, cascade=c, storage_options=storage_options)
        for c in cascades
    }
    first = (
        next(iter(models.values()))
        if models
        else RetrievalModel.load(checkpoint, storage_options=storage_options)
    )
    return {STAGE1: first, **models}


def metrics_for(model: RetrievalModel, system: str, data: Features, depth: int) -> dict[str, float]:
    """R@k, mAP@10, clip accuracy and the reranker's own cost in ms per query (the stage-1 matrix
    stands in for Milvus and is not timed)."""
    scores = stage1_matrix(model, data.tokens, data.segments)
    ms = 0.0
    if system != STAGE1:
        start = time.perf_counter()
        kinds = several_flags(data.texts)
        scores = rerank_matrix(model, scores, data.tokens, data.segments, depth, several=kinds)
        ms = (time.perf_counter() - start) * 1000 / len(data.texts)
    out = retrieval_metrics(scores, data.relevant)
    out["mAP@10_multi"] = map_at_k(scores, data.relevant, 10)
    out["clip_accuracy"] = clip_classification_accuracy(scores, data.relevant)
    out["ms_per_query"] = ms
    return out


def evaluate_systems(
    systems: dict[str, RetrievalModel], data: Features, depth: int
) -> dict[str, dict]:
    return {name: metrics_for(model, name, data, depth) for name, model in systems.items()}


@torch.no_grad()
def order_accuracy(
    systems: dict[str, RetrievalModel], text_encoder, data: Features, order: list[dict]
) -> dict[str, float]:
    """Fraction of scenes whose true-order caption outscores the order-swapped one. A tie counts
    as a miss: a system that cannot tell the orders apart must not score 0.5 by luck."""
    index = {cid: i for i, cid in enumerate(data.clip_ids)}
    rows = [r for r in order if r["clip_id"] in index]
    texts = [r["caption"] for r in rows] + [r["swapped"] for r in rows]
    tokens = cached_texts(text_encoder, texts, None)
    segments = [data.segments[index[r["clip_id"]]] for r in rows] * 2
    out = {}
    for name, model in systems.items():
        scores = (embed_texts(model, tokens) * embed_clips(model, segments)).sum(1)
        if name != STAGE1:  # each caption against its own scene: the ranking's own rerank
            scores = torch.cat(
                rerank(
                    model,
                    tokens,
                    [[seg] for seg in segments],
                    list(scores[:, None]),
                    several_flags(texts),
                )
            )
        out[name] = float((scores[: len(rows)] > scores[len(rows) :] + TIE).float().mean())
    return out


def without_labels(table: pa.Table, labels: set[str]) -> pa.Table:
    """Drops clips whose label (or any " | "-joined part of it) is a noise class."""
    keep = [not (set((label or "").split(" | ")) & labels) for label in table["label"].to_pylist()]
    return table.filter(pa.array(keep))


class NoisyEncoder:
    """An audio encoder that mixes noise into every clip at a fixed SNR before embedding; the
    noise of a clip depends only on its position and the seed, so every system sees the same."""

    def __init__(
        self, encoder, kind: str, snr_db: float, noise_waves: list[np.ndarray], seed: int = 0
    ):
        self.encoder, self.kind, self.snr_db, self.noise_waves = encoder, kind, snr_db, noise_waves
        self.sample_rate, self.dim = encoder.sample_rate, encoder.dim
        self.rng = np.random.default_rng(seed)

    def __call__(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        mixed = []
        for w in waves:
            if self.kind == "real":
                noise = fit_length(
                    self.noise_waves[self.rng.integers(len(self.noise_waves))], len(w), self.rng
                )
            else:
                noise = synthetic(self.kind, len(w), self.rng)
            mixed.append(mix_at_snr(w, noise, self.snr_db))
        return self.encoder(mixed)


def load_noise(table: pa.Table, sample_rate: int) -> tuple[list[np.ndarray], list[Failure]]:
    waves, failures = [], []
    for row in clips(table).to_pylist():
        try:
            waves.append(load(row["audio"], sample_rate))
        except AudioError as err:
            failures.append(Failure(row["clip_id"], row["audio"], err.kind, str(err)))
    return waves, failures


def noisy_cell(
    systems_by_checkpoint: dict[str, dict[str, RetrievalModel]],
    audio_encoder,
    text_encoder,
    table: pa.Table,
    kind: str,
    snr: float,
    noise_waves: list[np.ndarray],
    depth: int,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """mAP@10 of every checkpoint's systems on the collection mixed with noise: the noisy audio is
    embedded once and shared, since every checkpoint reads the same encoder."""
    encoder = NoisyEncoder(audio_encoder, kind, snr, noise_waves, seed)
    data = build_features(encoder, text_encoder, table)
    return {
        ckpt: {name: m["mAP@10"] for name, m in evaluate_systems(systems, data, depth).items()}
        for ckpt, systems in systems_by_checkpoint.items()
    }


def perturbed_text_cell(
    systems: dict[str, RetrievalModel], text_encoder, data: Features, depth: int, seed: int = 0
) -> dict:
    rng = np.random.default_rng(seed)
    texts = [perturb_text(t, rng) for t in data.texts]
    noisy = dataclasses.replace(data, texts=texts, tokens=cached_texts(text_encoder, texts, None))
    return {name: m["mAP@10"] for name, m in evaluate_systems(systems, noisy, depth).items()}
