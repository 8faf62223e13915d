"""Data-parallel training on Ray Train: two workers, one checkpoint, the same loops."""

import json

from coattn_dist.config import load_config
from coattn_dist.model import RetrievalModel, cascades
from coattn_dist.train.distributed import train_distributed

TINY = [
    "model.dim=32",
    "model.rerank_dim=16",
    "train.epochs=3",
    "train.rerank_epochs=1",
    "train.batch_size=8",
    "train.rerank_batch_size=8",
]


def test_two_workers_train_and_rank0_saves(small_features, tmp_path, ray_local):
    out = str(tmp_path / "ckpt")
    result = train_distributed(
        load_config(overrides=TINY),
        small_features,
        small_features,
        ["single"],
        out,
        None,
        num_workers=2,
        storage_path=str(tmp_path / "ray"),
    )
    stages = [e["stage"] for e in result["history"]]
    assert stages.count("stage1") == 3 and stages.count("single") == 1
    assert all(0.0 <= e["val_mAP@10"] <= 1.0 for e in result["history"])
    assert cascades(out) == ["single"] and RetrievalModel.load(out).cfg.model.dim == 32
    assert json.loads((tmp_path / "ckpt" / "train_log.json").read_text()) == result
