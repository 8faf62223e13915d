"""The default checkpoint: which one a command reads, and that the shipped one ranks real audio."""

import pytest

from coattn_dist import checkpoints
from coattn_dist.checkpoints import GENERAL, resolve_checkpoint
from coattn_dist.metrics import map_at_k
from coattn_dist.model import RetrievalModel, read_config
from coattn_dist.query.rerank import score_matrix


def test_given_then_environment_then_the_shipped_one(monkeypatch):
    monkeypatch.delenv("COATTN_CHECKPOINT", raising=False)
    assert resolve_checkpoint() == str(GENERAL)
    monkeypatch.setenv("COATTN_CHECKPOINT", "s3://models/mine")
    assert resolve_checkpoint() == "s3://models/mine"
    assert resolve_checkpoint("runs/other") == "runs/other"


def test_a_missing_default_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.delenv("COATTN_CHECKPOINT", raising=False)
    monkeypatch.setattr(checkpoints, "GENERAL", tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="--checkpoint.*COATTN_CHECKPOINT.*general.sh"):
        resolve_checkpoint()


def test_the_shipped_checkpoint_is_small_and_ranks_the_sample(small_features):
    size = sum(p.stat().st_size for p in GENERAL.rglob("*") if p.is_file())
    assert size < 16 * 2**20  # a few MB: it lives in git
    assert read_config(str(GENERAL)).model.cascade == "single"
    model = RetrievalModel.load(str(GENERAL))
    f = small_features  # 12 real clips of 6 classes, every caption of each class a query
    stage1 = map_at_k(score_matrix(model, f.tokens, f.segments), f.relevant, 10)
    fused = map_at_k(score_matrix(model, f.tokens, f.segments, depth=10), f.relevant, 10)
    assert stage1 > 0.8 and fused >= stage1 - 0.02
    assert 0.0 <= model.reranker.fusion.item() <= 1.0
