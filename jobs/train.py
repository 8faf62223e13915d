"""``coattn train``: stage 1, then one reranker per requested cascade, from one or more manifests.

Frozen-encoder features are computed once and cached (``--cache``); both stages stop early on
validation mAP@10 (``--val-manifest``, or a held-out tenth of the training clips). With
``--num-workers N`` the same loops run data-parallel on N Ray Train workers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from coattn_dist.config import Config, load_config
from coattn_dist.data import read_manifest
from coattn_dist.encoders import build_audio_encoder, build_text_encoder
from coattn_dist.features import Features
from coattn_dist.metrics import map_at_k
from coattn_dist.model import RetrievalModel, parse_cascade
from coattn_dist.pipeline.segments import build_features_distributed
from coattn_dist.progress import Progress, log_line
from coattn_dist.ranking import score_matrix
from coattn_dist.runtime import init_ray
from coattn_dist.training import seed_everything, train_reranker, train_stage1

DEFAULT_CACHE = Path.home() / ".cache" / "coattn" / "features"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", action="append", required=True, help="training manifest (repeatable)")
    p.add_argument("--out", required=True, help="checkpoint folder: local path or URI")
    p.add_argument("--val-manifest", help="validation manifest (default: a held-out tenth of the clips)")
    p.add_argument("--config", help="YAML/JSON config")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--cascade", help="the reranker cascade (shortcut for --set model.cascade=...)")
    p.add_argument("--cascades", help="train several rerankers on one stage 1, e.g. single,stacked:2,iterated:3")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help="feature cache folder ('' to disable)")
    p.add_argument("--num-workers", type=int, default=1, help="Ray Train data-parallel workers")
    p.add_argument("--storage-options", type=json.loads, default=None, help="fsspec options as JSON")


def read_manifests(paths: list[str], storage_options: dict | None) -> pa.Table:
    return pa.concat_tables([read_manifest(p, storage_options) for p in paths])


def holdout(table: pa.Table, every: int = 10) -> tuple[pa.Table, pa.Table]:
    """(train, val): one clip in ``every``, chosen by a hash of its id so reruns agree."""
    val = [int(hashlib.sha1(c.encode()).hexdigest()[:8], 16) % every == 0 for c in table["clip_id"].to_pylist()]
    mask = pa.array(val)
    return table.filter(pc.invert(mask)), table.filter(mask)


def validation(model: RetrievalModel, val: Features, depth: int):
    """Validation mAP@10 of stage 1 alone (depth 0) or of the two-stage ranking."""
    return lambda: map_at_k(score_matrix(model, val.tokens, val.segments, depth=depth), val.relevant, 10)


def train_all(cfg: Config, train: Features, val: Features, cascades: list[str], out: str,
              storage_options: dict | None, chief: bool = True) -> dict:
    """Stage 1, then each cascade's reranker on that stage 1; returns the log. Only the chief
    (the one worker of a plain run, rank 0 of a data-parallel one) logs and saves."""
    log = (lambda name: log_line(f"train {name}")) if chief else (lambda name: None)
    seed_everything(cfg.train.seed)
    model = RetrievalModel(cfg)
    history = train_stage1(model, train, cfg.train, log("stage1"), validation(model, val, 0))
    best = {"stage1": max(e["val_mAP@10"] for e in history)}
    stage1_state = model.stage1.state_dict()
    for i, cascade in enumerate(cascades):
        cfg.model.cascade = cascade
        seed_everything(cfg.train.seed + i)
        model = RetrievalModel(cfg)
        model.stage1.load_state_dict(stage1_state)
        events = train_reranker(model, train, cfg.train, log(cascade), validation(model, val, cfg.train.rerank_depth))
        best[cascade] = max(e["val_mAP@10"] for e in events)
        history += events
        if chief:
            (model.save if i == 0 else model.save_reranker)(out, storage_options)
    result = {"history": history, "best_val_mAP@10": best}
    if chief:
        with fsspec.open(f"{out}/train_log.json", "w", **(storage_options or {})) as f:
            json.dump(result, f, indent=1)
    return result


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    overrides = [*args.set] + ([f"model.cascade={args.cascade}"] if args.cascade else [])
    cfg = load_config(args.config, overrides)
    cascades = args.cascades.split(",") if args.cascades else [cfg.model.cascade]
    for c in cascades:
        parse_cascade(c)
    table = read_manifests(args.manifest, args.storage_options)
    if args.val_manifest:
        val_table = read_manifest(args.val_manifest, args.storage_options)
    else:
        table, val_table = holdout(table)
    audio_encoder, text_encoder = build_audio_encoder(cfg.audio), build_text_encoder(cfg.text)
    init_ray()  # the clips the cache lacks are encoded on Ray Data, by every worker
    train, val = (build_features_distributed(cfg.audio, audio_encoder, text_encoder, t,
                                             args.storage_options, Progress(f"features {name}"),
                                             args.cache or None)
                  for name, t in (("train", table), ("val", val_table)))
    if args.num_workers > 1:
        from jobs.train_ray import train_distributed

        result = train_distributed(cfg, train, val, cascades, args.out, args.storage_options, args.num_workers)
    else:
        result = train_all(cfg, train, val, cascades, args.out, args.storage_options)
    summary = {"checkpoint": args.out, "cascades": cascades, "train_clips": len(train.clip_ids),
               "train_captions": len(train.texts), "val_clips": len(val.clip_ids),
               "failed": len(train.failures) + len(val.failures), "best_val_mAP@10": result["best_val_mAP@10"],
               "epochs": {s: sum(1 for e in result["history"] if e["stage"] == s)
                          for s in dict.fromkeys(e["stage"] for e in result["history"])},
               "seconds": round(time.monotonic() - start, 1)}
    print(json.dumps(summary))
    return 0

