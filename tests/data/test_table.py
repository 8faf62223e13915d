"""The manifest table: optional columns default to null, survive every file format, and groups
fall back to the clip itself."""

import pyarrow as pa
import pytest

from coattn_dist.data import clips, groups_of, manifest_table, read_manifest, write_manifest
from coattn_dist.data.table import SCHEMA


def _table() -> pa.Table:
    return manifest_table(
        ["a", "a", "b", "c"],
        ["/x/a.flac", "/x/a.flac", "/x/b.flac", "/x/c.flac"],
        ["a door slams", "a heavy door shuts", "a door slams", ""],
        ["door", "door", None, None],
        group=["door-take", "door-take", "door-take", None],
        source=["sound-theme-freedesktop", "sound-theme-freedesktop", None, None],
        licence=["GPL-2+", "GPL-2+", None, None],
    )


def test_optional_columns_default_to_null():
    table = manifest_table(["a"], ["/x/a.flac"], ["a dog barks"], [None])
    assert table.schema == SCHEMA
    assert table.select(["group", "source", "licence"]).to_pylist() == [
        {"group": None, "source": None, "licence": None}
    ]


@pytest.mark.parametrize("name", ["m.csv", "m.parquet", "m.jsonl"])
def test_group_source_licence_round_trip(tmp_path, name):
    table = _table()
    write_manifest(table, str(tmp_path / name))
    assert read_manifest(str(tmp_path / name)).equals(table)


def test_clips_keep_group_source_licence():
    listed = clips(_table())
    assert listed.column_names == ["clip_id", "audio", "label", "group", "source", "licence"]
    assert listed["group"].to_pylist() == ["door-take", "door-take", None]
    assert listed["licence"].to_pylist() == ["GPL-2+", None, None]


def test_groups_of_falls_back_to_the_clip_id():
    assert groups_of(_table()) == {"a": "door-take", "b": "door-take", "c": "c"}
