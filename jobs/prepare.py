"""``coattn prepare``: the experiment datasets, built from an ESC-50 folder, split by source recording,
and/or the sound-effects corpus built from a folder of Debian game-data packages.

``--esc50 FOLDER`` writes generic manifests (JSONL) that ``coattn train`` and ``coattn evaluate``
take as they are: esc50-{train,val,test}, noise (background-noise clips held out of the noise
sweep's queries), scenes-{train,val,test} with their rendered audio, and scenes-test-order (each
sequence scene's caption and its order-swapped twin).

``--sfx DIR_OF_DEBS`` writes manifest.csv (one row per clip and caption, with group, source and
licence), summary.json and the kept audio under audio/ (``coattn_dist.data.sfx``), then the
corpus's experiment manifests: outside.csv (one package never trained on), sfx-{train,val,test}.csv
split by concept, scenes-sfx-{train,val} (``coattn_dist.data.sfx.experiments``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from coattn_dist.data import ESC50_CAPTIONS, esc50_metadata, write_manifest
from coattn_dist.data.formats import read_esc50
from coattn_dist.data.scenes import plan_scenes, scenes_manifest, write_scenes
from coattn_dist.data.sfx import build_corpus
from coattn_dist.data.sfx.experiments import OUTSIDE_PACKAGE, write_experiments
from coattn_dist.data.splits import split_groups
from coattn_dist.progress import Progress

# Stationary, texture-like classes: mixed in as real background noise, never asked for.
NOISE_CLASSES = (
    "wind",
    "sea_waves",
    "crackling_fire",
    "vacuum_cleaner",
    "washing_machine",
    "engine",
)
SPLIT_FRACTIONS = {"test": 0.2, "val": 0.05}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--esc50", help="an ESC-50 folder: meta/esc50.csv + audio/")
    p.add_argument(
        "--sfx",
        metavar="DIR_OF_DEBS",
        help="a folder of game-data .deb packages: builds the sound-effects corpus",
    )
    p.add_argument(
        "--out", required=True, help="where manifests, rendered scenes and corpus audio go"
    )
    p.add_argument("--scenes", default="240,40,80", help="scenes per split: train,val,test")
    p.add_argument(
        "--outside",
        default=OUTSIDE_PACKAGE,
        help="the corpus package held out of training entirely, as a test set",
    )
    p.add_argument("--seed", type=int, default=0)


def esc50_splits(meta_path: str, seed: int) -> tuple[pa.Table, dict[str, str]]:
    every = read_esc50(meta_path, captions="all")
    meta = esc50_metadata(meta_path)
    split = split_groups(
        meta["clip_id"].to_pylist(),
        meta["src_file"].to_pylist(),
        meta["category"].to_pylist(),
        SPLIT_FRACTIONS,
        seed,
    )
    return every, split


def esc50_manifest(every: pa.Table, split: dict[str, str], name: str) -> pa.Table:
    """Training rows keep every description; val/test keep each class's canonical query only."""
    rows = [
        r
        for r in every.to_pylist()
        if split[r["clip_id"]] == name
        and (name == "train" or r["caption"] == ESC50_CAPTIONS[r["label"]][0])
    ]
    return pa.Table.from_pylist(rows, schema=every.schema)


def run(args: argparse.Namespace) -> int:
    if not (args.esc50 or args.sfx):
        print("coattn prepare: give --esc50 FOLDER, --sfx DIR_OF_DEBS, or both", file=sys.stderr)
        return 2
    start = time.monotonic()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = prepare_esc50(args, out) if args.esc50 else {}
    if args.sfx:
        summary["sfx"] = build_corpus(args.sfx, str(out))
        summary["sfx"]["experiments"] = write_experiments(
            str(out), args.seed, args.outside, Progress
        )
    summary.update(out=str(out), seconds=round(time.monotonic() - start, 1))
    print(json.dumps(summary))
    return 0


def prepare_esc50(args: argparse.Namespace, out: Path) -> dict:
    every, split = esc50_splits(str(Path(args.esc50) / "meta" / "esc50.csv"), args.seed)
    summary = {"esc50": {}, "scenes": {}}
    for name in ("train", "val", "test"):
        table = esc50_manifest(every, split, name)
        write_manifest(table, str(out / f"esc50-{name}.jsonl"))
        summary["esc50"][name] = len(set(table["clip_id"].to_pylist()))
    test = esc50_manifest(every, split, "test")
    noise = test.filter(pc.is_in(test["label"], value_set=pa.array(NOISE_CLASSES)))
    write_manifest(
        noise.set_column(2, "caption", pa.array([""] * noise.num_rows)), str(out / "noise.jsonl")
    )

    by_split: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in every.to_pylist():
        by_split[split[row["clip_id"]]][row["label"]].append(row["audio"])
    sizes = dict(zip(("train", "val", "test"), (int(n) for n in args.scenes.split(","))))
    for i, (name, n) in enumerate(sizes.items()):
        pool = {label: sorted(set(uris)) for label, uris in by_split[name].items()}
        scenes = plan_scenes(pool, n, args.seed + i, canonical=name != "train", prefix=f"{name}")
        folder = out / "scenes" / name
        write_scenes(scenes, folder, Progress(f"render scenes-{name}", n))
        write_manifest(scenes_manifest(scenes, folder), str(out / f"scenes-{name}.jsonl"))
        summary["scenes"][name] = dict(Counter(s.kind for s in scenes))
        if name == "test":
            with open(out / "scenes-test-order.jsonl", "w") as f:
                for s, cid in zip(scenes, scenes_manifest(scenes, folder)["clip_id"].to_pylist()):
                    if s.kind == "sequence":
                        f.write(
                            json.dumps({"clip_id": cid, "caption": s.caption, "swapped": s.swapped})
                            + "\n"
                        )
    return summary
