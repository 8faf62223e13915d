"""Which audio files of a package are real recordings: per-game path rules, then generic ones.

A rule maps a pattern over the path's words (``captions.path_text``) to a drop reason, or to
``None`` for "keep this one" (an exception placed before a broader drop). Reasons:
``music``, ``speech`` (voices, narration, unit acknowledgements), ``ui`` (interface beeps,
clicks, alerts), ``synthetic`` (magic, spells, lasers, sci-fi and other designed sounds),
``fantasy`` (creatures that do not exist: a caption could only invent what they sound like),
``duplicate`` (a copy of another package's recording), ``surplus`` (more takes of one sound
than a concept needs).
"""

from __future__ import annotations

import re

from coattn_dist.data.sfx.captions import game_of, path_text
from coattn_dist.data.table import AUDIO_EXTENSIONS

GAME_DROPS: dict[str, list[tuple[str, str | None]]] = {
    "0ad": [
        (r"\baudio voice\b", "speech"),
        (r"\baudio interface\b", "ui"),
        (r"\b(ship|siege) select\b", "ui"),
    ],
    "wesnoth": [
        (r"^sounds\b", "ui"),  # the top-level sounds/ folder: menu, chat, lobby
        (r"\bwardrums\b|\bfanfare\b", "music"),
        (r"\bugg\b", "speech"),
        (
            r"\b(magic|magicmissile|heal|entangle|slowed|petrified|poison|lightning|ink|melee fire"
            r"|flame big|water blast|dragonstick|potion|pincers|claws|dart)\b",
            "synthetic",
        ),
        (
            r"\b(drake|gryphon|lich|naga|mermaid|mermen|ogre|troll|goblin|skeleton|wose|yeti|zombie"
            r"|ghoul|tusker|wail|mud|tail|squishy)\b",
            "fantasy",
        ),
    ],
    "widelands": [
        (r"\bdata sound (click|create construction site|lobby \w+|message)\b", "ui"),
        (r"\bdata sound military\b", "ui"),
    ],
    "megaglest": [
        (r"\bdata core menu\b", "ui"),
        (r"\b(tech click|magic click)\b", "ui"),
        (r"\bthunderbird sounds (eagle (attack|fly)|ground attack)\b", "fantasy"),
        (r"\bfirearrowhit\b", "synthetic"),
        (
            r"\b(cow|pig|chicken|bull|sheep|wild sow|eagle)\b",
            None,
        ),  # animals: their "ack" is a call
        (
            r"\b(ack|select|sel|minarett)\b",
            "speech",
        ),  # unit voices ("My family ... for the unit voices")
        (
            r"\b(daemon|golem|dragon|dr|behemoth|ghost armor|mummy|anubis|carpet|airship|machine|orni"
            r"|eagle pillar|hell|ab|air|tower|defense tower)\b",
            "fantasy",
        ),
        (
            r"\b(archmage|battlemage|initiate|summoner|magician|shaman|genie|wicker|heal|magic)\b",
            "synthetic",
        ),
    ],
    "openclonk": [
        (r"\bsound ui\b", "ui"),
        (r"\bskin \w+ (confirm|decline|doubt|evil confirm|singing)\b|\bgroup attack\b", "speech"),
        (r"\bchippie egg crack\b", None),
        (
            r"\b(chippie|lava core|monster|mooq|puka|wipf|zap|ogre club hit|boompack|windbag)\b",
            "fantasy",
        ),
        (r"\b(crystal comm \w+|warp|diamond dig out|corrode|teleport \w+)\b", "synthetic"),
        (r"\baction (grab|un grab)\b", "ui"),
        (r"\bcircus\b", "music"),
    ],
    "supertuxkart": [
        (
            r"\btracks \w+ (battle theme|gran paradiso\w*|beneath the rabbit hole)\b|\bintrocutscene \d+ intro\b",
            "music",
        ),
        (r"\b(gnu flute|last lap fanfare|race finish\w*|track intro)\b", "music"),
        (r"\b(sara airport pa|nolok speech|ugh|wee)\b", "speech"),
        (
            r"\b(pre start race|start race|grab collectable|locked|swap|energy bar \w+|button)\b",
            "ui",
        ),
        (
            r"\b(appear|boing|bzzt\d*|forcefield|portal|tractor beam|nitro|dark|spaceship\w*|goo|plopp"
            r"|parachute|shoot|bubblegum explode|jump|hammer|bowling shoot|hot)\b",
            "synthetic",
        ),
        (r"\bsfx anvil\b", "duplicate"),  # Wesnoth's mace.wav, re-encoded (Debian copyright)
    ],
    "gcompris-qt": [
        (
            r"\b(instruments|explore world music|melody|play piano|piano composition|play rhythm"
            r"|note names|guitar \w+|intro)\b",
            "music",
        ),
        (r"\b(youcannot|tuxok)\b", "speech"),
        (r"\b(weird|fireballs|la pause|realrainbow|morse code|chronos|gnumch \w+)\b", "synthetic"),
        (
            r"\bcore resource sounds\b|\b(babymatch|align 4 2 players|nine men morris|tic tac toe)\b",
            "ui",
        ),
        (r"\b(memory|play rhythm) resource\b", "ui"),
    ],
    "scorched3d": [
        (
            r"\b(beamup|extralife|lockon|nuclearloop|riftcollapse|fight 4 life|laserdeath|teleport"
            r"|text|play|beep|beep 2|battery|shield|movement|para|gloop|napalm|acid|beesting|bhit"
            r"|empsmall|gas|lightning|lightningbolt|meteor|radiation|shockwave|laser|laser 1|tracer"
            r"|flare|tripleshot)\b",
            "synthetic",
        ),
    ],
    "lincity-ng": [
        (r"\b(click|window (open|close)|build|raze|substation (on|off))\b", "ui"),
    ],
    "lugaru": [
        (r"\brabbit\b|\bclaw slice\b", "fantasy"),  # Lugaru's rabbits fight and talk
        (r"\b(console (fail|success)|alarm)\b", "ui"),
    ],
    "extremetuxracer": [(r"\bpickup\b", "ui")],
    # one keyboard's 86 keys, pressed and released: the presses of one row are plenty
    "bucklespring": [(r"\bwav 1(\d| [a-f]) 0$", None), (r".", "surplus")],
    "brainparty": [
        (r"\bmouse click\b", None),
        (r"\belectricity\b", "music"),
        (r"\b(correct|wrong|result|happy ring|gem select|down|beep hi|click)\b", "ui"),
        (r"\b(zap|soft boom|slide|swoosh long|whack|gun)\b", "synthetic"),  # cartoon effects
    ],
    "micropolis": [
        (r"\b(a|e|o|aaah|oop|sorry|uhuh)$", "speech"),
        (r"\b(honkhonk|explosion) hi$", "duplicate"),  # 8 kHz copies of the -high takes
        (
            r"\b(beep|boing|bop|build|com|computer|ind|res|park|query|rail|road|seaport|airport"
            r"|stadium|zone|wire|woosh|nuclear|coal|monster)$",
            "ui",
        ),  # zone and tool sounds of the city editor
    ],
    "simutrans-pak64": [(r"\b(click|boing)$", "ui")],
    "supertux": [
        (r"\bsupertux 2 speech\b", "speech"),
        (
            r"\b(yeti \w+|willowisp|willocatch|mr tree\w*|tree (howling|suck)|totem|grunts)$",
            "fantasy",
        ),
        (
            r"\b(bigjump|brick|coins?|coins cleared|crystallo \w+|dartfire|darthit|empty|excellent"
            r"|fall|fire flower|flip|flop|grow|hop|hurt|iceblock bump|invincible start|jump|kick|kill"
            r"|lava|lifeup|locked|pop|pshit|retro fall|shoot|stomp|switch|tada|trampoline|upgrade"
            r"|warp|welldone)$",
            "synthetic",
        ),  # the platformer's own effects: jumps, power-ups, enemies
    ],
    "redeclipse": [
        (r"\bsounds (theme|theme chip|original)$|\bdata maps\b", "music"),
        (r"\bplayer (death|pain|jump|impulse)\b", "speech"),
        (r"\bsounds weapons\b", "synthetic"),  # an arena shooter's plasma, zapper and rifles
        (
            r"\bambience (alienwind|dizzywind|electro|hum|jumppad|lava\w*|switch|teleport|wakawaka)"
            r"|\bmorph (ambient|criticalcore|door|machine|outdoorsignal)",
            "synthetic",
        ),
        (
            r"\bsfx (alarm|bleeddamage|bounce|burndamage|catch|chat|critical|damage|error|itemspawn"
            r"|itemuse|regenerate|respawn|shockdamage)\b",
            "ui",
        ),
    ],
    # a flight simulator: engines, weather, doors and tyres recorded; cockpit callouts and alarms
    "flightgear-data-base": [
        (r"\bsounds (mk viii|tcas)\b|\bchecklist\b", "speech"),
        (r"\bsounds intro$", "music"),
        (
            r"\b(glider|click|beep|avionics|overspeed|stall|gear hrn|gyro|whine|scroll|trim"
            r"|control lock|primer (in|out)|gps to glove compartment|repair|damage( heavy)?)\b",
            "ui",
        ),
        (r"\b(blade vortex|rotor stall|rattleroll)$", "synthetic"),  # modelled from tones
    ],
    "scratch": [  # Scratch 1.4's sound library: real recordings beside instruments and tones
        (r"\bsounds (percussion|instruments) (gong|hand clap)$", None),
        (r"\bsounds (instruments|percussion|music loops)\b", "music"),
        (r"\bsounds vocals\b|\bparty noise\b", "speech"),
        (r"\bsounds electronic\b|\beffects pop$", "synthetic"),
    ],
    "freeciv": [
        (r"\bstdmusic\b", "music"),
        (r"\b(illegal|wakeup)$", "ui"),
    ],
    "foobillardplus": [(r"\bintro$", "music"), (r"\booh$", "speech")],
    "trigger-rally": [(r"\bcodriver\b", "speech")],
    "flare-game": [
        (r"\bsoundfx enemies\b", "fantasy"),
        (r"\bsoundfx (npcs|(fe)?male (die|hit))\b", "speech"),
        (r"\bsoundfx (powers|level up|no mana|flying loot)\b", "synthetic"),
    ],
}

GENERIC_DROPS: list[tuple[str, str]] = [
    (r"\bmusic\b|\bsoundtrack\b|\bsongs?\b|\bjingle\b|\btheme\b", "music"),
    (r"\bvoices?\b|\bspeech\b|\bnarrat\w*\b|\bdialog\w*\b|\bannounc\w*\b", "speech"),
    (r"\b(ui|gui|interface|menu|button|checkbox|slider|notification|beep)\b", "ui"),
    (r"\b(magic|spell\w*|laser\w*|teleport\w*|portal|force ?field|power ?up|zap)\b", "synthetic"),
]


def is_audio(path: str) -> bool:
    return path.lower().endswith(AUDIO_EXTENSIONS)


def drop_reason(package: str, path: str) -> str | None:
    """Why an audio file is not a real recording worth a caption, or ``None`` to keep it."""
    text = path_text(path)
    for pattern, reason in GAME_DROPS.get(game_of(package), []):
        if re.search(pattern, text):
            return reason
    for pattern, reason in GENERIC_DROPS:
        if re.search(pattern, text):
            return reason
    return None
