"""Generic manifests: path resolution, stable ids, query semantics and errors users can act on."""

import hashlib
import json
import warnings
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coattn_dist.data import clip_id_for, clips, queries, read_manifest, write_manifest

AUDIO = str(
    Path(__file__).resolve().parents[2] / "samples" / "esc50" / "audio" / "4-102844-A-49.flac"
)
ROWS = [
    {"audio": "audio/a.flac", "caption": "a dog barks", "label": "dog"},
    {"audio": "audio/a.flac", "caption": "rain on a roof"},
    {"audio": AUDIO, "caption": "a dog barks", "label": "cow"},
    {"audio": "s3://bucket/sounds/c.flac", "caption": ""},
]


def _write(path, rows):
    if path.suffix == ".csv":
        columns = ["audio", "caption", "label"]
        lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("name", ["m.csv", "m.parquet", "m.jsonl"])
def test_generic_formats_agree(tmp_path, name):
    _write(tmp_path / name, ROWS)
    table = read_manifest(str(tmp_path / name))
    local = str(tmp_path / "audio" / "a.flac")
    assert table["audio"].to_pylist() == [local, local, AUDIO, "s3://bucket/sounds/c.flac"]
    assert table["clip_id"].to_pylist() == [clip_id_for(u) for u in table["audio"].to_pylist()]
    assert table["label"].to_pylist() == ["dog", None, "cow", None]
    assert table["caption"][3].as_py() == ""


def test_default_ids_are_stable_and_match_public_readers(tmp_path):
    uri = "s3://bucket/x.flac"
    assert clip_id_for(uri) == hashlib.sha1(uri.encode("utf-8")).hexdigest()[:16]
    esc = read_manifest(
        str(Path(__file__).resolve().parents[2] / "samples" / "esc50" / "meta" / "esc50.csv")
    )
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio": AUDIO}) + "\n")
    generic = read_manifest(str(tmp_path / "m.jsonl"))
    assert generic["clip_id"][0].as_py() in set(esc["clip_id"].to_pylist())


def test_explicit_clip_id_kept_as_text(tmp_path):
    (tmp_path / "m.csv").write_text("clip_id,audio,caption\n0012,a.flac,x\n")
    assert read_manifest(str(tmp_path / "m.csv"))["clip_id"].to_pylist() == ["0012"]


def test_memory_manifest_resolves_to_memory_uris():
    rows = [{"audio": "clips/a.flac", "caption": "a"}, {"audio": "../b.flac", "caption": "b"}]
    with fsspec.open("memory://bucket/set/m.jsonl", "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    table = read_manifest("memory://bucket/set/m.jsonl")
    assert table["audio"].to_pylist() == [
        "memory://bucket/set/clips/a.flac",
        "memory://bucket/b.flac",
    ]


def test_clips_and_queries_semantics(tmp_path):
    _write(tmp_path / "m.csv", ROWS)
    table = read_manifest(str(tmp_path / "m.csv"))
    a, b, c = clips(table)["clip_id"].to_pylist()
    assert clips(table).column_names == ["clip_id", "audio", "label", "group", "source", "licence"]
    assert clips(table)["label"].to_pylist() == ["dog", "cow", None]
    texts, relevant = queries(table)
    assert texts == ["a dog barks", "rain on a roof"]
    assert relevant == [[a, b], [a]]
    assert c not in {cid for ids in relevant for cid in ids}


@pytest.mark.parametrize("name", ["out.csv", "out.parquet", "out.jsonl"])
def test_write_then_read_round_trips(tmp_path, name):
    _write(tmp_path / "m.csv", ROWS)
    table = read_manifest(str(tmp_path / "m.csv"))
    write_manifest(table, str(tmp_path / name))
    assert read_manifest(str(tmp_path / name)).equals(table)


def test_unknown_columns_are_named(tmp_path):
    (tmp_path / "m.csv").write_text("audio,captions\na.flac,hello\n")
    with pytest.raises(ValueError, match=r"m\.csv.*unknown column\(s\) \['captions'\]"):
        read_manifest(str(tmp_path / "m.csv"))


def test_missing_audio_column_is_named(tmp_path):
    pq.write_table(pa.table({"path": ["a.flac"]}), tmp_path / "m.parquet")
    with pytest.raises(ValueError, match=r"missing column 'audio'.*Clotho"):
        read_manifest(str(tmp_path / "m.parquet"))


def test_empty_audio_cell_names_the_row(tmp_path):
    (tmp_path / "m.csv").write_text("audio,caption\na.flac,x\n,y\n")
    with pytest.raises(ValueError, match=r"m\.csv: empty 'audio' cell in data row\(s\) \[2\]"):
        read_manifest(str(tmp_path / "m.csv"))


def test_one_id_for_two_files_is_refused(tmp_path):
    (tmp_path / "m.csv").write_text("clip_id,audio\nx,a.flac\nx,b.flac\n")
    with pytest.raises(ValueError, match="names two audio files"):
        read_manifest(str(tmp_path / "m.csv"))


def test_unsupported_extension(tmp_path):
    with pytest.raises(ValueError, match="unsupported manifest extension"):
        read_manifest(str(tmp_path / "m.txt"))


def test_extra_columns_are_ignored_with_a_warning(tmp_path):
    (tmp_path / "m.csv").write_text("audio,caption,split\na.flac,a dog barks,train\n")
    with pytest.warns(UserWarning, match=r"ignoring column\(s\) \['split'\]"):
        table = read_manifest(str(tmp_path / "m.csv"))
    assert table["caption"].to_pylist() == ["a dog barks"]


def test_group_source_licence_are_kept_and_null_where_absent(tmp_path):
    (tmp_path / "m.csv").write_text(
        "audio,caption,group,source,licence\n"
        "a.flac,a door slams,doors,sound-theme-freedesktop,GPL-2+\n"
        "b.flac,a door creaks,,,\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known columns: no "ignoring column(s)" warning
        table = read_manifest(str(tmp_path / "m.csv"))
    assert table["group"].to_pylist() == ["doors", None]
    assert table["source"].to_pylist() == ["sound-theme-freedesktop", None]
    assert table["licence"].to_pylist() == ["GPL-2+", None]
    (tmp_path / "plain.jsonl").write_text(json.dumps({"audio": "a.flac"}) + "\n")
    plain = read_manifest(str(tmp_path / "plain.jsonl"))
    assert plain.select(["group", "source", "licence"]).to_pylist() == [
        {"group": None, "source": None, "licence": None}
    ]
