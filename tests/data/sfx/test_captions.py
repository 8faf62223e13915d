"""Captions from paths: natural sentences, 3-5 per concept, materials, takes grouped."""

import re
from fnmatch import fnmatch
from importlib.resources import files
from pathlib import Path

import pytest

from coattn_dist.data.sfx.captions import (
    GAME_RULES,
    GENERIC_RULES,
    group_of,
    name_clip,
    path_text,
    render,
)
from coattn_dist.data.sfx.vocabulary import CONCEPTS, MATERIAL_ALIASES, MATERIALS


@pytest.mark.parametrize(
    "package, path, label, canonical",
    [
        (
            "0ad-data",
            "audio/ambient/water/river_raging_21.ogg",
            "river_raging",
            "a raging river rushes",
        ),
        (
            "0ad-data",
            "audio/actor/singlesteps/fs_gravel3.ogg",
            "footstep_gravel",
            "a footstep on gravel",
        ),
        (
            "0ad-data",
            "audio/actor/human/movement/Footsteps/Footstep_Wood_Running.ogg",
            "footsteps_run_wood",
            "footsteps running on a wooden floor",
        ),
        (
            "0ad-data",
            "audio/attack/impact/arrow_metal_04.ogg",
            "arrow_hit_metal",
            "an arrow hits metal",
        ),
        (
            "0ad-data",
            "audio/resource/lumbering/lumber_tree_05.ogg",
            "wood_chop",
            "someone chops wood with an axe",
        ),
        (
            "openclonk-data",
            "Sound.ocg/Hits.ocg/Materials.ocg/Glass.ocg/GlassShatter.ogg",
            "glass_shatter",
            "glass shatters",
        ),
        (
            "wesnoth-1.16-data",
            "data/core/sounds/horse-canter.wav",
            "horse_canter",
            "a horse canters",
        ),
        (
            "widelands-data",
            "data/sound/woodcutting/tree_falling_00.ogg",
            "tree_fall",
            "a tree creaks and crashes to the ground",
        ),
        ("megaglest-data", "tilesets/autumn/sounds/rooster.ogg", "rooster", "a rooster crows"),
        (
            "gcompris-qt-data",
            "gcompris/src/activities/memory-sound/resource/LRBark_3_LA_cut.ogg",
            "dog_bark",
            "a dog barks",
        ),
        ("lincity-ng-data", "sounds/SportsCroud2.wav", "crowd_cheer", "a crowd cheers"),
        (
            "scorched3d-data",
            "data/globalmods/apoc/data/wav/misc/policecar.wav",
            "siren",
            "a siren wails",
        ),
        (
            "scorched3d-data",
            "data/globalmods/none/data/wav/misc/f16_1.wav",
            "airplane_jet",
            "a jet airplane flies over",
        ),  # fmt: skip
        ("lugaru-data", "Sounds/FootStepSnow2.ogg", "footstep_snow", "a footstep in the snow"),
        ("extremetuxracer-data", "sounds/ice_slide.wav", "slide_ice", "someone slides on ice"),
        (
            "torcs-data",
            "data/sound/lamborghinidiablo.wav",
            "race_car_engine",
            "a racing car engine roars",
        ),
        ("torcs-data", "data/sound/skid_tyres.wav", "tyre_skid", "car tyres skid"),
        (
            "bucklespring-data",
            "usr/share/buckle/wav/1a-0.wav",
            "key_press",
            "a keyboard key is pressed",
        ),
        ("brainparty-data", "usr/share/games/brainparty/meow.wav", "cat_meow", "a cat meows"),
        (
            "micropolis-data",
            "usr/share/games/micropolis/res/sounds/quackquack.wav",
            "duck",
            "a duck quacks",
        ),
        (
            "simutrans-pak64",
            "usr/share/games/simutrans/pak/sound/crossing.wav",
            "level_crossing",
            "the bells of a railway crossing ring",
        ),
        (
            "simutrans-pak64",
            "usr/share/games/simutrans/pak/sound/horse.wav",
            "horse",
            "a horse whinnies",
        ),
        (
            "supertux-data",
            "usr/share/games/supertux2/sounds/phone.wav",
            "phone_ring",
            "a telephone rings",
        ),
        (
            "redeclipse-data",
            "usr/share/games/redeclipse/data/sounds/player/concstep2.ogg",
            "footstep_stone",
            "a footstep on stone",
        ),
        (
            "redeclipse-data",
            "usr/share/games/redeclipse/data/sounds/ambience/nightcrickets.ogg",
            "crickets",
            "crickets chirp",
        ),
        (
            "flightgear-data-base",
            "usr/share/games/flightgear/Aircraft/c172p/Sounds/tires-rolling-gravel.wav",
            "tyres_rolling_gravel",
            "tyres roll on gravel",
        ),
        (
            "flightgear-data-base",
            "usr/share/games/flightgear/Sounds/coughing.wav",
            "cough",
            "a person coughs",
        ),
        (
            "flightgear-data-base",
            "usr/share/games/flightgear/Sounds/p51d_startup.wav",
            "engine_start",
            "an engine starts up",
        ),
        ("scratch", "usr/share/scratch/Media/Sounds/Animal/Dog2.wav", "dog_bark", "a dog barks"),
        (
            "scratch",
            "usr/share/scratch/Media/Sounds/Animal/SeaLion.mp3",
            "sea_lion",
            "a sea lion barks",
        ),
        ("scratch", "usr/share/scratch/Media/Sounds/Human/BabyCry.mp3", "baby_cry", "a baby cries"),
        (
            "freeciv-data",
            "usr/share/games/freeciv/stdsounds/MgBar2.ogg",
            "machine_gun",
            "a machine gun fires a long burst",
        ),
        (
            "trigger-rally-data",
            "usr/share/games/trigger-rally/data.zip/sounds/gravel.wav",
            "tyres_rolling_gravel",
            "tyres roll on gravel",
        ),
    ],
)
def test_path_to_caption(package, path, label, canonical):
    naming = name_clip(package, path)
    assert naming.label == label and naming.captions[0] == canonical


def test_unrecognisable_paths_get_no_caption():
    assert (
        name_clip("megaglest-data", "techs/megapack/commondata/sounds/swordman_attack3.wav") is None
    )
    assert name_clip("0ad-data", "audio/attack/fire/sz_11.ogg") is None
    assert name_clip("lincity-ng-data", "sounds/ResidentialHigh1.wav") is None  # a building
    assert name_clip("torcs-data", "data/sound/gear_change1.wav") is None  # a game event
    assert name_clip("simutrans-pak64", "usr/share/games/simutrans/pak/sound/desert.wav") is None
    assert name_clip("flightgear-data-base", "Aircraft/c172p/Sounds/water-rudder-in.wav") is None


def test_docs_hint_names_what_the_path_does_not():
    assert (
        name_clip("0ad-data", "audio/attack/fire/c_11.ogg", hint="crackling_fire").label == "fire"
    )
    assert (
        name_clip("supertuxkart-data", "data/sfx/gp_end.ogg", hint="10 Second Applause").label
        == "applause"
    )


def test_every_concept_reads_like_a_caption():
    for key, templates in CONCEPTS.items():
        assert 3 <= len(templates) <= 5, key
        assert len(set(templates)) == len(templates), key
        for t in templates:
            text = t.format(on="on gravel", noun="gravel", adj="gravel")
            assert "_" not in text and text == text.strip() and text[0].islower(), (key, t)
        if "{" in "".join(templates):  # a material concept renders for every material
            for material in MATERIALS:
                naming = render(f"{key}:{material}")
                assert naming.label == f"{key}_{material}"
                assert not any("{" in c or "_" in c for c in naming.captions)


def test_every_rule_names_a_known_concept():
    for rules in [*GAME_RULES.values(), GENERIC_RULES]:
        for pattern, spec in rules:
            assert isinstance(pattern, re.Pattern)
            key, _, material = spec.partition(":")
            assert not spec or key in CONCEPTS, spec
            assert material in ("", "{m}", *MATERIALS), spec
            assert (material == "{m}") == ("m" in pattern.groupindex), spec  # {m}: m captured


def test_every_alias_names_a_material():
    assert set(MATERIAL_ALIASES.values()) <= set(MATERIALS)
    assert all(MATERIAL_ALIASES[m] == m for m in MATERIALS)


def test_rules_keep_their_order():
    # naming.yaml: the camel's footsteps come before the camel's call; first match wins
    naming = name_clip("0ad-data", "audio/actor/fauna/movement/camel_10.ogg")
    assert naming.label == "animal_walk"
    assert name_clip("0ad-data", "audio/actor/fauna/death/camel_death.ogg").label == "camel"


def test_the_tables_ship_with_the_package():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["coattn_dist.data.sfx"]
    tables = [p for p in files("coattn_dist.data.sfx").iterdir() if p.name.endswith(".yaml")]
    assert {"vocabulary.yaml", "naming.yaml"} <= {p.name for p in tables}
    assert all(any(fnmatch(p.name, g) for g in globs) for p in tables)


def test_paraphrases_follow_the_canonical_caption():
    naming = name_clip("0ad-data", "audio/attack/weapon/swordhit_12a.ogg")
    assert naming.captions[0] == "swords clash" and len(naming.captions) >= 3
    assert all("_" not in c for c in naming.captions)


def test_takes_of_one_recording_share_a_group():
    g = group_of("0ad-data", "audio/attack/weapon/swordhit_10a.ogg")
    assert (
        g
        == group_of("0ad-data", "audio/attack/weapon/swordhit_12.ogg")
        == "0ad-data/audio/attack/weapon/swordhit"
    )
    assert (
        group_of("w", "sounds/wolf-growl-1.ogg")
        == group_of("w", "sounds/wolf-growl-4.ogg")
        == "w/sounds/wolf-growl"
    )
    assert group_of("o", "Fire.ocg/Blast3alt.wav") == group_of("o", "Fire.ocg/Blast1.wav")
    assert (
        group_of("m", "sounds/sheep10.wav")
        == group_of("m", "sounds/sheep_a.wav")
        == "m/sounds/sheep"
    )
    assert group_of("w", "sounds/wolf.ogg") != group_of("w", "sounds/wolf-growl-1.ogg")


def test_path_text_splits_camel_case_and_numbers():
    assert path_text("Sound.ocg/Hits.ocg/GlassShatter2.ogg") == "sound hits glass shatter 2"
    assert (
        path_text("audio/actor/singlesteps/fs_gravel3.ogg") == "audio actor singlesteps fs gravel 3"
    )
