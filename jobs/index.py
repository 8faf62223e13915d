"""`coattn index`: embed audio from a folder, a bucket or a manifest into a Milvus collection.

Runs on the local Ray, or on a cluster unchanged: `ray job submit -- python -m jobs.index ...`
(`runtime.init_ray` joins the cluster named by RAY_ADDRESS, else starts a local Ray); on one
small machine, in one process without Ray (`--layout`, `pipeline.runner.choose_layout`).
Safe to rerun: clips already in the collection are skipped, new files are picked up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, fields, replace

from coattn_dist.audio import DEFAULT_LIMITS, DecodeLimits
from coattn_dist.checkpoints import resolve_checkpoint
from coattn_dist.encoders.aisfx import PRECISIONS
from coattn_dist.pipeline.reader import list_folder, list_manifest
from coattn_dist.pipeline.runner import LAYOUTS, IndexingStopped, choose_layout, run_index
from coattn_dist.runtime import init_ray
from jobs.options import STORAGE_HELP, storage_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--source", help="folder or URI prefix to list for audio (s3://bucket/audio)"
    )
    source.add_argument(
        "--manifest", help="a manifest (CSV/Parquet/JSONL, Clotho, AudioCaps, ESC-50)"
    )
    p.add_argument(
        "--checkpoint", help="checkpoint folder or URI (default: the shipped general one)"
    )
    p.add_argument(
        "--milvus-uri", required=True, help="Milvus Lite path (./milvus.db) or http://host:19530"
    )
    p.add_argument("--collection", required=True)
    p.add_argument(
        "--failures",
        default="failures.parquet",
        help="Parquet table of the clips that failed (uri, clip_id, kind, message)",
    )
    p.add_argument(
        "--batch-size", type=int, help="clips per embedding call (default: 4 on CPUs, 16 on GPUs)"
    )
    p.add_argument(
        "--num-workers", type=int, help="embedding actors (default: one per GPU, else per CPU)"
    )
    p.add_argument(
        "--embed-threads",
        type=int,
        help="torch threads per embedding actor on CPUs (default: the measured layout)",
    )
    p.add_argument("--num-writers", type=int, default=2, help="concurrent Milvus write tasks")
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="auto",
        help="ray: the Ray Data job (any cluster); local: one process, threads overlapping the "
        "stages; auto: local on a machine of at most 2 CPUs without a cluster or GPU, else ray",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="the audio CNN's arithmetic; auto: bfloat16 on CPUs that have it in hardware "
        "(about 2x faster, ESC-50 mAP@10 within 0.001), else float32",
    )
    p.add_argument(
        "--storage-options",
        type=storage_options,
        default={},
        help=STORAGE_HELP,
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="also remove the clips whose file is gone from the source",
    )
    p.add_argument(
        "--reindex",
        action="store_true",
        help="drop the collection and embed every clip again (after retraining the checkpoint)",
    )
    defaults = ", ".join(
        f"{f.name}={getattr(DEFAULT_LIMITS, f.name)}" for f in fields(DecodeLimits)
    )
    p.add_argument(
        "--decode-limit",
        type=decode_limit,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"raise or lower a cap a file must meet to be decoded; repeatable ({defaults})",
    )


def decode_limit(text: str) -> tuple[str, float]:
    """``max_seconds=7200`` → ("max_seconds", 7200): one cap of `audio.DecodeLimits`."""
    name, _, value = text.partition("=")
    names = [f.name for f in fields(DecodeLimits)]
    if name not in names or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(names)}")
    try:
        return name, float(value) if name == "max_seconds" else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} needs a number, not {value!r}") from None


def limits_from(pairs: list[tuple[str, float]]) -> DecodeLimits:
    try:
        return replace(DEFAULT_LIMITS, **dict(pairs))
    except ValueError as error:
        raise SystemExit(f"coattn index: {error}") from None


def source_root(source: str) -> str:
    """The folder or prefix as the collection records it: a local folder made absolute."""
    return source.rstrip("/") if "://" in source else os.path.abspath(source)


def run(args: argparse.Namespace) -> int:
    options, limits = args.storage_options, limits_from(args.decode_limit)
    try:
        listing = (
            list_folder(args.source, options)
            if args.source
            else list_manifest(args.manifest, options)
        )
    except (OSError, ValueError) as error:
        print(f"coattn index: {error}", file=sys.stderr)
        return 2
    layout = choose_layout(args.layout)
    if layout == "ray":
        init_ray()
    try:
        summary = run_index(
            listing,
            resolve_checkpoint(args.checkpoint),
            args.milvus_uri,
            args.collection,
            args.failures,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            num_writers=args.num_writers,
            storage_options=options,
            limits=limits,
            roots=[source_root(args.source)] if args.source else None,
            prune=args.prune,
            reindex=args.reindex,
            embed_threads=args.embed_threads,
            layout=layout,
            precision=args.precision,
        )
    except IndexingStopped as stopped:
        print(f"coattn index: stopped: {stopped}", file=sys.stderr)
        print(json.dumps({**asdict(stopped.summary), "error": str(stopped)}), flush=True)
        return 1
    print(json.dumps(asdict(summary)), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.index", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
