"""Path rules: real recordings stay; music, speech, UI, synthetic and fantasy sounds go."""

import pytest

from coattn_dist.data.sfx.rules import drop_reason, is_audio


@pytest.mark.parametrize(
    "package, path, reason",
    [
        ("0ad-data", "audio/music/Sunrise.ogg", "music"),
        ("0ad-data", "audio/voice/greek/civ/civ_male_attack.ogg", "speech"),
        ("0ad-data", "audio/interface/alarm/alarm_victory.ogg", "ui"),
        ("0ad-data", "audio/ambient/water/river_raging_21.ogg", None),
        ("megaglest-data", "techs/megapack/commondata/sounds/archer_ack1.wav", "speech"),
        (
            "megaglest-data",
            "techs/megapack/commondata/sounds/cow_ack1.wav",
            None,
        ),  # a cow's "ack" is a moo
        (
            "megaglest-data",
            "techs/megapack/factions/magic/units/dragon/sounds/dragon_die1.wav",
            "fantasy",
        ),
        ("wesnoth-1.16-data", "data/core/sounds/magic-holy-1.ogg", "synthetic"),
        ("wesnoth-1.16-data", "data/core/sounds/troll-hit-1.ogg", "fantasy"),
        ("wesnoth-1.16-data", "sounds/button.wav", "ui"),
        ("wesnoth-1.16-data", "data/core/sounds/horse-canter.wav", None),
        ("openclonk-data", "Sound.ocg/Clonk.ocg/Skin.ocg/Adventurer.ocg/Confirm1.wav", "speech"),
        ("openclonk-data", "Sound.ocg/Clonk.ocg/Skin.ocg/Adventurer.ocg/Hurt1.wav", None),
        ("supertuxkart-data", "data/sfx/nitro.ogg", "synthetic"),
        ("any-data", "sounds/laser_shot.wav", "synthetic"),
        ("any-data", "menu/button_click.wav", "ui"),
        ("lugaru-data", "Sounds/RabbitChitter2.ogg", "fantasy"),
        ("lugaru-data", "Sounds/Music1Snow.ogg", "music"),
        ("lugaru-data", "Sounds/Growl2.ogg", None),
        ("extremetuxracer-data", "sounds/pickup1.wav", "ui"),
        ("bucklespring-data", "usr/share/buckle/wav/1a-0.wav", None),  # a press of the top row
        ("bucklespring-data", "usr/share/buckle/wav/1a-1.wav", "surplus"),  # its release
        ("bucklespring-data", "usr/share/buckle/wav/3b-0.wav", "surplus"),  # another row
        ("brainparty-data", "usr/share/games/brainparty/mouse_click.wav", None),
        ("brainparty-data", "usr/share/games/brainparty/click.wav", "ui"),
        ("brainparty-data", "usr/share/games/brainparty/electricity.ogg", "music"),
        ("brainparty-data", "usr/share/games/brainparty/zap.wav", "synthetic"),
        ("micropolis-data", "usr/share/games/micropolis/res/sounds/sorry.wav", "speech"),
        ("micropolis-data", "usr/share/games/micropolis/res/sounds/honkhonk-hi.wav", "duplicate"),
        ("micropolis-data", "usr/share/games/micropolis/res/sounds/honkhonk-high.wav", None),
        ("micropolis-data", "usr/share/games/micropolis/res/sounds/stadium.wav", "ui"),
        ("simutrans-pak64", "usr/share/games/simutrans/pak/sound/click.wav", "ui"),
        ("simutrans-pak64", "usr/share/games/simutrans/pak/sound/seagulls.wav", None),
        ("supertux-data", "usr/share/games/supertux2/sounds/thunder.wav", None),
        ("supertux-data", "usr/share/games/supertux2/sounds/yeti_roar.wav", "fantasy"),
        ("supertux-data", "usr/share/games/supertux2/sounds/lifeup.wav", "synthetic"),
        ("supertux-data", "usr/share/games/supertux2/speech/tux_hello.ogg", "speech"),
        ("redeclipse-data", "usr/share/games/redeclipse/data/sounds/ambience/creek.ogg", None),
        (
            "redeclipse-data",
            "usr/share/games/redeclipse/data/sounds/weapons/rifle/primary.ogg",
            "synthetic",
        ),
        ("redeclipse-data", "usr/share/games/redeclipse/data/sounds/player/pain3.ogg", "speech"),
        (
            "redeclipse-data",
            "usr/share/games/redeclipse/data/sounds/ambience/morph/machine4.ogg",
            "synthetic",
        ),
        ("flightgear-data-base", "usr/share/games/flightgear/Sounds/thunder2.wav", None),
        (
            "flightgear-data-base",
            "usr/share/games/flightgear/Aircraft/c172p/Sounds/keys2.wav",
            None,
        ),
        (
            "flightgear-data-base",
            "usr/share/games/flightgear/Sounds/tcas/female/climb_now.wav",
            "speech",
        ),
        (
            "flightgear-data-base",
            "usr/share/games/flightgear/Aircraft/c172p/Sounds/checklist1.wav",
            "speech",
        ),
        ("flightgear-data-base", "usr/share/games/flightgear/Sounds/intro.mp3", "music"),
        ("flightgear-data-base", "usr/share/games/flightgear/Sounds/gear-hrn.wav", "ui"),
        (
            "flightgear-data-base",
            "usr/share/games/flightgear/Aircraft/c172p/Sounds/double-click2.wav",
            "ui",
        ),
        ("scratch", "usr/share/scratch/Media/Sounds/Human/Sneeze-male.wav", None),
        ("scratch", "usr/share/scratch/Media/Sounds/Percussion/Gong.wav", None),
        ("scratch", "usr/share/scratch/Media/Sounds/Percussion/Shaker.wav", "music"),
        ("scratch", "usr/share/scratch/Media/Sounds/Instruments/Trumpet1.wav", "music"),
        ("scratch", "usr/share/scratch/Media/Sounds/Vocals/Join-us.mp3", "speech"),
        ("scratch", "usr/share/scratch/Media/Sounds/Electronic/Whoop.wav", "synthetic"),
        (
            "trigger-rally-data",
            "usr/share/games/trigger-rally/data.zip/sounds/codriver/ab/Left.wav",
            "speech",
        ),
    ],
)
def test_drop_reasons(package, path, reason):
    assert drop_reason(package, path) == reason


def test_audio_by_extension():
    assert is_audio("a/B.OGG") and is_audio("x.wav") and not is_audio("readme.txt")
