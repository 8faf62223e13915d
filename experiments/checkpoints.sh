# The checkpoints RESULTS.md's numbers come from, one recipe each, sourced by general.sh, seeds.sh
# and unseen_classes.sh so that a seed or a rerun trains exactly what general.sh did. Set before
# sourcing: COATTN, D (`coattn prepare`'s output), CKPT (where checkpoints go) and the TRAIN array
# (coattn train's other flags: cascades, cache, config, seed).

train() {  # NAME, then coattn train's manifest flags; a checkpoint already trained is kept
  local name=$1; shift
  [ -f "$CKPT/$name/train_log.json" ] || $COATTN train "$@" --out "$CKPT/$name" "${TRAIN[@]}"
}

# No ESC-50 clip and no clip of the outside package: zero-shot ESC-50, the outside package.
# Multi-event scenes train the reranker only (stage 1 pools them away and learns worse from them).
train_corpus() {
  train corpus --manifest "$D/sfx-train.csv" --rerank-manifest "$D/scenes-sfx-train.jsonl" \
    --val-manifest "$D/sfx-val.csv" --multi-val-manifest "$D/scenes-sfx-val.jsonl"
}

# ESC-50 by source with the corpus.
train_esc50_corpus() {
  train esc50+corpus --manifest "$D/esc50-train.jsonl" --manifest "$D/sfx-train.csv" \
    --rerank-manifest "$D/scenes-sfx-train.jsonl" --rerank-manifest "$D/scenes-train.jsonl" \
    --val-manifest "$D/esc50-val.jsonl" --val-manifest "$D/sfx-val.csv" \
    --multi-val-manifest "$D/scenes-val.jsonl" --multi-val-manifest "$D/scenes-sfx-val.jsonl"
}

# Forty ESC-50 classes (unseen_classes.sh's split in $D/unseen) plus the manifest given.
train_seen_with() {
  train seen+corpus --manifest "$D/unseen/train.jsonl" --manifest "$1" \
    --val-manifest "$D/unseen/val.jsonl"
}
