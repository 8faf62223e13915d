#!/usr/bin/env bash
# Reproduces RESULTS.md: datasets, both trainings, and one evaluation with the cross-dataset
# matrix, the order test, the noise sweep and perturbed text. Usage:
#   experiments/run_all.sh [ESC50_DIR] [OUT]      (defaults: ../shared/datasets/esc50-subset, runs/)
set -euo pipefail
ESC50=${1:-../shared/datasets/esc50-subset}
OUT=${2:-runs}
COATTN=${COATTN:-.venv/bin/coattn}
CASCADES=single,stacked:2,iterated:3

$COATTN prepare --esc50 "$ESC50" --out "$OUT/data"
for set in esc50 scenes; do
  $COATTN train --manifest "$OUT/data/$set-train.jsonl" --val-manifest "$OUT/data/$set-val.jsonl" \
    --out "$OUT/ckpt/$set" --cascades "$CASCADES" --cache "$OUT/cache"
done
$COATTN evaluate --checkpoint "esc50=$OUT/ckpt/esc50" --checkpoint "scenes=$OUT/ckpt/scenes" \
  --manifest "esc50=$OUT/data/esc50-test.jsonl" --manifest "scenes=$OUT/data/scenes-test.jsonl" \
  --order "$OUT/data/scenes-test-order.jsonl" --snr clean,20,10,5,0 --noise white,pink,real \
  --noise-clips "$OUT/data/noise.jsonl" --perturb-text --cache "$OUT/cache" --report "$OUT/report"
