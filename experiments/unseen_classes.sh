#!/usr/bin/env bash
# Vocabulary generalization: what a checkpoint does on sound classes it never trained on, the case
# of real users' audio beyond ESC-50's fifty. Ten classes (every fifth of the test split's, sorted)
# leave training and validation; a checkpoint trained on the rest is evaluated on those ten
# classes' test clips, beside the checkpoint that trained on all fifty. Needs run_all.sh's
# `coattn prepare` output. With a second argument (a manifest, e.g. the sound-effects corpus's
# sfx-train.csv) a third checkpoint trains on the forty classes plus it.
# Usage: experiments/unseen_classes.sh [OUT] [EXTRA_TRAIN_MANIFEST]   (default: runs/)
set -euo pipefail
OUT=${1:-runs}
EXTRA=${2:-}
COATTN=${COATTN:-.venv/bin/coattn}
PYTHON=${PYTHON:-.venv/bin/python}

$PYTHON - "$OUT/data" <<'EOF'
import json, sys
from pathlib import Path

data = Path(sys.argv[1])
read = lambda name: [json.loads(line) for line in (data / name).read_text().splitlines()]  # noqa: E731
test = read("esc50-test.jsonl")
unseen = sorted({r["label"] for r in test})[::5]
(data / "unseen").mkdir(exist_ok=True)
splits = {"train.jsonl": [r for r in read("esc50-train.jsonl") if r["label"] not in unseen],
          "val.jsonl": [r for r in read("esc50-val.jsonl") if r["label"] not in unseen],
          "test-unseen.jsonl": [r for r in test if r["label"] in unseen],
          "test-seen.jsonl": [r for r in test if r["label"] not in unseen]}
for name, rows in splits.items():
    (data / "unseen" / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
print(f"held out: {', '.join(unseen)}; " + ", ".join(f"{n}: {len(r)}" for n, r in splits.items()))
EOF
D=$OUT/data
CKPT=$OUT/ckpt
TRAIN=(--cascades single --cache "$OUT/cache" ${CONFIG:+--config "$CONFIG"})
source "$(dirname "$0")/checkpoints.sh"
CKPTS=()
if [ -n "$EXTRA" ]; then
  train_seen_with "$EXTRA"
  CKPTS=(--checkpoint "without them, with the corpus=$OUT/ckpt/seen+corpus")
fi
train seen --manifest "$D/unseen/train.jsonl" --val-manifest "$D/unseen/val.jsonl"
$COATTN evaluate --checkpoint "trained without them=$OUT/ckpt/seen" "${CKPTS[@]}" \
  --checkpoint "trained on all=$OUT/ckpt/esc50" \
  --manifest "unseen classes=$OUT/data/unseen/test-unseen.jsonl" \
  --manifest "seen classes=$OUT/data/unseen/test-seen.jsonl" --cascades single \
  --cache "$OUT/cache" --report "$OUT/report-unseen"
