"""``coattn train``: stage 1, then one reranker per requested cascade, from one or more manifests.

Frozen-encoder features are computed once and cached (``--cache``); both stages stop early on
validation mAP@10 (``--val-manifest``, or a tenth of the training recordings held out whole).
With ``--num-workers N`` the same run goes data-parallel on N Ray Train workers.
"""

from __future__ import annotations

import argparse
import json
import time

import pyarrow as pa

from coattn_dist.audio.augment import recording
from coattn_dist.config import load_config
from coattn_dist.data import read_manifest
from coattn_dist.encoders import build_audio_encoder, build_text_encoder
from coattn_dist.features import DEFAULT_CACHE, bed_captions, with_variants
from coattn_dist.model import parse_cascade
from coattn_dist.pipeline.segments import build_features_distributed
from coattn_dist.progress import Progress
from coattn_dist.runtime import init_ray
from coattn_dist.train.run import train_all, validation_split
from jobs.options import STORAGE_HELP, storage_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--manifest", action="append", required=True, help="training manifest (repeatable)"
    )
    p.add_argument("--out", required=True, help="checkpoint folder: local path or URI")
    p.add_argument(
        "--val-manifest",
        action="append",
        help="validation manifest, repeatable (default: a tenth of the recordings, held out whole)",
    )
    p.add_argument(
        "--multi-val-manifest",
        action="append",
        default=[],
        help="validation queries naming several events (e.g. scenes), repeatable: they choose the "
        "reranker's weight for such queries when the validation set has few or none",
    )
    p.add_argument(
        "--rerank-manifest",
        action="append",
        default=[],
        help="more training data for the reranker only, repeatable (e.g. multi-event scenes, "
        "which stage 1 pools over time and learns worse from)",
    )
    p.add_argument("--config", help="YAML/JSON config")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--cascade", help="the reranker cascade (shortcut for --set model.cascade=...)")
    p.add_argument(
        "--cascades",
        help="train several rerankers on one stage 1, e.g. single,stacked:2,iterated:3",
    )
    p.add_argument(
        "--cache", default=str(DEFAULT_CACHE), help="feature cache folder ('' to disable)"
    )
    p.add_argument("--num-workers", type=int, default=1, help="Ray Train data-parallel workers")
    p.add_argument("--storage-options", type=storage_options, default=None, help=STORAGE_HELP)


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    overrides = [*args.set] + ([f"model.cascade={args.cascade}"] if args.cascade else [])
    cfg = load_config(args.config, overrides)
    cascades = args.cascades.split(",") if args.cascades else [cfg.model.cascade]
    for c in cascades:
        parse_cascade(c)

    def read(paths: list[str]) -> pa.Table:
        return pa.concat_tables([read_manifest(p, args.storage_options) for p in paths])

    table = read(args.manifest)
    if args.val_manifest:
        val_table = read(args.val_manifest)
    else:
        table, val_table = validation_split(table, seed=cfg.train.seed)
    audio_encoder, text_encoder = build_audio_encoder(cfg.audio), build_text_encoder(cfg.text)
    init_ray()  # the clips the cache lacks are encoded on Ray Data, by every worker

    def features(name: str, table: pa.Table):
        return build_features_distributed(
            cfg.audio,
            audio_encoder,
            text_encoder,
            table,
            args.storage_options,
            Progress(f"features {name}"),
            args.cache or None,
        )

    train, val = features("train", table), features("val", val_table)
    if cfg.train.audio_aug > 0:  # its recording-condition versions, encoded here and cached
        train = with_variants(
            train,
            audio_encoder,
            table,
            cfg.train.audio_aug_versions,
            args.cache or None,
            args.storage_options,
            Progress("features: recording conditions"),
            recording(cfg.train),
        )
        if cfg.train.bed_captions > 0:
            train = bed_captions(train, table, text_encoder, args.cache or None)
    multi_val = None
    if args.multi_val_manifest:
        multi_val = features("multi-event val", read(args.multi_val_manifest))
    rerank_train = None
    if args.rerank_manifest:
        rerank_train = features("rerank", pa.concat_tables([table, read(args.rerank_manifest)]))
    run_args = (cfg, train, val, cascades, args.out, args.storage_options)
    extra = {"rerank_train": rerank_train, "multi_val": multi_val}
    if args.num_workers > 1:
        from coattn_dist.train.distributed import train_distributed

        result = train_distributed(*run_args, args.num_workers, **extra)
    else:
        result = train_all(*run_args, **extra)
    stages = dict.fromkeys(e["stage"] for e in result["history"])
    summary = {
        "checkpoint": args.out,
        "cascades": cascades,
        "train_clips": len(train.clip_ids),
        "train_captions": len(train.texts),
        "val_clips": len(val.clip_ids),
        "failed": len(train.failures) + len(val.failures),
        "best_val_mAP@10": result["best_val_mAP@10"],
        "epochs": {s: sum(e["stage"] == s for e in result["history"]) for s in stages},
        "seconds": round(time.monotonic() - start, 1),
    }
    print(json.dumps(summary))
    return 0
