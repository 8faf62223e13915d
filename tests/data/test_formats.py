"""Clotho and AudioCaps cannot be downloaded here: files in their exact formats, real audio."""

import os
import shutil
from pathlib import Path

import fsspec
import pytest

from coattn_dist.data import clip_id_for, clips, queries, read_manifest

ESC50_AUDIO = str(Path(__file__).resolve().parents[2] / "samples" / "esc50" / "audio")
REAL = sorted(os.listdir(ESC50_AUDIO))[:2]

CLOTHO_CSV = (
    "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
    'Cow in barn.flac,"A cow moos, then moos again.",A cow lows loudly.,Cattle moo in a barn.,'
    "A cow makes a long mooing sound.,Someone hears a cow mooing.\n"
    "Distant dog.flac,A dog barks far away.,A dog barks in the distance.,Barking from afar.,"
    "A distant dog barks twice.,A dog is barking outside.\n"
)


def _copy_real(folder, names):
    os.makedirs(folder, exist_ok=True)
    for source, name in zip(REAL, names):
        shutil.copy(os.path.join(ESC50_AUDIO, source), os.path.join(folder, name))


def test_clotho_audio_in_split_folder(tmp_path):
    _copy_real(tmp_path / "development", ["Cow in barn.flac", "Distant dog.flac"])
    csv_path = tmp_path / "clotho_captions_development.csv"
    csv_path.write_text(CLOTHO_CSV)
    table = read_manifest(str(csv_path))
    assert table.num_rows == 10
    assert table["caption"][0].as_py() == "A cow moos, then moos again."
    assert table["label"].null_count == 10
    listed = clips(table)
    assert listed["audio"].to_pylist() == [
        str(tmp_path / "development" / "Cow in barn.flac"),
        str(tmp_path / "development" / "Distant dog.flac"),
    ]
    assert all(os.path.isfile(uri) for uri in listed["audio"].to_pylist())
    assert listed["clip_id"].to_pylist() == [clip_id_for(u) for u in listed["audio"].to_pylist()]


def test_clotho_audio_beside_the_csv(tmp_path):
    _copy_real(tmp_path, ["Cow in barn.flac", "Distant dog.flac"])
    (tmp_path / "clotho_captions_evaluation.csv").write_text(CLOTHO_CSV)
    table = read_manifest(str(tmp_path / "clotho_captions_evaluation.csv"))
    assert set(table["audio"].to_pylist()) == {
        str(tmp_path / "Cow in barn.flac"),
        str(tmp_path / "Distant dog.flac"),
    }


def test_clotho_on_object_storage_uses_the_split_folder():
    fsspec.filesystem("memory").pipe("/clotho/clotho_captions_validation.csv", CLOTHO_CSV.encode())
    table = read_manifest("memory://clotho/clotho_captions_validation.csv")
    assert clips(table)["audio"][0].as_py() == "memory://clotho/validation/Cow in barn.flac"


AUDIOCAPS_CSV = (
    "audiocap_id,youtube_id,start_time,caption\n"
    "91139,r1nicOVtvkQ,130,A woman talks nearby as water pours\n"
    "58146,r1nicOVtvkQ,130,Water pours while a woman speaks\n"
    "11146,UDGBjjwyaqE,20,A dog barks repeatedly\n"
)


def test_audiocaps_shares_clip_and_skips_missing_audio(tmp_path):
    _copy_real(tmp_path / "audio", ["r1nicOVtvkQ_130.flac"])
    (tmp_path / "train.csv").write_text(AUDIOCAPS_CSV)
    with pytest.warns(UserWarning, match="no audio for 1 of 2 clips"):
        table = read_manifest(str(tmp_path / "train.csv"))
    assert table.num_rows == 2
    uri = str(tmp_path / "audio" / "r1nicOVtvkQ_130.flac")
    assert set(table["audio"].to_pylist()) == {uri}
    assert set(table["clip_id"].to_pylist()) == {clip_id_for(uri)}
    assert table["group"].to_pylist() == ["r1nicOVtvkQ"] * 2  # the YouTube video
    texts, relevant = queries(table)
    assert texts == ["A woman talks nearby as water pours", "Water pours while a woman speaks"]
    assert relevant == [[clip_id_for(uri)]] * 2


def test_audiocaps_finds_the_other_naming_schemes(tmp_path):
    _copy_real(tmp_path, ["Yr1nicOVtvkQ.wav", "11146.flac"])
    (tmp_path / "test.csv").write_text(AUDIOCAPS_CSV)
    table = read_manifest(str(tmp_path / "test.csv"))
    assert clips(table)["audio"].to_pylist() == [
        str(tmp_path / "Yr1nicOVtvkQ.wav"),
        str(tmp_path / "11146.flac"),
    ]


def test_audiocaps_without_any_audio_is_an_error(tmp_path):
    (tmp_path / "val.csv").write_text(AUDIOCAPS_CSV)
    with pytest.raises(FileNotFoundError, match="no AudioCaps audio"):
        read_manifest(str(tmp_path / "val.csv"))
