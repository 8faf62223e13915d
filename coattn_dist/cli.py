"""``coattn``: one subcommand per job; each module in jobs/ owns its flags and its run()."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = {
    "demo": (
        "jobs.demo",
        "the main job end to end on the embedded default (the repo's ESC-50 sample)",
    ),
    "index": (
        "jobs.index",
        "embed audio from a folder, bucket or manifest into a Milvus collection",
    ),
    "search": (
        "jobs.search",
        "answer a query (words, --like CLIP_ID, --audio FILE) from an indexed collection",
    ),
    "train": ("jobs.train", "train stage 1 and the co-attention reranker(s) from manifests"),
    "evaluate": (
        "jobs.evaluate",
        "metrics, cross-dataset matrix, order test and noise sweep as a report folder",
    ),
    "prepare": (
        "jobs.prepare",
        "experiment datasets from ESC-50: splits by source recording, scenes, noise; "
        "--sfx: a sound-effects corpus from Debian game packages",
    ),
}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(
        prog="coattn", description="Language-based audio retrieval at scale."
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also show Ray's own logs and progress bars"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, (module, help_text) in COMMANDS.items():
        modules[name] = importlib.import_module(module)
        modules[name].add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["COATTN_VERBOSE"] = "1"  # read by init_ray, also in the jobs' Ray workers
    return modules[args.command].run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
