"""How a query by sound should rank: stage 1 alone (audio-audio cosine of stage-1 vectors) or
rescored by segment max-sim, and with which weight. A clip is the query, every other clip of the
gallery a candidate, same label = relevant, the clip itself never counted. The weight is chosen
on held-out validation galleries (ESC-50's validation clips among themselves, the corpus' sfx-val
concepts) by the fusion rule of training (`train.run.gain_bounds`: the best lower bound of the
per-query gain over stage 1), then reported on the test galleries: ESC-50's test clips among
themselves and against all 414 (a collection that holds the clips a checkpoint trained on), and
sfx-test. Writes audio_queries.json / .md / .png.

    python experiments/audio_queries.py DATA ESC50_CSV OUT --checkpoint NAME=PATH ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402

from coattn_dist.config import AudioEncoderConfig  # noqa: E402
from coattn_dist.data import clips, read_manifest  # noqa: E402
from coattn_dist.encoders import build_audio_encoder  # noqa: E402
from coattn_dist.features import DEFAULT_CACHE, cached_clips  # noqa: E402
from coattn_dist.metrics import average_precisions  # noqa: E402
from coattn_dist.model import RetrievalModel  # noqa: E402
from coattn_dist.query.like import AudioRanking  # noqa: E402
from coattn_dist.query.rerank import like_matrix  # noqa: E402
from coattn_dist.train.run import FUSION_GRID, gain_bounds  # noqa: E402


def gallery(paths: list[str], query_paths: list[str], encoder, cache: str) -> dict:
    """Segments and labels of every clip of `paths`; the queries are the clips of `query_paths`
    with at least one other clip of their label."""
    table = clips(pa.concat_tables([read_manifest(p) for p in paths]))
    segments, failures = cached_clips(encoder, table, cache, None)
    assert not failures, failures
    ids, labels = table["clip_id"].to_pylist(), table["label"].to_pylist()
    asked = set(
        clips(pa.concat_tables([read_manifest(p) for p in query_paths]))["clip_id"].to_pylist()
    )
    count = {label: labels.count(label) for label in set(labels)}
    queries = [i for i, c in enumerate(ids) if c in asked and count[labels[i]] > 1]
    label = np.array(labels)
    relevant = label[queries][:, None] == label[None, :]
    relevant[np.arange(len(queries)), queries] = False
    return {"segments": [segments[c] for c in ids], "queries": queries, "relevant": relevant}


def per_query_aps(model: RetrievalModel, g: dict, depth: int) -> dict[float, np.ndarray]:
    ends = {
        w: like_matrix(model, g["segments"], g["queries"], AudioRanking(w, depth))
        for w in (0.0, 1.0)
    }
    return {
        w: average_precisions(w * ends[1.0] + (1 - w) * ends[0.0], g["relevant"], 10)
        for w in FUSION_GRID
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="coattn prepare --esc50 --sfx output folder")
    p.add_argument("esc50_csv", help="the ESC-50 subset's meta/esc50.csv (all 414 clips)")
    p.add_argument("out")
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=PATH")
    p.add_argument("--depth", type=int, default=AudioRanking().depth)
    p.add_argument("--z", type=float, default=1.645)
    p.add_argument("--cache", default=DEFAULT_CACHE, help="feature cache (general.sh's: OUT/cache)")
    args = p.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    encoder = build_audio_encoder(AudioEncoderConfig())
    view = lambda paths, asked: gallery(paths, asked, encoder, args.cache)
    galleries = {
        "val": {
            "esc50 val": view([f"{data}/esc50-val.jsonl"], [f"{data}/esc50-val.jsonl"]),
            "sfx-val": view([f"{data}/sfx-val.csv"], [f"{data}/sfx-val.csv"]),
        },
        "test": {
            "esc50 test": view([f"{data}/esc50-test.jsonl"], [f"{data}/esc50-test.jsonl"]),
            "esc50 test -> all 414": view([args.esc50_csv], [f"{data}/esc50-test.jsonl"]),
            "sfx-test": view([f"{data}/sfx-test.csv"], [f"{data}/sfx-test.csv"]),
        },
    }
    results = {}
    for spec in args.checkpoint:
        name, _, path = spec.partition("=")
        model = RetrievalModel.load(path)
        model.eval()
        with torch.no_grad():
            aps = {
                split: {g: per_query_aps(model, gal, args.depth) for g, gal in sets.items()}
                for split, sets in galleries.items()
            }
        pooled = {w: np.concatenate([a[w] for a in aps["val"].values()]) for w in FUSION_GRID}
        bounds = gain_bounds(pooled, args.z)
        chosen = max(FUSION_GRID, key=lambda w: (bounds[w], w))
        results[name] = {
            "chosen_weight": chosen,
            "val_gain_lower_bound": {f"{w:.1f}": b for w, b in bounds.items()},
            "mAP@10": {
                split: {
                    g: {f"{w:.1f}": float(a[w].mean()) for w in FUSION_GRID} for g, a in by.items()
                }
                for split, by in aps.items()
            },
        }
        print(f"{name}: weight {chosen}", json.dumps(results[name]["mAP@10"]), file=sys.stderr)
    (out / "audio_queries.json").write_text(json.dumps(results, indent=1))
    write_report(results, out)
    return 0


def write_report(results: dict, out: Path) -> None:
    lines = [
        "| checkpoint | gallery | stage 1 | max-sim alone | fused (chosen weight) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        w = f"{r['chosen_weight']:.1f}"
        for split in ("val", "test"):
            for g, grid in r["mAP@10"][split].items():
                lines.append(
                    f"| {name} | {g} ({split}) | {grid['1.0']:.3f} | {grid['0.0']:.3f} | "
                    f"{grid[w]:.3f} ({w}) |"
                )
    (out / "audio_queries.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items()):
        for split, style in (("val", "--"), ("test", "-")):
            for g, grid in r["mAP@10"][split].items():
                ax.plot(FUSION_GRID, [grid[f"{w:.1f}"] for w in FUSION_GRID], style, label=g)
        ax.axvline(r["chosen_weight"], color="grey", linewidth=1)
        ax.set_title(f"{name}: audio queries")
        ax.set_xlabel("stage-1 weight (1.0: stage 1 alone)")
        ax.set_ylabel("mAP@10")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "audio_queries.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
