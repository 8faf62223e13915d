"""``coattn evaluate``: every checkpoint on every test set, each cell a Ray task.

For each (checkpoint, test set): R@1/5/10, mAP@10 (DCASE when one clip per caption), multi-relevant
mAP@10, clip accuracy and ms per query of stage 1 alone and of stage 1 + each cascade. Optional:
the order test on scenes, a noise sweep (white, pink, real background noise at several SNRs) and
perturbed query text, on the first test set. Writes metrics.json, report.md and PNG plots.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections import Counter

import ray
import torch

from coattn_dist.checkpoints import resolve_checkpoint
from coattn_dist.config import TextEncoderConfig
from coattn_dist.data import read_manifest
from coattn_dist.encoders import build_audio_encoder, build_text_encoder
from coattn_dist.evaluation.cells import (
    evaluate_systems,
    load_noise,
    load_systems,
    noisy_cell,
    order_accuracy,
    perturbed_text_cell,
    without_labels,
)
from coattn_dist.evaluation.report import write_report
from coattn_dist.features import DEFAULT_CACHE
from coattn_dist.model import cascades, read_config
from coattn_dist.pipeline.segments import build_features_distributed
from coattn_dist.progress import Progress
from coattn_dist.runtime import init_ray, reporting_node
from jobs.options import STORAGE_HELP, storage_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        action="append",
        metavar="[NAME=]CKPT",
        help="repeatable (default: the shipped general one)",
    )
    p.add_argument(
        "--manifest",
        action="append",
        required=True,
        metavar="[NAME=]M",
        help="test set; repeatable",
    )
    p.add_argument("--report", required=True, help="report folder: local path or URI")
    p.add_argument(
        "--cascades", help="comma-separated (default: every cascade the checkpoint holds)"
    )
    p.add_argument(
        "--rerank", type=int, default=20, help="stage-1 candidates each cascade rescores"
    )
    p.add_argument(
        "--order", help="JSONL of {clip_id, caption, swapped}: the order test (see coattn prepare)"
    )
    p.add_argument("--snr", default="", help="noise sweep SNRs in dB, e.g. clean,20,10,5,0")
    p.add_argument("--noise", default="white,pink", help="noise kinds: white, pink, real")
    p.add_argument(
        "--noise-clips", help="manifest of real background-noise clips (for --noise real)"
    )
    p.add_argument(
        "--perturb-text",
        action="store_true",
        help="also score queries with typos and dropped words",
    )
    p.add_argument(
        "--cache", default=str(DEFAULT_CACHE), help="feature cache folder ('' to disable)"
    )
    p.add_argument("--storage-options", type=storage_options, default=None, help=STORAGE_HELP)


def named(values: list[str]) -> dict[str, str]:
    """["a=x", "y"] -> {"a": "x", "y": "y"}: names label the report's rows and columns."""
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        out[name if sep else v.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]] = (
            path if sep else v
        )
    return out


@functools.lru_cache(maxsize=4)
def _systems(checkpoint, wanted, storage_options_json):
    """Loaded once per Ray worker process: workers are reused across the cells of a run."""
    torch.set_num_threads(1)  # one core per task: Ray runs as many tasks as there are cores
    so = json.loads(storage_options_json)
    return load_systems(checkpoint, list(wanted) if wanted else cascades(checkpoint, so), so)


@functools.lru_cache(maxsize=2)
def _audio_encoder(cfg):
    return build_audio_encoder(cfg)


@functools.lru_cache(maxsize=2)
def _text_encoder(cfg):
    return build_text_encoder(cfg)


@ray.remote(num_cpus=1)
@reporting_node
def systems_task(checkpoint, wanted, storage_options, data, depth):
    return evaluate_systems(_systems(checkpoint, wanted, storage_options), data, depth)


@ray.remote(num_cpus=1)
@reporting_node
def order_task(checkpoint, wanted, storage_options, text_cfg, data, order):
    systems = _systems(checkpoint, wanted, storage_options)
    return order_accuracy(systems, _text_encoder(text_cfg), data, order)


@ray.remote(num_cpus=1)
@reporting_node
def noise_task(checkpoints, wanted, storage_options, cfg, table, kind, snr, noise_waves, depth):
    systems = {c: _systems(path, wanted, storage_options) for c, path in checkpoints.items()}
    return noisy_cell(
        systems,
        _audio_encoder(cfg.audio),
        _text_encoder(cfg.text),
        table,
        kind,
        snr,
        noise_waves,
        depth,
    )


@ray.remote(num_cpus=1)
@reporting_node
def text_task(checkpoint, wanted, storage_options, text_cfg: TextEncoderConfig, data, depth):
    systems = _systems(checkpoint, wanted, storage_options)
    return perturbed_text_cell(systems, _text_encoder(text_cfg), data, depth)


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    so, depth = args.storage_options, args.rerank
    so_key = json.dumps(so or {}, sort_keys=True)  # hashable, for the workers' model cache
    wanted = tuple(args.cascades.split(",")) if args.cascades else None
    checkpoints = named(args.checkpoint or [f"general={resolve_checkpoint()}"])
    manifests = named(args.manifest)
    # every checkpoint must read features its encoders made: they share one config's encoders
    cfg = read_config(next(iter(checkpoints.values())), so)
    audio_encoder, text_encoder = build_audio_encoder(cfg.audio), build_text_encoder(cfg.text)
    tables = {name: read_manifest(path, so) for name, path in manifests.items()}
    init_ray()  # the clips the cache lacks are encoded on Ray Data, by every worker
    features = functools.partial(
        build_features_distributed,
        cfg.audio,
        audio_encoder,
        text_encoder,
        storage_options=so,
        cache=args.cache or None,
    )
    data = {name: features(t, progress=Progress(f"features {name}")) for name, t in tables.items()}

    refs = {
        c: {m: systems_task.remote(path, wanted, so_key, data[m], depth) for m in data}
        for c, path in checkpoints.items()
    }
    order_refs, noise_refs, clean_refs, text_refs = {}, {}, {}, {}
    first = next(iter(data))
    if args.order:
        with open(args.order) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        ids = {
            r["clip_id"] for r in rows
        }  # the order test runs on the test set that holds its scenes
        scenes = max(data, key=lambda m: len(ids & set(data[m].clip_ids)))
        order_refs = {
            c: order_task.remote(p, wanted, so_key, cfg.text, data[scenes], rows)
            for c, p in checkpoints.items()
        }
    snrs = [s for s in args.snr.split(",") if s]
    if snrs:
        noise_table = read_manifest(args.noise_clips, so) if args.noise_clips else None
        waves = (
            load_noise(noise_table, audio_encoder.sample_rate)[0] if noise_table is not None else []
        )
        held_out = set(noise_table["label"].to_pylist()) if noise_table is not None else set()
        swept = without_labels(tables[first], held_out)
        clean = features(swept)
        if "real" in args.noise.split(",") and not waves:
            raise SystemExit(
                "--noise real needs --noise-clips (a manifest of background-noise clips)"
            )
        clean_refs = {
            c: systems_task.remote(path, wanted, so_key, clean, depth)
            for c, path in checkpoints.items()
        }
        noise_refs = {
            (kind, s): noise_task.remote(
                checkpoints, wanted, so_key, cfg, swept, kind, float(s), waves, depth
            )
            for kind in args.noise.split(",")
            for s in snrs
            if s != "clean"
        }
    if args.perturb_text:
        text_refs = {
            c: text_task.remote(p, wanted, so_key, cfg.text, data[first], depth)
            for c, p in checkpoints.items()
        }

    pending = [r for d in refs.values() for r in d.values()] + [
        *order_refs.values(),
        *text_refs.values(),
        *clean_refs.values(),
        *noise_refs.values(),
    ]
    progress, results, placement = Progress("evaluate cells", len(pending)), {}, Counter()
    while pending:
        (done,), pending = ray.wait(pending, num_returns=1)
        node, results[done] = ray.get(done)
        placement[node] += 1
        progress(progress.done + 1)

    matrix = {c: {m: results[r] for m, r in tests.items()} for c, tests in refs.items()}
    metrics = {"systems": matrix[next(iter(matrix))][first], "matrix": matrix}
    if order_refs:
        metrics["order"] = {c: results[r] for c, r in order_refs.items()}
    if snrs:
        clean = {c: {k: m["mAP@10"] for k, m in results[r].items()} for c, r in clean_refs.items()}
        noisy = {key: results[r] for key, r in noise_refs.items()}
        metrics["noise"] = {
            c: {
                kind: {s: clean[c] if s == "clean" else noisy[(kind, s)][c] for s in snrs}
                for kind in args.noise.split(",")
            }
            for c in checkpoints
        }
    if text_refs:
        metrics["text_perturbation"] = {c: results[r] for c, r in text_refs.items()}
    metrics["placement"] = dict(placement)  # cells per Ray node id
    files = write_report(metrics, args.report, so)
    print(
        json.dumps(
            {
                "report": args.report,
                "files": files,
                "systems": metrics["systems"],
                "seconds": round(time.monotonic() - start, 1),
            }
        )
    )
    return 0
