"""The fusion rule applied after the fact: for each checkpoint of a finished `general.sh` run,
the weight `choose_fusion` picks now (on the checkpoint's own validation manifests) beside the one
it was saved with, and mAP@10 on every test set under both. No training; features come from the
run's cache. Usage: python experiments/fusion_retro.py RUN [ESC50_CSV]

RESULTS.md's "The fusion rule" table is this script on the eight-package run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coattn_dist.data.manifest import read_manifest  # noqa: E402
from coattn_dist.encoders import build_audio_encoder, build_text_encoder  # noqa: E402
from coattn_dist.features import build_features  # noqa: E402
from coattn_dist.metrics import map_at_k  # noqa: E402
from coattn_dist.model import RetrievalModel  # noqa: E402
from coattn_dist.query.rerank import score_matrix  # noqa: E402
from coattn_dist.train.run import choose_fusion  # noqa: E402

VALIDATION = {  # checkpoint -> its validation manifests, as experiments/general.sh trains it
    "corpus": ["sfx-val.csv"],
    "esc50": ["esc50-val.jsonl"],
    "esc50+corpus": ["esc50-val.jsonl", "sfx-val.csv"],
}
TESTS = {
    "esc50 test": "esc50-test.jsonl",
    "sfx-test": "sfx-test.csv",
    "outside": "outside.csv",
    "fine materials": "fine-materials.csv",
    "scenes": "scenes-test.jsonl",
}


def main(run: Path, esc50: str | None) -> None:
    data, cache = run / "data", run / "cache"
    tests = {name: str(data / f) for name, f in TESTS.items()}
    if esc50:
        tests["esc50 all"] = esc50
    features: dict[tuple, object] = {}

    def of(paths: list[str], model: RetrievalModel):
        if tuple(paths) not in features:
            table = pa.concat_tables([read_manifest(p) for p in paths])
            features[tuple(paths)] = build_features(
                build_audio_encoder(model.cfg.audio),
                build_text_encoder(model.cfg.text),
                table,
                cache=cache,
            )
        return features[tuple(paths)]

    for name, val in VALIDATION.items():
        model = RetrievalModel.load(str(run / "ckpt" / name))
        saved, depth = round(model.reranker.fusion.item(), 2), model.cfg.train.rerank_depth
        chosen = choose_fusion(model, of([str(data / v) for v in val], model), depth)["weight"]
        row = {"saved": saved, "now": chosen}
        for test, path in tests.items():
            f = of([path], model)
            for w in sorted({1.0, saved, chosen}):
                model.reranker.fusion.fill_(w)
                scores = score_matrix(model, f.tokens, f.segments, depth=depth)
                row[f"{test} @{w}"] = round(map_at_k(scores, f.relevant, 10), 3)
        print(name, json.dumps(row), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
