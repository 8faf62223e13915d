"""Config: defaults, YAML, CLI overrides, typos fail loudly."""

import pytest

from coattn_dist.config import Config, from_dict, load_config


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model:\n  cascade: stacked:2\n  dim: 128\ntrain:\n  lr: 0.01\n")
    cfg = load_config(path, ["model.dim=64", "audio.segment_hop_s=0.5"])
    assert cfg.model.cascade == "stacked:2" and cfg.model.dim == 64
    assert cfg.train.lr == 0.01 and cfg.audio.segment_hop_s == 0.5
    assert cfg.text.name == "minilm"  # untouched defaults stay


def test_json_round_trip():
    cfg = load_config(overrides=["model.heads=8"])
    assert from_dict(Config, cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "override, match",
    [
        ("model.dimm=3", "unknown ModelConfig keys"),
        ("model.dim=big", "expected int"),
        ("model.dim", "section.key=value"),
    ],
)
def test_bad_overrides_fail_loudly(override, match):
    with pytest.raises(ValueError, match=match):
        load_config(overrides=[override])
