"""Query-time levers on a trained checkpoint, no retraining: would scoring differently at search
time carry stage 1 further to concepts it never paired? Chosen on sfx-val like every training
lever; the far sets (sfx-test, the outside package, all of ESC-50) are recorded beside it, never
used to choose. Writes query_levers.json, .md and .png.

- **Hubness correction** (CSLS, Conneau et al. 2018): a clip that is close to every caption wins
  queries it does not answer. score = cos(q, a) - beta * r(a), r(a) the mean of clip a's k best
  cosines to the checkpoint's training captions (a fixed bank, nothing from the test set); for
  class accuracy also - beta * r(q), r(q) caption q's k best cosines to the training clips.
- **Prompt ensembles** (as CLAP's zero-shot): each query embedded in several wordings ("the sound
  of ...", "... can be heard"), one wording or the normalised mean of them.

    python experiments/query_levers.py CHECKPOINT DATA ESC50_DIR OUT [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from coattn_dist.data import read_manifest  # noqa: E402
from coattn_dist.encoders import build_audio_encoder, build_text_encoder  # noqa: E402
from coattn_dist.features import DEFAULT_CACHE, build_features, cached_texts  # noqa: E402
from coattn_dist.metrics import clip_classification_accuracy, map_at_k  # noqa: E402
from coattn_dist.model import RetrievalModel  # noqa: E402
from coattn_dist.query.embed import embed_clips, embed_texts  # noqa: E402

BETAS = (0.0, 0.25, 0.5, 0.75, 1.0)
NEIGHBOURS = (1, 10, 50)
WORDINGS = {
    "as typed": "{}",
    "the sound of ...": "the sound of {}",
    "... can be heard": "{} can be heard",
    "a recording of ...": "a recording of {}",
    "sound effect: ...": "sound effect: {}",
}


def neighbourhood(x: torch.Tensor, bank: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's mean cosine to its k nearest rows of `bank`: how much of a hub it is."""
    return (x @ bank.T).topk(min(k, len(bank)), dim=1).values.mean(dim=1)


def scored(scores: torch.Tensor, relevant: torch.Tensor, row_scores=None) -> dict[str, float]:
    """mAP@10 of `scores`; class accuracy of `row_scores` (the caption-side correction changes
    only which caption a clip is assigned, never a ranking)."""
    accuracy_scores = scores if row_scores is None else row_scores
    return {
        "mAP@10": round(map_at_k(scores, relevant, 10), 4),
        "accuracy": round(clip_classification_accuracy(accuracy_scores, relevant), 4),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("data", help="coattn prepare --sfx output folder (sfx-train/val/test, outside)")
    p.add_argument("esc50", help="the ESC-50 subset (meta/esc50.csv: all of it, zero-shot)")
    p.add_argument("out")
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    args = p.parse_args()
    model = RetrievalModel.load(args.checkpoint).eval()
    encoders = build_audio_encoder(model.cfg.audio), build_text_encoder(model.cfg.text)

    def features(path: str):
        return build_features(*encoders, read_manifest(path), cache=args.cache)

    train = features(f"{args.data}/sfx-train.csv")
    captions, clips = embed_texts(model, train.tokens), embed_clips(model, train.segments)
    sets = {
        "sfx-val": f"{args.data}/sfx-val.csv",
        "sfx-test": f"{args.data}/sfx-test.csv",
        "outside": f"{args.data}/outside.csv",
        "ESC-50 (all)": f"{args.esc50}/meta/esc50.csv",
    }
    results: dict = {"hubness": {}, "wordings": {}}
    for name, path in sets.items():
        data = features(path)
        a, q = embed_clips(model, data.segments), embed_texts(model, data.tokens)
        base = q @ a.T
        for k in NEIGHBOURS:
            hub_clip, hub_caption = neighbourhood(a, captions, k), neighbourhood(q, clips, k)
            for beta in BETAS:
                s = base - beta * hub_clip[None, :]
                results["hubness"][f"{name}|{k}|{beta}"] = scored(
                    s, data.relevant, s - beta * hub_caption[:, None]
                )
        worded = {
            w: embed_texts(
                model, cached_texts(encoders[1], [f.format(t) for t in data.texts], args.cache)
            )
            for w, f in WORDINGS.items()
        }
        worded["mean of all five"] = F.normalize(sum(worded.values()), dim=-1)
        for w, vectors in worded.items():
            results["wordings"][f"{name}|{w}"] = scored(vectors @ a.T, data.relevant)
        print(f"[query levers] {name}: {len(data.texts)} queries, {len(data.clip_ids)} clips")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "query_levers.json").write_text(json.dumps(results, indent=1))
    write_report(results, list(sets), out)
    return 0


def _row(label: str, cells: list[dict]) -> str:
    return (
        f"| {label} | "
        + " | ".join(f"{c['mAP@10']:.3f} / {c['accuracy']:.3f}" for c in cells)
        + " |"
    )


def write_report(results: dict, sets: list[str], out: Path) -> None:
    hub, words = results["hubness"], results["wordings"]
    head = " | ".join(f"{s} mAP@10 / acc." for s in sets)
    lines = [f"| hubness correction | {head} |", "| --- |" + " --- |" * len(sets)]
    for k in NEIGHBOURS:
        for beta in BETAS:
            if beta == 0 and k != NEIGHBOURS[0]:
                continue
            label = "none" if beta == 0 else f"k {k}, beta {beta}"
            lines.append(_row(label, [hub[f"{s}|{k}|{beta}"] for s in sets]))
    lines += ["", f"| query wording | {head} |", "| --- |" + " --- |" * len(sets)]
    for w in [*WORDINGS, "mean of all five"]:
        lines.append(_row(w, [words[f"{s}|{w}"] for s in sets]))
    (out / "query_levers.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, metric in zip(axes, ("mAP@10", "accuracy")):
        for s in sets:
            ax.plot(BETAS, [hub[f"{s}|10|{b}"][metric] for b in BETAS], marker="o", label=s)
        ax.set_xlabel("beta (hub penalty, k = 10)")
        ax.set_title(
            f"stage-1 {metric}" + (" (both sides corrected)" if metric != "mAP@10" else "")
        )
    axes[0].set_ylabel("score")
    axes[0].legend(fontsize=8)
    fig.suptitle("Hubness correction on concepts never trained on (chosen on sfx-val)")
    fig.tight_layout()
    fig.savefig(out / "query_levers.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
