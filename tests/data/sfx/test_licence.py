"""Licences from the package's copyright file (last matching stanza wins) and OpenClonk's authors.txt."""

from coattn_dist.data.sfx.licence import Licences

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: the team
License: GPL-3+

Files: data/sfx/clock.ogg
Copyright: someone
License: CC0
Comment: From http://soundbible.com/123-Clock-Ticking.html
"""
AUTHORS = """If not stated otherwise, the sound effects are licensed under CC-BY 3.0
ala - Structures/DoorOpen*

The following sound effects are licensed under the CC 0 license (public domain):

mrmayo   - Balloon/Pop (http://www.freesound.org/people/mrmayo/sounds/77039/)
mbezzola - RockHit1-3 (http://x/)
tc630    - Furnace/Start, Furnace/Stop
Kane53126\t\t- Click2 (http://x/)
"""


def test_per_file_stanzas_override_the_default():
    lic = Licences("kart-data", {"usr/share/doc/kart-data/copyright": COPYRIGHT})
    assert lic("usr/share/games/kart/data/sfx/clock.ogg") == "CC0-1.0"  # one name across packages
    assert lic("usr/share/games/kart/data/sfx/horn.ogg") == "GPL-3+"


def test_free_text_packages_get_their_stated_licence_and_cc0_items():
    docs = {
        "usr/share/doc/openclonk-data/copyright": "free text",
        "x/Sound.ocg/authors.txt": AUTHORS,
    }
    paths = [
        f"x/Sound.ocg/{p}"
        for p in (
            "Objects.ocg/Balloon.ocg/Pop.wav",
            "Hits.ocg/Rock.ocg/RockHit2.ogg",
            "Structures.ocg/Furnace.ocg/Start.ogg",
            "Structures.ocg/Elevator.ocg/Start.ogg",
            "Hits.ocg/Rock.ocg/RockHit4.ogg",
            "UI.ocg/Click2.ogg",
            "Objects.ocg/Gun.ocg/Click2.wav",
        )
    ]
    lic = Licences("openclonk-data", docs, paths)
    assert lic("x/Sound.ocg/Objects.ocg/Balloon.ocg/Pop.wav") == "CC0-1.0"
    assert lic("x/Sound.ocg/Hits.ocg/Rock.ocg/RockHit2.ogg") == "CC0-1.0"
    assert lic("x/Sound.ocg/Structures.ocg/Furnace.ocg/Start.ogg") == "CC0-1.0"
    assert lic("x/Sound.ocg/Structures.ocg/Elevator.ocg/Start.ogg") == "CC-BY-3.0"
    assert lic("x/Sound.ocg/Hits.ocg/Rock.ocg/RockHit4.ogg") == "CC-BY-3.0"
    assert lic("x/Sound.ocg/UI.ocg/Click2.ogg") == "CC-BY-3.0"  # names two files: ambiguous


def test_a_source_folder_installed_under_another_name_keeps_its_stanza():
    copyright = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
License: GPL-2+

Files: Data/*
License: CC-BY-SA-3.0
"""
    lic = Licences("lugaru-data", {"usr/share/doc/lugaru-data/copyright": copyright})
    assert lic("usr/share/games/lugaru/Sounds/Bark.ogg") == "CC-BY-SA-3.0"
    assert lic("usr/share/doc/lugaru-data/README") == "GPL-2+"
