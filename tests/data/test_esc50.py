"""ESC-50 read from the real subset: the one public dataset at hand."""

import os
from pathlib import Path

import pyarrow.compute as pc
import pytest

from coattn_dist.data import (
    ESC50_CAPTIONS,
    clips,
    esc50_metadata,
    groups_of,
    queries,
    read_manifest,
)
from coattn_dist.data.formats import read_esc50

META = str(Path(__file__).resolve().parents[2] / "samples" / "esc50" / "meta" / "esc50.csv")
CLASSES = (
    "dog rooster pig cow frog cat hen insects sheep crow rain sea_waves crackling_fire "
    "crickets chirping_birds water_drops wind pouring_water toilet_flush thunderstorm "
    "crying_baby sneezing clapping breathing coughing footsteps laughing brushing_teeth "
    "snoring drinking_sipping door_wood_knock mouse_click keyboard_typing door_wood_creaks "
    "can_opening washing_machine vacuum_cleaner clock_alarm clock_tick glass_breaking "
    "helicopter chainsaw siren car_horn engine train church_bells airplane fireworks "
    "hand_saw"
).split()


def test_real_meta_one_canonical_query_per_clip():
    table = read_manifest(META)
    assert table.num_rows == 99
    assert clips(table).num_rows == 99
    assert set(table["label"].to_pylist()) == set(CLASSES)
    assert all(os.path.isfile(uri) for uri in table["audio"].to_pylist())
    texts, relevant = queries(table)
    assert len(texts) == 50
    for text, ids in zip(texts, relevant):
        rows = table.filter(pc.equal(table["caption"], text))
        assert set(ids) == set(rows["clip_id"].to_pylist())
        assert len(set(rows["label"].to_pylist())) == 1


def test_all_captions_gives_one_row_per_description():
    first = read_esc50(META)
    every = read_esc50(META, captions="all")
    expected = sum(len(ESC50_CAPTIONS[label]) for label in first["label"].to_pylist())
    assert every.num_rows == expected
    assert clips(every).equals(clips(first))
    assert len(queries(every)[0]) == sum(len(v) for v in ESC50_CAPTIONS.values())


def test_bad_captions_mode_is_refused():
    with pytest.raises(ValueError, match="captions"):
        read_esc50(META, captions="some")


def test_metadata_keeps_source_recordings_by_clip_id():
    meta = esc50_metadata(META)
    assert meta.column_names == ["clip_id", "fold", "src_file", "take", "category"]
    assert meta["clip_id"].to_pylist() == read_manifest(META)["clip_id"].to_pylist()
    assert set(meta["fold"].to_pylist()) <= {1, 2, 3, 4, 5}
    assert all(meta["src_file"].to_pylist())


def test_group_is_the_source_recording():
    meta = esc50_metadata(META)
    recording = dict(zip(meta["clip_id"].to_pylist(), meta["src_file"].to_pylist()))
    every = read_esc50(META, captions="all")
    assert groups_of(every) == recording
    assert every["source"].null_count == every["licence"].null_count == every.num_rows


def test_descriptions_cover_every_class_and_read_like_captions():
    assert set(ESC50_CAPTIONS) == set(CLASSES)
    everything = [text for texts in ESC50_CAPTIONS.values() for text in texts]
    assert len(everything) == len(set(everything))
    for texts in ESC50_CAPTIONS.values():
        assert 5 <= len(texts) <= 6
        assert all(text and "_" not in text and text == text.strip() for text in texts)
