"""A .deb read without dpkg: ar members, the data tar streamed, hard links reported as links."""

from coattn_dist.data.sfx.deb import deb_files
from coattn_dist.data.sfx.sources import package_entries, package_name
from tests.data.sfx.archives import make_deb, zip_bytes


def test_files_and_hard_links(tmp_path):
    deb = make_deb(
        tmp_path / "game-data_1.0-1_all.deb",
        {"usr/share/games/game/a.ogg": b"AAAA", "usr/share/doc/game-data/copyright": b"text"},
        links={"usr/share/games/game/b.ogg": "usr/share/games/game/a.ogg"},
        symlinks={"usr/share/games/game/sub/c.ogg": "../a.ogg"},
    )
    seen = {f.path: (f.read(), f.link) for f in deb_files(str(deb))}
    assert seen == {
        "usr/share/games/game/a.ogg": (b"AAAA", None),
        "usr/share/doc/game-data/copyright": (b"text", None),
        "usr/share/games/game/b.ogg": (b"", "usr/share/games/game/a.ogg"),
        "usr/share/games/game/sub/c.ogg": (b"", "usr/share/games/game/a.ogg"),
    }
    assert package_name(str(deb)) == "game-data"


def test_zip_inside_a_deb_is_opened(tmp_path):
    deb = make_deb(
        tmp_path / "g_1_all.deb",
        {"usr/share/games/g/public.zip": zip_bytes({"audio/x.wav": b"xx"})},
    )
    entries = {e.path: e.read() for e in package_entries(str(deb))}
    assert entries == {"usr/share/games/g/public.zip/audio/x.wav": b"xx"}
