"""The training run: validation held out by recording, stage 1 then each cascade, the caller's
config left as it was."""

import copy
import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from coattn_dist.config import load_config
from coattn_dist.data.table import manifest_table
from coattn_dist.metrics import map_at_k
from coattn_dist.model import RetrievalModel, cascades
from coattn_dist.query.rerank import score_matrix
from coattn_dist.train.run import choose_fusion, gain_bounds, train_all, validation_split

TINY = [
    "model.dim=32",
    "model.rerank_dim=16",
    "train.epochs=2",
    "train.rerank_epochs=1",
    "train.batch_size=8",
    "train.rerank_batch_size=8",
]


def takes_table(recordings: int, takes: int) -> pa.Table:
    ids = [f"r{r}-t{t}" for r in range(recordings) for t in range(takes)]
    return manifest_table(
        ids,
        [f"/a/{c}.wav" for c in ids],
        ["a sound"] * len(ids),
        [None] * len(ids),
        group=[c.split("-")[0] for c in ids],
    )


def test_validation_keeps_every_recording_on_one_side():
    train, val = validation_split(takes_table(40, 3), fraction=0.1)
    group = lambda t: {c.split("-")[0] for c in t["clip_id"].to_pylist()}  # noqa: E731
    assert val.num_rows and train.num_rows and train.num_rows + val.num_rows == 120
    assert not group(train) & group(val)
    assert 6 <= val.num_rows <= 18  # a tenth of the recordings, three takes each


def test_validation_split_is_repeatable_and_seeded():
    table = takes_table(40, 2)
    first, again = validation_split(table, seed=1)[1], validation_split(table, seed=1)[1]
    assert first["clip_id"].to_pylist() == again["clip_id"].to_pylist()
    assert first["clip_id"].to_pylist() != validation_split(table, seed=2)[1]["clip_id"].to_pylist()


def test_train_all_saves_each_cascade_and_leaves_the_config_alone(small_features, tmp_path):
    cfg = load_config(overrides=TINY)
    before = copy.deepcopy(cfg)
    out = str(tmp_path / "ckpt")
    result = train_all(cfg, small_features, small_features, ["single", "stacked:2"], out)
    assert cfg == before
    assert [e["stage"] for e in result["history"]] == ["stage1"] * 2 + ["single", "stacked:2"]
    assert set(result["best_val_mAP@10"]) == {"stage1", "single", "stacked:2"}
    assert cascades(out) == ["single", "stacked:2"]
    assert RetrievalModel.load(out).cfg.model.cascade == "single"
    assert json.loads((tmp_path / "ckpt" / "train_log.json").read_text()) == result


def test_fusion_chosen_on_validation_never_ranks_below_stage1(small_features):
    model = RetrievalModel(load_config(overrides=TINY))  # an untrained reranker: noise
    chosen = choose_fusion(model, small_features, depth=5)
    assert model.reranker.fusion.item() == pytest.approx(chosen["weight"])
    final = map_at_k(
        score_matrix(model, small_features.tokens, small_features.segments, 5),
        small_features.relevant,
        10,
    )
    assert abs(final - chosen["val_mAP@10"]) < 1e-6
    assert chosen["val_mAP@10"] >= chosen["grid"]["1.0"]  # 1.0: stage 1's own ranking
    stage1 = map_at_k(
        score_matrix(model, small_features.tokens, small_features.segments),
        small_features.relevant,
        10,
    )
    assert abs(chosen["grid"]["1.0"] - stage1) < 1e-6


def as_scenes(features):
    """The same queries worded as two events, so they take the multi-event weight."""
    scenes = copy.copy(features)
    scenes.texts = [f"{t}, then silence" for t in features.texts]
    return scenes


def test_each_kind_of_query_chooses_its_weight_on_its_own_queries(small_features):
    model = RetrievalModel(load_config(overrides=TINY))
    torch.manual_seed(0)
    with torch.no_grad():  # a reranker that must differ from stage 1 for the grids to differ
        for p in model.reranker.parameters():
            p.add_(torch.randn_like(p))
    scenes = as_scenes(small_features)
    chosen = choose_fusion(model, small_features, depth=5, multi_val=scenes)
    n = len(small_features.texts)
    assert chosen["queries"] == n and chosen["multi"]["queries"] == n
    assert model.reranker.fusion.item() == pytest.approx(chosen["weight"])
    assert model.reranker.multi_fusion.item() == pytest.approx(chosen["multi"]["weight"])
    for kind, w in ((chosen, chosen["weight"]), (chosen["multi"], chosen["multi"]["weight"])):
        assert kind["val_mAP@10"] == pytest.approx(kind["grid"][f"{w:.1f}"])
        assert kind["val_mAP@10"] >= kind["grid"]["1.0"]  # never below stage 1
    # the multi-event queries rank with their own weight on every path
    model.reranker.fusion.fill_(0.3 if chosen["multi"]["weight"] != 0.3 else 0.4)
    kinds = [True] * n
    final = map_at_k(
        score_matrix(model, scenes.tokens, scenes.segments, 5, several=kinds), scenes.relevant, 10
    )
    assert final == pytest.approx(chosen["multi"]["val_mAP@10"])


def test_a_kind_without_validation_queries_falls_back(small_features):
    model = RetrievalModel(load_config(overrides=TINY))
    chosen = choose_fusion(model, small_features, depth=5)  # no multi-event query anywhere
    assert chosen["multi"] == {"weight": chosen["weight"], "queries": 0}
    only_scenes = choose_fusion(model, as_scenes(small_features), depth=5)
    assert only_scenes["weight"] == 1.0 and only_scenes["queries"] == 0  # stage 1 alone
    assert model.reranker.fusion.item() == 1.0


def test_a_lift_few_queries_make_is_not_trusted_but_a_steady_one_is():
    stage1 = np.full(40, 0.5)
    lucky = stage1.copy()
    lucky[:2] = 1.0  # two queries jump, the rest lose a little: mean +0.02
    lucky[2:] -= 0.005
    steady = stage1 + 0.02  # every query a little better: the same mean
    bounds = gain_bounds({1.0: stage1, 0.5: lucky, 0.7: steady}, z=1.645)
    assert bounds[1.0] == 0.0
    assert bounds[0.5] < 0 < bounds[0.7]
    assert gain_bounds({1.0: stage1, 0.5: lucky}, z=0)[0.5] > 0  # z = 0: the plain mean gain


def test_the_reranker_trains_on_its_own_set_when_given_one(small_features, tmp_path):
    """Same seed, same stage 1: only the reranker's data differs, and so does its training."""
    cfg = load_config(overrides=[*TINY, "train.choose_fusion=false"])
    half = copy.copy(small_features)
    half.relevant = small_features.relevant.clone()
    half.relevant[::2] = False  # every other caption is no longer a training pair
    plain = train_all(cfg, small_features, small_features, ["single"], str(tmp_path / "a"))
    own = train_all(
        cfg, small_features, small_features, ["single"], str(tmp_path / "b"), rerank_train=half
    )
    stage = lambda r, s: [e["loss"] for e in r["history"] if e["stage"] == s]  # noqa: E731
    assert stage(plain, "stage1") == stage(own, "stage1")
    assert stage(plain, "single") != stage(own, "single")
