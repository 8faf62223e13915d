"""The builder end to end on real packages made here: a zip in one .deb, a C4Group in another,
a Qt resource file in a third."""

import argparse
import csv
import hashlib
import json

import soundfile as sf

from coattn_dist.data.sfx.c4group import pack_group_file
from coattn_dist.data.sfx.corpus import build_corpus
from coattn_dist.data.table import GENERIC_COLUMNS
from jobs import prepare
from tests.data.sfx.archives import clip_bytes, make_deb, rcc_bytes, zip_bytes

COPYRIGHT = (
    b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    b"Files: *\nCopyright: us\nLicense: CC0-1.0\n"
)


def make_packages(folder):
    folder.mkdir()
    sounds = zip_bytes(
        {
            "sfx/footsteps_gravel_1.wav": clip_bytes("WAV", seed=1),
            "sfx/footsteps_gravel_2.ogg": clip_bytes("OGG", seed=2),
            "music/theme.ogg": clip_bytes("OGG", seconds=1.0, seed=3),
            "textures/stone.png": b"\x89PNG not a sound",
            "sfx/thunder_3.wav": b"RIFF\x10\x00\x00\x00WAVEfmt garbage",
            "sfx/rain_1.wav": clip_bytes("WAV", silent=True),
        }
    )
    make_deb(
        folder / "testgame-data_1.0-1_all.deb",
        {
            "usr/share/doc/testgame-data/copyright": COPYRIGHT,
            "usr/share/games/testgame/sounds.zip": sounds,
        },
    )
    group = pack_group_file(
        {
            "Hits.ocg": {
                "Glass.ocg": {
                    "GlassShatter1.wav": clip_bytes("WAV", freq=2000, seed=4),
                    "GlassShatter2.ogg": clip_bytes("OGG", freq=2500, seed=5),
                },
                "Thunder1.wav": b"\x00\x01 not audio at all",
            },
            "Music.ocg": {"Theme.ogg": clip_bytes("OGG", seconds=1.0, seed=6)},
            "Title.png": b"\x89PNG....",
            "authors.txt": b"Sounds by the test team",
        }
    )
    make_deb(folder / "clonkish-data_1.0_all.deb", {"usr/share/games/clonkish/Sound.ocg": group})
    resources = rcc_bytes(
        {
            "edu": {
                "animals": {"cow.ogg": clip_bytes("OGG", freq=300, seed=7)},
                "music": {"tune.ogg": clip_bytes("OGG", seconds=1.0, seed=8)},
                "icon.svg": b"<svg/>",
            }
        }
    )
    make_deb(
        folder / "edugame-data_1.0_all.deb",
        {"usr/share/edugame/rcc/farm.rcc": resources, "usr/share/edugame/rcc/broken.rcc": b"qres"},
    )
    make_deb(folder / "minetest-data_1.0_all.deb", {"usr/share/games/m/dog_bark.wav": clip_bytes()})
    return folder


def read_rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_keeps_the_real_clips_and_accounts_for_the_rest(tmp_path):
    out = tmp_path / "out"
    summary = build_corpus(str(make_packages(tmp_path / "debs")), str(out))

    assert summary["clips"] == 5
    assert summary["reserved_skipped"] == ["minetest-data"]
    rcc_pkg = summary["packages"]["edugame-data"]
    assert rcc_pkg["clips"] == 1 and rcc_pkg["concepts"] == 1
    assert rcc_pkg["dropped"] == {"music": 1, "not_audio": 1, "corrupt": 1}
    zip_pkg, group_pkg = summary["packages"]["testgame-data"], summary["packages"]["clonkish-data"]
    assert zip_pkg["clips"] == 2 and group_pkg["clips"] == 2
    assert zip_pkg["dropped"] == {"music": 1, "not_audio": 1, "corrupt": 1, "silent": 1}
    assert group_pkg["dropped"] == {"music": 1, "not_audio": 1, "corrupt": 1}
    assert zip_pkg["licence"] == {"CC0-1.0": 2} and group_pkg["licence"] == {"unknown": 2}
    assert json.loads((out / "summary.json").read_text())["clips"] == 5

    columns, rows = read_rows(out / "manifest.csv")
    assert tuple(columns) == GENERIC_COLUMNS
    clips = {}
    for r in rows:
        clips.setdefault(r["clip_id"], []).append(r)
    assert len(clips) == 5
    for clip_rows in clips.values():
        first = clip_rows[0]
        assert len(clip_rows) >= 3 and len({r["caption"] for r in clip_rows}) == len(clip_rows)
        assert all("_" not in r["caption"] for r in clip_rows)
        assert (
            sf.info(str(out / first["audio"])).duration > 0.3
        )  # the audio is there, relative to OUT
        assert not first["audio"].startswith("/")
    by_label = {}
    for r in rows:
        by_label.setdefault(r["label"], r)  # a clip's first row: its canonical caption
    steps = by_label["footsteps_walk_gravel"]
    assert steps["caption"] == "footsteps walking on gravel"
    assert steps["source"] == "testgame-data"
    path_in_package = "usr/share/games/testgame/sounds.zip/sfx/footsteps_gravel_1.wav"
    expected_id = hashlib.sha1(f"testgame-data/{path_in_package}".encode()).hexdigest()[:16]
    assert expected_id in clips
    # two takes of one recording share a group, in both archives
    assert len({r["group"] for r in rows if r["label"] == "footsteps_walk_gravel"}) == 1
    assert len({r["group"] for r in rows if r["label"] == "glass_shatter"}) == 1
    assert len({r["clip_id"] for r in rows if r["label"] == "glass_shatter"}) == 2


def test_rebuild_is_stable_and_reserved_packages_stay_closed(tmp_path):
    debs = make_packages(tmp_path / "debs")
    build_corpus(str(debs), str(tmp_path / "a"))
    build_corpus(str(debs), str(tmp_path / "b"))
    ids = [sorted(r["clip_id"] for r in read_rows(tmp_path / d / "manifest.csv")[1]) for d in "ab"]
    assert ids[0] == ids[1]  # clip ids do not depend on where OUT is
    assert not (tmp_path / "a" / "audio" / "minetest-data").exists()


def test_prepare_job_takes_sfx_alone_and_needs_one_source(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    prepare.add_arguments(parser)
    debs = make_packages(tmp_path / "debs")
    assert prepare.run(parser.parse_args(["--sfx", str(debs), "--out", str(tmp_path / "o")])) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line)["sfx"]["clips"] == 5
    assert prepare.run(parser.parse_args(["--out", str(tmp_path / "o")])) == 2
