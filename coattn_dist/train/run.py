"""One training run: stage 1, then one reranker per cascade on that stage 1, each stopped early on
validation mAP@10; the checkpoint and its log saved by the chief. `coattn train` runs it in one
process, and every Ray Train worker runs it on its share of the batches."""

from __future__ import annotations

import copy
import json
import math

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from coattn_dist.config import Config
from coattn_dist.data import groups_of
from coattn_dist.data.splits import split_groups
from coattn_dist.features import Features
from coattn_dist.metrics import average_precisions, map_at_k
from coattn_dist.model import RetrievalModel
from coattn_dist.progress import log_line
from coattn_dist.query.like import AudioRanking
from coattn_dist.query.rerank import like_matrix, score_matrix, several_flags
from coattn_dist.train.loops import seed_everything, train_reranker, train_stage1

VALIDATION_FRACTION = 0.1
FUSION_GRID = [i / 10 for i in range(11)]  # stage 1's weight; 1.0 is stage 1 alone


def validation_split(
    table: pa.Table, fraction: float = VALIDATION_FRACTION, seed: int = 0
) -> tuple[pa.Table, pa.Table]:
    """(train, val) with every recording group whole on one side: takes of one recording on both
    sides let validation score near-copies (0.90 on ESC-50 while outside data scored 0.08)."""
    groups = groups_of(table)
    ids = list(groups)
    side = split_groups(ids, [groups[c] for c in ids], [""] * len(ids), {"val": fraction}, seed)
    val = pa.array([side[c] == "val" for c in table["clip_id"].to_pylist()])
    return table.filter(pc.invert(val)), table.filter(val)


def validation(model: RetrievalModel, val: Features, depth: int):
    """Validation mAP@10 of stage 1 alone (depth 0) or of the two-stage ranking."""
    kinds = several_flags(val.texts)
    return lambda: map_at_k(
        score_matrix(model, val.tokens, val.segments, depth=depth, several=kinds), val.relevant, 10
    )


def gain_bounds(aps: dict[float, np.ndarray], z: float) -> dict[float, float]:
    """Per weight, the lower confidence bound of its per-query AP gain over stage 1 alone (weight
    1.0): mean - z * standard error."""

    def bound(gain: np.ndarray) -> float:
        spread = gain.std(ddof=1) / math.sqrt(len(gain)) if len(gain) > 1 else 0.0
        return round(float(gain.mean() - z * spread), 6)

    return {w: bound(ap - aps[1.0]) for w, ap in aps.items()}


@torch.no_grad()
def choose_fusion(
    model: RetrievalModel,
    val: Features,
    depth: int,
    z: float = 1.645,
    multi_val: Features | None = None,
) -> dict:
    """Sets the reranker's two stage-1 weights, one for queries of one event and one for queries
    naming several (`several_flags`), each chosen on validation queries of its own kind (those of
    `val`, and of `multi_val`: scenes, say, where `val` has none); returns them with every weight's
    mAP@10 per kind ("multi" for the second).

    A weight must beat stage 1 alone with confidence, not just on average: the chosen one has the
    best lower bound of its gain (`gain_bounds`), so a lift that a few validation queries produce
    (one that did not carry to far test sets: 0.312 -> 0.293 on an unseen package) switches the
    reranker off instead of trusting it; z = 0 is the plain best mean. Ties go to more stage 1.
    A kind without validation queries gets stage 1 alone (one event) or the one-event weight
    (several). Final scores are linear in the weight (candidates and the lift are the same for
    every weight), so two passes per set price the whole grid."""
    model.eval()
    sets = [val] + ([multi_val] if multi_val is not None else [])
    ends = []
    for data in sets:
        ends.append({})
        for w in (0.0, 1.0):
            model.reranker.fusion.fill_(w)  # no `several`: every query takes this weight
            ends[-1][w] = score_matrix(model, data.tokens, data.segments, depth=depth)
    kinds = [torch.tensor(several_flags(d.texts), dtype=torch.bool) for d in sets]

    def of_kind(multi: bool) -> list[tuple[dict, torch.Tensor]]:
        return [
            ({w: m[k == multi] for w, m in e.items()}, d.relevant[k == multi])
            for e, d, k in zip(ends, sets, kinds)
        ]

    single = _confident_weight(of_kind(False), z) or {"weight": 1.0, "queries": 0}
    multi = _confident_weight(of_kind(True), z) or {"weight": single["weight"], "queries": 0}
    model.reranker.fusion.fill_(single["weight"])
    model.reranker.multi_fusion.fill_(multi["weight"])
    w = torch.where(kinds[0], multi["weight"], single["weight"])[:, None]
    overall = map_at_k(w * ends[0][1.0] + (1 - w) * ends[0][0.0], val.relevant, 10)
    return {**single, "val_mAP@10": overall, "multi": multi}


def _confident_weight(parts: list[tuple[dict[float, torch.Tensor], torch.Tensor]], z: float):
    """The grid weight with the best lower bound of its gain over stage 1 (`ends[1.0]`), over the
    queries of every (ends, relevant) part, from the scores at weights 0 and 1 (final scores are
    linear in the weight); ties to more stage 1. None when the parts hold no query."""
    parts = [(e, r) for e, r in parts if len(r)]
    if not parts:
        return None
    aps = {
        w: np.concatenate(
            [average_precisions(w * e[1.0] + (1 - w) * e[0.0], r, 10) for e, r in parts]
        )
        for w in FUSION_GRID
    }
    bounds = gain_bounds(aps, z)
    chosen = max(FUSION_GRID, key=lambda w: (bounds[w], w))
    return {
        "weight": chosen,
        "val_mAP@10": float(aps[chosen].mean()),
        "queries": len(aps[chosen]),
        "z": z,
        "grid": {f"{w:.1f}": float(aps[w].mean()) for w in FUSION_GRID},
        "gain_lower_bound": {f"{w:.1f}": b for w, b in bounds.items()},
    }


@torch.no_grad()
def choose_like_fusion(model: RetrievalModel, val: Features, z: float = 1.645) -> dict | None:
    """Sets `model.like_fusion`, the weight of queries by sound (`query.like`), by the same rule
    on the validation clips: each clip that shares a caption with another is a query, those
    others its relevant clips. None (the setting left alone) when no clip has such a twin."""
    alike = (val.relevant.T.float() @ val.relevant.float()) > 0
    alike.fill_diagonal_(False)
    queries = alike.any(dim=1).nonzero().flatten().tolist()
    if not queries:
        return None
    model.eval()
    ends = {w: like_matrix(model, val.segments, queries, AudioRanking(w)) for w in (0.0, 1.0)}
    choice = _confident_weight([(ends, alike[queries])], z)
    model.cfg.model.like_fusion = choice["weight"]
    return choice


def train_all(
    cfg: Config,
    train: Features,
    val: Features,
    cascades: list[str],
    out: str,
    storage_options: dict | None = None,
    chief: bool = True,
    rerank_train: Features | None = None,
    multi_val: Features | None = None,
) -> dict:
    """Stage 1, then each cascade's reranker on that stage 1 (on `rerank_train` when given: the
    training set plus what only the reranker can use, such as multi-event scenes, which stage 1
    pools away and learns worse from), its fusion weights chosen on `val` and `multi_val`
    (`choose_fusion`); returns the log. Only the chief (the one worker of a plain
    run, rank 0 of a data-parallel one) logs and saves."""

    def log(name):
        return log_line(f"train {name}") if chief else None

    seed_everything(cfg.train.seed)
    model = RetrievalModel(copy.deepcopy(cfg))
    history = train_stage1(model, train, cfg.train, log("stage1"), validation(model, val, 0))
    best = {"stage1": max(e["val_mAP@10"] for e in history)}
    stage1_state = model.stage1.state_dict()
    fusion = {}
    if cfg.train.choose_fusion and (like := choose_like_fusion(model, val, cfg.train.fusion_z)):
        fusion["like"] = like
    for i, cascade in enumerate(cascades):
        run_cfg = copy.deepcopy(model.cfg)
        run_cfg.model.cascade = cascade
        seed_everything(cfg.train.seed + i)
        model = RetrievalModel(run_cfg)
        model.stage1.load_state_dict(stage1_state)
        depth = cfg.train.rerank_depth
        events = train_reranker(
            model, rerank_train or train, cfg.train, log(cascade), validation(model, val, depth)
        )
        best[cascade] = max(e["val_mAP@10"] for e in events)
        if cfg.train.choose_fusion:
            fusion[cascade] = choose_fusion(model, val, depth, cfg.train.fusion_z, multi_val)
            best[cascade] = fusion[cascade]["val_mAP@10"]
        history += events
        if chief:
            (model.save if i == 0 else model.save_reranker)(out, storage_options)
    result = {"history": history, "best_val_mAP@10": best, "fusion": fusion}
    if chief:
        with fsspec.open(f"{out}/train_log.json", "w", **(storage_options or {})) as f:
            json.dump(result, f, indent=1)
    return result
