"""How far the frozen audio encoder's features go on ESC-50 by source, with no words at all: a
class-centroid classifier and a logistic probe (its weight decay chosen on the validation split),
each on the clips' mean-pooled and mean+max-pooled segment features of the training split, scored
on the test split as class accuracy and as mAP@10 of one query per class (the class's column of
scores), the two metrics the issue's ESC-50-by-source target names. A retrieval model trained on
the same clips through captions can at best reach what these reach from labels.

    python experiments/probe_ceiling.py ESC50_DATA OUT [--cache CACHE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from coattn_dist.config import load_config
from coattn_dist.data import clips, read_manifest
from coattn_dist.encoders import build_audio_encoder
from coattn_dist.features import DEFAULT_CACHE, cached_clips
from coattn_dist.metrics import map_at_k

POOLS = {
    "mean": lambda s: s.mean(0),
    "mean+max": lambda s: torch.cat([s.mean(0), s.max(0).values]),
}
DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)


def split(path: Path, encoder, cache: str) -> tuple[list[torch.Tensor], list[str]]:
    table = clips(read_manifest(str(path)))
    segments, failures = cached_clips(encoder, table, cache, None)
    if failures:
        raise SystemExit(f"{len(failures)} clips of {path} did not decode: {failures[0].message}")
    return [segments[c] for c in table["clip_id"].to_pylist()], table["label"].to_pylist()


def scores_metrics(scores: torch.Tensor, y: torch.Tensor, n_classes: int) -> dict[str, float]:
    """scores: (clips, classes). Class accuracy, and mAP@10 with one query per class present."""
    relevant = F.one_hot(y, n_classes).bool().T  # (classes, clips)
    present = relevant.any(1)
    return {
        "class_accuracy": (scores.argmax(1) == y).float().mean().item(),
        "mAP@10": map_at_k(scores.T[present], relevant[present], 10),
    }


def probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, decay: float) -> torch.nn.Linear:
    linear = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.LBFGS(linear.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(linear(x), y) + decay * linear.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return linear


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="coattn prepare --esc50 output (esc50-{train,val,test}.jsonl)")
    p.add_argument("out")
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    args = p.parse_args()
    encoder = build_audio_encoder(load_config(None, []).audio)
    parts = {
        s: split(Path(args.data) / f"esc50-{s}.jsonl", encoder, args.cache)
        for s in ("train", "val", "test")
    }
    classes = sorted({label for _, labels in parts.values() for label in labels})
    results = {}
    torch.manual_seed(0)
    for name, pool in POOLS.items():
        x = {s: torch.stack([pool(seg) for seg in segs]) for s, (segs, _) in parts.items()}
        y = {
            s: torch.tensor([classes.index(c) for c in labels]) for s, (_, labels) in parts.items()
        }
        mu, sd = x["train"].mean(0), x["train"].std(0) + 1e-6
        x = {s: (v - mu) / sd for s, v in x.items()}
        fitted_on = {
            "": (x["train"], y["train"]),
            ", train + val": (torch.cat([x["train"], x["val"]]), torch.cat([y["train"], y["val"]])),
        }
        for suffix, (xs, ys) in fitted_on.items():
            centroids = torch.stack(
                [F.normalize(xs[ys == k].mean(0), dim=0) for k in range(len(classes))]
            )
            results[f"centroid, {name}{suffix}"] = scores_metrics(
                F.normalize(x["test"], dim=1) @ centroids.T, y["test"], len(classes)
            )
        fits = {d: probe(x["train"], y["train"], len(classes), d) for d in DECAYS}
        best = max(DECAYS, key=lambda d: (fits[d](x["val"]).argmax(1) == y["val"]).float().mean())
        with torch.no_grad():
            results[f"logistic probe, {name} (decay {best:g})"] = scores_metrics(
                fits[best](x["test"]), y["test"], len(classes)
            )
    sizes = {s: len(labels) for s, (_, labels) in parts.items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps({"clips": sizes, "results": results}, indent=2))
    lines = [
        "| classifier (frozen features, labels) | class accuracy | mAP@10 |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {k} | {v['class_accuracy']:.3f} | {v['mAP@10']:.3f} |" for k, v in results.items()
    ]
    (out / "probe.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps({"clips": sizes}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
