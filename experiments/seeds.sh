#!/usr/bin/env bash
# The must-show checkpoints on more seeds. general.sh trains each checkpoint once (seed 0), and on
# these set sizes one run moves by as much as a change does; this retrains the ones whose numbers
# RESULTS.md holds against a target (corpus: zero-shot ESC-50 and the outside package;
# esc50+corpus: the outside package; 40 ESC-50 classes + the corpus: the ten unseen classes) on
# each SEED, reusing general.sh's data and feature cache, evaluates them, and prints every cell's
# per-seed values and mean, general.sh's seed 0 included. Usage (after general.sh):
#   experiments/seeds.sh [ESC50_DIR] [OUT] [SEED ...]
#   (defaults: ../shared/datasets/esc50-subset, runs/general, seeds 1 2)
set -euo pipefail
ESC50=${1:-../shared/datasets/esc50-subset}
OUT=${2:-runs/general}
shift 2 || shift $#
SEEDS=${*:-1 2}
COATTN=${COATTN:-.venv/bin/coattn}
PYTHON=${PYTHON:-.venv/bin/python}
D=$OUT/data
source "$(dirname "$0")/checkpoints.sh"

for seed in $SEEDS; do
  S=$OUT/seed-$seed
  TRAIN=(--cascades single --cache "$OUT/cache" --config experiments/general.yaml --set "train.seed=$seed")
  CKPT=$S/ckpt
  train_corpus
  train_esc50_corpus
  train_seen_with "$D/manifest.csv"  # unseen_classes.sh wrote the forty-class split into $D/unseen
  [ -f "$S/report/metrics.json" ] || $COATTN evaluate \
    --checkpoint "corpus=$S/ckpt/corpus" --checkpoint "esc50+corpus=$S/ckpt/esc50+corpus" \
    --checkpoint "seen+corpus=$S/ckpt/seen+corpus" \
    --manifest "esc50 (all 414)=$ESC50/meta/esc50.csv" --manifest "outside package=$D/outside.csv" \
    --manifest "corpus (unseen concepts)=$D/sfx-test.csv" \
    --manifest "unseen classes=$D/unseen/test-unseen.jsonl" \
    --cascades single --cache "$OUT/cache" --report "$S/report"
done

$PYTHON - "$OUT" $SEEDS <<'EOF' | tee "$OUT/seeds.md"
import json, sys
from pathlib import Path

out, seeds = Path(sys.argv[1]), sys.argv[2:]
seed0 = {**json.loads((out / "report/metrics.json").read_text())["matrix"],
         **{"seen+corpus": json.loads((out / "report-unseen/metrics.json").read_text())["matrix"]
            ["without them, with the corpus"]}}
runs = [seed0] + [json.loads((out / f"seed-{s}/report/metrics.json").read_text())["matrix"] for s in seeds]
cells = [("corpus", "esc50 (all 414)", "clip_accuracy"), ("corpus", "esc50 (all 414)", "mAP@10"),
         ("corpus", "outside package", "mAP@10"), ("esc50+corpus", "outside package", "mAP@10"),
         ("corpus", "corpus (unseen concepts)", "mAP@10"),
         ("esc50+corpus", "corpus (unseen concepts)", "mAP@10"), ("seen+corpus", "unseen classes", "mAP@10")]
print("| checkpoint → test set | metric | system | per seed (0, " + ", ".join(seeds) + ") | mean |")
print("| --- | --- | --- | --- | --- |")
for ckpt, test, metric in cells:
    for system in ("stage1", "single"):
        values = [r[ckpt][test][system][metric] for r in runs]
        print(f"| {ckpt} → {test} | {metric} | {system} | {' / '.join(f'{v:.3f}' for v in values)} "
              f"| {sum(values) / len(values):.3f} |")
EOF
