"""Which training levers carry to sounds never paired with words: every variant trains on the
corpus's training concepts and is scored on sfx-val, concepts it never saw, fixed by `coattn
prepare` before any of this ran. A lever is kept only if it beats the base on that set.

Stage-1 levers first (each from scratch on the same seeds; with `--seeds 3` a variant scores the
mean of three), then the reranker's on the best stage 1: with and without scenes mixed from the
corpus, scored on single-event (sfx-val) and multi-event (scenes-sfx-val) queries, stage 1 beside
it. Writes levers.json, levers.md and levers.png.

Stage 1 is also scored on the far sets (sfx-test, the outside package, with `--zero-shot` all of
ESC-50): recorded beside each variant, never used to choose.

    python experiments/levers.py DATA OUT [--esc50 ESC50_DATA] [--zero-shot ESC50_DIR] [--report]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from coattn_dist.audio.augment import Conditions, recording  # noqa: E402
from coattn_dist.config import load_config  # noqa: E402
from coattn_dist.data import read_manifest  # noqa: E402
from coattn_dist.data.table import canonical  # noqa: E402
from coattn_dist.encoders import build_audio_encoder, build_text_encoder  # noqa: E402
from coattn_dist.encoders.aisfx import packaged_state  # noqa: E402
from coattn_dist.features import (  # noqa: E402
    DEFAULT_CACHE,
    Features,
    bed_captions,
    build_features,
    with_variants,
)
from coattn_dist.metrics import map_at_k  # noqa: E402
from coattn_dist.model import RetrievalModel  # noqa: E402
from coattn_dist.progress import Progress, log_line  # noqa: E402
from coattn_dist.query.embed import stage1_matrix  # noqa: E402
from coattn_dist.train.loops import seed_everything, train_reranker, train_stage1  # noqa: E402
from coattn_dist.train.run import choose_fusion, validation  # noqa: E402

# name -> (config overrides, training data: "canonical" | "paraphrases" | "+esc50" | "+scenes")
STAGE1 = {
    "base": ([], "paraphrases"),
    "canonical captions only": ([], "canonical"),
    "linear text projection": (["model.text_projection=linear"], "paraphrases"),
    "linear projections": (
        ["model.text_projection=linear", "model.audio_projection=linear"],
        "paraphrases",
    ),
    "dropout 0.3, weight decay 0.2": (
        ["model.dropout=0.3", "train.weight_decay=0.2"],
        "paraphrases",
    ),
    "frozen text projection": (["model.text_projection=frozen"], "paraphrases"),
    "frozen text, linear audio": (
        ["model.text_projection=frozen", "model.audio_projection=linear"],
        "paraphrases",
    ),
    "lr 3e-4": (["train.lr=0.0003"], "paraphrases"),
    "lr 1e-4": (["train.lr=0.0001"], "paraphrases"),
    "frozen text, lr 3e-4": (["model.text_projection=frozen", "train.lr=0.0003"], "paraphrases"),
    "soft targets 0.2": (["train.soft_targets=0.2"], "paraphrases"),
    "soft targets 0.5": (["train.soft_targets=0.5"], "paraphrases"),
    "segment crops 0.5": (["train.segment_crop=0.5"], "paraphrases"),
    "segment crops 1.0": (["train.segment_crop=1.0"], "paraphrases"),
    # word-pieces left out of a caption at random, each step
    "token dropout 0.2": (["train.token_drop=0.2"], "paraphrases"),
    "token dropout 0.4": (["train.token_drop=0.4"], "paraphrases"),
    # each clip heard, at this chance a step, in one of 4 drawn recording conditions
    "recording conditions 0.15": (["train.audio_aug=0.15"], "+conditions"),
    "recording conditions 0.3": (["train.audio_aug=0.3"], "+conditions"),
    "recording conditions 0.45": (["train.audio_aug=0.45"], "+conditions"),
    "recording conditions 0.6": (["train.audio_aug=0.6"], "+conditions"),
    # ... and of those versions, this share hears the event placed in a 4-6 s recording
    "recording conditions 0.3, events placed 0.5": (
        ["train.audio_aug=0.3", "train.audio_place=0.5"],
        "+conditions",
    ),
    "recording conditions 0.3, events placed 1.0": (
        ["train.audio_aug=0.3", "train.audio_place=1.0"],
        "+conditions",
    ),
    # ... and of their noise floors, this share is a steady real recording (rain, wind, a crowd)
    "recording conditions 0.3, real beds 0.5": (
        ["train.audio_aug=0.3", "train.audio_bed=0.5"],
        "+conditions",
    ),
    "recording conditions 0.3, real beds 1.0": (
        ["train.audio_aug=0.3", "train.audio_bed=1.0"],
        "+conditions",
    ),
    # ... with the beds quieter under the event (15-30 dB rather than 5-30)
    "recording conditions 0.3, real beds 1.0 at 15-30 dB": (
        ["train.audio_aug=0.3", "train.audio_bed=1.0", "train.audio_bed_min_snr_db=15"],
        "+conditions",
    ),
    # ... with the bed named in the caption of a version heard over it ("... while rain falls")
    "recording conditions 0.3, real beds 1.0, named": (
        ["train.audio_aug=0.3", "train.audio_bed=1.0", "train.bed_captions=1.0"],
        "+conditions",
    ),
    "recording conditions 0.3, real beds 1.0, named 0.5": (
        ["train.audio_aug=0.3", "train.audio_bed=1.0", "train.bed_captions=0.5"],
        "+conditions",
    ),
    "weight average (EMA 0.99)": (["train.ema=0.99"], "paraphrases"),
    "weight average (EMA 0.95)": (["train.ema=0.95"], "paraphrases"),
    # the encoder's own category heads as extra audio features (512 + 9 heads' 378 logits)
    "+ aisfx category heads": (["model.audio_dim=890"], "+heads"),
    # stage 1 as several dual encoders averaged in one vector (model.DualEncoderEnsemble)
    "ensemble of 2 (128 wide each)": (["model.members=2"], "paraphrases"),
    "ensemble of 4 (64 wide each)": (["model.members=4"], "paraphrases"),
    "ensemble of 3, dim 768 (256 wide each)": (["model.members=3", "model.dim=768"], "paraphrases"),
    # pool the frozen encoders' features, then project (MiniLM's sentence vector kept whole)
    "text pooled before projection": (["model.pool_first=text"], "paraphrases"),
    "both pooled before projection": (["model.pool_first=both"], "paraphrases"),
    # more in-batch negatives per step, fewer steps (the default batch is 64)
    "batch 32": (["train.batch_size=32"], "paraphrases"),
    "batch 128": (["train.batch_size=128"], "paraphrases"),
    "batch 256": (["train.batch_size=256"], "paraphrases"),
    "batch 512": (["train.batch_size=512"], "paraphrases"),
    "+ corpus scenes": ([], "+scenes"),
    "+ ESC-50 train": ([], "+esc50"),
}


def category_heads() -> Callable[[Features], Features]:
    """A transform of Features: each segment's aisfx embedding followed by the logits of aisfx's
    nine pretrained UCS-category heads (378 classes of sound-effects libraries), what the
    encoder's own supervised training says a sound is, a prior that words never paired with audio
    might meet. The packaged checkpoint is read once, whatever the transform is applied to."""
    state = packaged_state()
    layers = [
        [(state[f"fc.{k}.{i}.weight"], state[f"fc.{k}.{i}.bias"]) for i in (0, 2, 4)]
        for k in range(9)
    ]

    def extend(x: torch.Tensor) -> torch.Tensor:
        heads = []
        for (w1, b1), (w2, b2), (w3, b3) in layers:
            hidden = F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2))
            heads.append(F.linear(hidden, w3, b3))
        return torch.cat([x, *heads], dim=-1)

    return lambda data: dataclasses.replace(data, segments=[extend(s) for s in data.segments])


def features(paths: list[str], encoders, transform=None):
    table = pa.concat_tables([read_manifest(p) for p in paths])
    return build_features(
        *encoders, transform(table) if transform else table, cache=str(DEFAULT_CACHE)
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="coattn prepare --sfx output folder")
    p.add_argument("out")
    p.add_argument("--esc50", help="coattn prepare --esc50 output folder (for '+ ESC-50 train')")
    p.add_argument("--zero-shot", help="the ESC-50 subset: stage 1 on all its clips, recorded")
    p.add_argument("--set", nargs="*", default=[], help="overrides for every variant")
    p.add_argument("--only", nargs="*", help="stage-1 variants to run (default: all)")
    p.add_argument(
        "--seeds", type=int, default=1, help="seeds per variant; its score is their mean"
    )
    p.add_argument("--stage1-only", action="store_true", help="skip the reranker comparisons")
    p.add_argument("--report", action="store_true", help="only redraw OUT's report")
    args = p.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report:
        write_report(json.loads((out / "levers.json").read_text()), out)
        return 0
    cfg = load_config(None, args.set)
    encoders = build_audio_encoder(cfg.audio), build_text_encoder(cfg.text)
    train_paths = [str(data / "sfx-train.csv")]
    sets = {
        "paraphrases": features(train_paths, encoders),
        "canonical": features(train_paths, encoders, canonical),
        "+scenes": features(train_paths + [str(data / "scenes-sfx-train.jsonl")], encoders),
    }
    heard = {}  # Conditions -> the training set with its versions under them
    train_table = pa.concat_tables([read_manifest(p) for p in train_paths])

    def conditioned(conditions: Conditions) -> Features:
        if conditions not in heard:
            heard[conditions] = with_variants(
                sets["paraphrases"],
                encoders[0],
                train_table,
                cfg.train.audio_aug_versions,
                DEFAULT_CACHE,
                progress=Progress("recording conditions", every_s=30),
                conditions=conditions,
            )
        return heard[conditions]

    def trained_on(run_cfg, which: str) -> Features:
        if which != "+conditions":
            return sets[which]
        data = conditioned(recording(run_cfg.train))
        if run_cfg.train.bed_captions > 0:  # versions over a bed: their captions name it too
            data = bed_captions(data, train_table, encoders[1], DEFAULT_CACHE)
        return data

    if args.esc50:
        sets["+esc50"] = features(train_paths + [f"{args.esc50}/esc50-train.jsonl"], encoders)
    with_heads = category_heads()
    sets["+heads"] = with_heads(sets["paraphrases"])
    val = features([str(data / "sfx-val.csv")], encoders)
    far = {"sfx-test": str(data / "sfx-test.csv"), "outside": str(data / "outside.csv")}
    if args.zero_shot:
        far["ESC-50 (all)"] = f"{args.zero_shot}/meta/esc50.csv"
    far = {name: features([path], encoders) for name, path in far.items()}
    val_heads = with_heads(val)
    val_scenes = features([str(data / "scenes-sfx-val.jsonl")], encoders)

    results, models = {"stage1": {}, "stage1_seeds": {}, "stage1_far": {}, "reranker": {}}, {}
    for name, (overrides, which) in STAGE1.items():
        if (which not in sets and which != "+conditions") or (args.only and name not in args.only):
            continue
        scores = []
        for seed in range(args.seeds):
            run_cfg = load_config(None, [*args.set, *overrides, f"train.seed={seed}"])
            seed_everything(seed)
            model = RetrievalModel(run_cfg)
            history = train_stage1(
                model,
                trained_on(run_cfg, which),
                run_cfg.train,
                log_line(f"stage1 {name} seed {seed}"),
                validation(model, val_heads if which == "+heads" else val, 0),
            )
            scores.append(max(e["val_mAP@10"] for e in history))
            models.setdefault(name, (model, run_cfg))  # the rerankers train on seed 0's
            for test, f in far.items():
                f = with_heads(f) if which == "+heads" else f
                score = map_at_k(stage1_matrix(model, f.tokens, f.segments), f.relevant, 10)
                results["stage1_far"].setdefault(name, {}).setdefault(test, []).append(score)
        results["stage1"][name] = sum(scores) / len(scores)
        results["stage1_seeds"][name] = scores
        print(f"{name}: sfx-val mAP@10 {results['stage1'][name]:.3f} {scores}", file=sys.stderr)

    best = max(results["stage1"], key=results["stage1"].get)
    rerankers = (("reranker", "paraphrases"), ("reranker + corpus scenes", "+scenes"))
    for name, train_set in () if args.stage1_only else rerankers:
        model, run_cfg = models[best]
        stage1_state = model.stage1.state_dict()
        seed_everything(run_cfg.train.seed)
        model = RetrievalModel(run_cfg)
        model.stage1.load_state_dict(stage1_state)
        depth = run_cfg.train.rerank_depth
        train_reranker(
            model, sets[train_set], run_cfg.train, log_line(name), validation(model, val, depth)
        )
        single = choose_fusion(model, val, depth, multi_val=val_scenes)
        scenes = single["multi"]  # the weight for queries naming several events, on scenes
        results["reranker"][name] = {
            test: {
                "stage1": m["grid"]["1.0"],
                "reranked": m["val_mAP@10"],
                "reranker alone": m["grid"]["0.0"],
                "fusion": m["weight"],
            }
            for test, m in (("sfx-val", single), ("scenes-sfx-val", scenes))
        }
    results["best_stage1"] = best
    (out / "levers.json").write_text(json.dumps(results, indent=1))
    write_report(results, out)
    print(json.dumps({"best_stage1": best, "stage1": results["stage1"]}))
    return 0


def write_report(results: dict, out: Path) -> None:
    base = results["stage1"].get("base", next(iter(results["stage1"].values())))
    far = results["stage1_far"]
    tests = list(next(iter(far.values()), {}))
    lines = [
        "| stage-1 variant | sfx-val mAP@10 | vs base | per seed | "
        + "".join(f"{t} (recorded) | " for t in tests),
        "| --- | --- | --- | --- |" + " --- |" * len(tests),
    ]
    lines += [
        f"| {n} | {v:.3f} | {v - base:+.3f} | "
        f"{' / '.join(f'{s:.3f}' for s in results['stage1_seeds'][n])} | "
        + "".join(f"{sum(far[n][t]) / len(far[n][t]):.3f} | " for t in tests)
        for n, v in results["stage1"].items()
    ]
    lines += [
        "",
        "| reranker (on the best stage 1) | test set | stage 1 | reranker alone | fused | fusion |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, by_set in results["reranker"].items():
        for test, m in by_set.items():
            lines.append(
                f"| {name} | {test} | {m['stage1']:.3f} | {m['reranker alone']:.3f} | "
                f"{m['reranked']:.3f} | {m['fusion']:.1f} |"
            )
    (out / "levers.md").write_text("\n".join(lines) + "\n")
    names = list(results["stage1"])[::-1]
    rows = range(len(names))
    panels = 1 + bool(tests)
    fig, axes = plt.subplots(
        1, panels, figsize=(8 + 4 * (panels - 1), 0.45 * len(names) + 1.4), sharey=True
    )
    ax = axes[0] if tests else axes
    ax.barh(rows, [results["stage1"][n] for n in names], color="tab:blue", label="mean")
    for row, n in zip(rows, names):  # each seed, so a lift one seed carries shows as one
        seeds = results["stage1_seeds"][n]
        ax.plot(seeds, [row] * len(seeds), "o", color="black", markersize=3)
    ax.axvline(base, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(list(rows), names)
    ax.set_xlabel("mAP@10 on sfx-val (concepts never trained on; dots: seeds)")
    ax.set_title("Stage-1 training levers: chosen on this")
    if tests:
        height = 0.8 / len(tests)
        for i, t in enumerate(tests):
            means = [sum(far[n][t]) / len(far[n][t]) for n in names]
            axes[1].barh(  # the first far set on top within each variant
                [r - (i - (len(tests) - 1) / 2) * height for r in rows], means, height, label=t
            )
        axes[1].set_title("far sets, mean of seeds (not used to choose)")
        axes[1].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    fig.tight_layout()
    fig.savefig(out / "levers.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
