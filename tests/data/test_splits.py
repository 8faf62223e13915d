"""Splits keep every source recording on one side."""

from pathlib import Path

from coattn_dist.data import esc50_metadata
from coattn_dist.data.splits import split_groups

META = str(Path(__file__).resolve().parents[2] / "samples" / "esc50" / "meta" / "esc50.csv")


def test_groups_never_straddle_splits():
    ids = [f"c{i}" for i in range(40)]
    groups = [f"g{i // 2}" for i in range(40)]  # groups nest in strata, as recordings in classes
    strata = [f"s{i // 10}" for i in range(40)]
    split = split_groups(ids, groups, strata, {"test": 0.2, "val": 0.1}, seed=0)
    assert set(split) == set(ids)
    by_group = {}
    for cid, g in zip(ids, groups):
        by_group.setdefault(g, set()).add(split[cid])
    assert all(len(s) == 1 for s in by_group.values())
    assert {"train", "test", "val"} == set(split.values())


def test_every_stratum_keeps_training_data_and_the_split_is_seeded():
    meta = esc50_metadata(META)
    args = (
        meta["clip_id"].to_pylist(),
        meta["src_file"].to_pylist(),
        meta["category"].to_pylist(),
        {"test": 0.5},
    )
    split = split_groups(*args, seed=1)
    assert split == split_groups(*args, seed=1)
    for category in set(meta["category"].to_pylist()):
        members = [
            c
            for c, cat in zip(meta["clip_id"].to_pylist(), meta["category"].to_pylist())
            if cat == category
        ]
        assert any(split[c] == "train" for c in members)
