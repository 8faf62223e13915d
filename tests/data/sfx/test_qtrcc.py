"""GCompris's Qt resource files: nested folders, compressed and stored entries, bad input refused."""

import pytest

from coattn_dist.data.sfx.qtrcc import walk_rcc
from tests.data.sfx.archives import clip_bytes, rcc_bytes

TREE = {
    "gcompris": {
        "src": {
            "animals": {"dog.ogg": clip_bytes("OGG", seed=1), "cow.wav": clip_bytes(seed=2)},
            "readme.txt": b"hello",
        }
    }
}


@pytest.mark.parametrize("compress", [True, False])
def test_walk_returns_every_file_with_its_path_and_bytes(compress):
    files = dict(walk_rcc(rcc_bytes(TREE, compress=compress), "rcc/farm.rcc"))
    assert files == {
        "rcc/farm.rcc/gcompris/src/animals/dog.ogg": TREE["gcompris"]["src"]["animals"]["dog.ogg"],
        "rcc/farm.rcc/gcompris/src/animals/cow.wav": TREE["gcompris"]["src"]["animals"]["cow.wav"],
        "rcc/farm.rcc/gcompris/src/readme.txt": b"hello",
    }
    assert set(dict(walk_rcc(rcc_bytes(TREE, compress=compress)))) == {
        "gcompris/src/animals/dog.ogg",
        "gcompris/src/animals/cow.wav",
        "gcompris/src/readme.txt",
    }


def test_not_an_rcc_and_truncated_files_are_refused():
    with pytest.raises(ValueError, match="qres"):
        list(walk_rcc(b"PK\x03\x04 a zip, not a resource file"))
    with pytest.raises(ValueError, match="past the end"):
        list(walk_rcc(rcc_bytes(TREE)[:200]))
