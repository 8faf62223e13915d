"""Readers for the metadata files public datasets ship, so users point at what they downloaded.

Each returns the manifest schema (clip_id, audio, caption, label) with default clip ids, so a
clip gets the same id whether it is read from here or from a generic manifest naming its URI.
"""

from __future__ import annotations

import os
import posixpath
import re
import warnings

import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from coattn_dist.data.manifest import (
    clip_id_for,
    folder_of,
    manifest_table,
    read_table,
    require_cells,
    resolve,
)

COLUMNS = {
    "Clotho": ("file_name", "caption_1"),
    "AudioCaps": ("audiocap_id", "youtube_id", "start_time", "caption"),
    "ESC-50": ("filename", "fold", "target", "category", "src_file", "take"),
}
_AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")

# The first description of each class is its canonical query; the others vary the wording for
# training. Written as people caption sounds, never with the class name's underscores.
ESC50_CAPTIONS: dict[str, list[str]] = {
    "dog": [
        "a dog barks",
        "a dog is barking loudly",
        "barking of a dog",
        "a dog barks several times",
        "a small dog yaps and barks",
    ],
    "rooster": [
        "a rooster crows",
        "a rooster is crowing loudly",
        "the crowing of a rooster in the morning",
        "a cockerel crows several times",
        "a rooster calls out cock-a-doodle-doo",
    ],
    "pig": [
        "a pig grunts",
        "a pig is oinking and grunting",
        "grunting and squealing of pigs",
        "a pig snorts and squeals",
        "pigs oink in a pen",
    ],
    "cow": [
        "a cow moos",
        "a cow is mooing loudly",
        "mooing of cattle",
        "a cow lows in a field",
        "a cow gives a long moo",
    ],
    "frog": [
        "a frog croaks",
        "frogs are croaking",
        "croaking of frogs in a pond",
        "a frog croaks repeatedly at night",
        "a chorus of croaking frogs",
    ],
    "cat": [
        "a cat meows",
        "a cat is meowing loudly",
        "meowing of a cat",
        "a kitten meows repeatedly",
        "a cat mews and cries",
    ],
    "hen": [
        "a hen clucks",
        "chickens are clucking",
        "clucking of a hen",
        "a chicken cackles",
        "hens cluck and cackle in a coop",
    ],
    "insects": [
        "insects are buzzing",
        "a fly buzzes around",
        "buzzing of insects",
        "a bee buzzes nearby",
        "a buzzing insect flies past",
    ],
    "sheep": [
        "a sheep bleats",
        "sheep are bleating",
        "bleating of a sheep",
        "a lamb baas",
        "a flock of sheep bleat in a field",
    ],
    "crow": [
        "a crow caws",
        "crows are cawing loudly",
        "cawing of a crow",
        "a crow caws repeatedly",
        "crows call out from the trees",
    ],
    "rain": [
        "rain is falling",
        "heavy rain pours down",
        "the steady sound of rainfall",
        "rain falls on a roof",
        "raindrops patter on the ground",
    ],
    "sea_waves": [
        "waves crash on the shore",
        "ocean waves crash onto a beach",
        "the sound of sea waves",
        "waves roll in and break on the shore",
        "surf washes onto the sand",
    ],
    "crackling_fire": [
        "a fire is crackling",
        "wood crackles in a burning fire",
        "crackling of a campfire",
        "logs pop and crackle in a fireplace",
        "flames crackle and hiss",
    ],
    "crickets": [
        "crickets are chirping",
        "crickets chirp at night",
        "chirping of crickets",
        "a cricket chirps steadily",
        "a chorus of crickets in the grass",
    ],
    "chirping_birds": [
        "birds are chirping",
        "birds chirp and sing",
        "chirping of birds",
        "small birds tweet in the trees",
        "birdsong in the morning",
    ],
    "water_drops": [
        "water is dripping",
        "drops of water fall one by one",
        "water drips into a sink",
        "dripping of water",
        "droplets of water drip steadily",
    ],
    "wind": [
        "wind is blowing",
        "strong wind howls",
        "the sound of gusting wind",
        "a gust of wind blows past",
        "wind rushes through the air",
    ],
    "pouring_water": [
        "water is being poured",
        "someone pours water into a glass",
        "pouring of water",
        "water is poured into a container",
        "liquid splashes as it is poured",
    ],
    "toilet_flush": [
        "a toilet flushes",
        "a toilet is being flushed",
        "flushing of a toilet",
        "water rushes as a toilet flushes",
        "a toilet flushes and the tank refills",
    ],
    "thunderstorm": [
        "thunder rumbles in a storm",
        "loud thunder rumbles during a thunderstorm",
        "a thunderstorm with claps of thunder",
        "rolling thunder in the distance",
        "thunder crashes as rain falls",
    ],
    "crying_baby": [
        "a baby cries",
        "a baby is crying loudly",
        "crying of an infant",
        "a baby wails and sobs",
        "an infant cries and screams",
    ],
    "sneezing": [
        "a person sneezes",
        "someone sneezes loudly",
        "sneezing of a person",
        "a man sneezes",
        "a woman sneezes twice",
    ],
    "clapping": [
        "people are clapping",
        "a person claps their hands",
        "clapping of hands",
        "hands clap repeatedly",
        "an audience applauds",
    ],
    "breathing": [
        "a person is breathing",
        "someone breathes heavily",
        "heavy breathing",
        "a person inhales and exhales deeply",
        "slow breathing in and out",
    ],
    "coughing": [
        "a person coughs",
        "someone is coughing",
        "coughing of a man",
        "a person coughs several times",
        "a woman clears her throat and coughs",
    ],
    "footsteps": [
        "footsteps are heard",
        "someone is walking",
        "footsteps on a hard floor",
        "a person walks with heavy steps",
        "steps of someone walking",
    ],
    "laughing": [
        "a person laughs",
        "people are laughing",
        "laughter of a person",
        "a man laughs loudly",
        "someone giggles and laughs",
    ],
    "brushing_teeth": [
        "someone brushes their teeth",
        "a person is brushing teeth",
        "brushing of teeth with a toothbrush",
        "a toothbrush scrubs against teeth",
        "scrubbing sounds of teeth being brushed",
    ],
    "snoring": [
        "a person snores",
        "someone is snoring loudly",
        "snoring of a sleeping person",
        "a man snores while sleeping",
        "loud snoring",
    ],
    "drinking_sipping": [
        "a person drinks",
        "someone sips a drink",
        "sipping and swallowing a drink",
        "a person gulps down water",
        "slurping of a drink",
    ],
    "door_wood_knock": [
        "someone knocks on a door",
        "knocking on a wooden door",
        "a knock at the door",
        "a person knocks several times on a door",
        "knuckles rap on a wooden door",
    ],
    "mouse_click": [
        "a computer mouse clicks",
        "someone clicks a mouse",
        "clicking of a computer mouse",
        "a mouse button is clicked repeatedly",
        "rapid mouse clicks",
    ],
    "keyboard_typing": [
        "someone types on a keyboard",
        "typing on a computer keyboard",
        "keys clatter as a person types",
        "a person is typing quickly",
        "the clicking of keyboard keys",
    ],
    "door_wood_creaks": [
        "a door creaks",
        "a wooden door creaks open",
        "creaking of a door",
        "a door creaks slowly on its hinges",
        "an old door squeaks as it opens",
    ],
    "can_opening": [
        "a can is opened",
        "someone opens a soda can",
        "a can pops and fizzes open",
        "opening of a drink can",
        "the pop and hiss of a can being opened",
    ],
    "washing_machine": [
        "a washing machine runs",
        "a washing machine is running",
        "the hum of a washing machine",
        "a washing machine spins",
        "laundry tumbles in a washing machine",
    ],
    "vacuum_cleaner": [
        "a vacuum cleaner runs",
        "someone is vacuuming",
        "the roar of a vacuum cleaner",
        "a vacuum cleaner hums loudly",
        "a vacuum cleaner is turned on",
    ],
    "clock_alarm": [
        "an alarm clock rings",
        "an alarm clock is ringing",
        "beeping of an alarm clock",
        "an alarm clock beeps repeatedly",
        "a loud alarm goes off",
    ],
    "clock_tick": [
        "a clock ticks",
        "a clock is ticking",
        "ticking of a clock",
        "a clock ticks steadily",
        "the tick tock of a clock",
    ],
    "glass_breaking": [
        "glass breaks",
        "a glass shatters",
        "breaking of glass",
        "a glass smashes on the floor",
        "shards of glass shatter",
    ],
    "helicopter": [
        "a helicopter flies",
        "a helicopter is flying overhead",
        "the whirring of helicopter blades",
        "a helicopter hovers nearby",
        "rotor blades of a helicopter chop the air",
    ],
    "chainsaw": [
        "a chainsaw runs",
        "a chainsaw is cutting wood",
        "the buzzing of a chainsaw",
        "a chainsaw revs loudly",
        "a chainsaw engine roars",
    ],
    "siren": [
        "a siren wails",
        "an emergency siren is wailing",
        "a police siren",
        "an ambulance siren blares",
        "a siren rises and falls",
    ],
    "car_horn": [
        "a car horn honks",
        "a car is honking its horn",
        "honking of a car horn",
        "a driver honks the horn",
        "a car horn beeps twice",
    ],
    "engine": [
        "an engine runs",
        "an engine is idling",
        "the rumble of an engine",
        "a motor engine revs",
        "an engine hums steadily",
    ],
    "train": [
        "a train passes",
        "a train is passing by",
        "the rumble of a passing train",
        "a train rolls along the tracks",
        "wheels of a train clatter on the rails",
    ],
    "church_bells": [
        "church bells ring",
        "church bells are ringing",
        "ringing of church bells",
        "a church bell tolls",
        "bells chime from a church tower",
    ],
    "airplane": [
        "an airplane flies overhead",
        "an airplane is flying by",
        "the roar of a passing airplane",
        "a jet plane flies past",
        "an aircraft engine drones overhead",
    ],
    "fireworks": [
        "fireworks explode",
        "fireworks are going off",
        "explosions of fireworks",
        "fireworks pop and crackle",
        "loud bangs of fireworks",
    ],
    "hand_saw": [
        "someone saws wood",
        "a hand saw cuts wood",
        "sawing of wood with a hand saw",
        "a person saws back and forth",
        "a saw rasps through a plank",
    ],
}


def _read(path: str, storage_options: dict | None, name: str) -> pa.Table:
    raw = read_table(path, storage_options)
    missing = [c for c in COLUMNS[name] if c not in raw.column_names]
    if missing:
        raise ValueError(f"{path}: not a {name} file: missing column(s) {missing}")
    return raw


def _clotho_folder(path: str) -> str:
    """Clotho unpacks a split's audio into a folder named after it; some copies flatten it."""
    base = folder_of(path)
    stem = posixpath.splitext(posixpath.basename(path))[0]
    prefix = "clotho_captions_"
    if not stem.startswith(prefix):
        return base
    split_folder = resolve(stem[len(prefix) :], base)
    if "://" in split_folder or os.path.isdir(split_folder):
        return split_folder
    return base


def read_clotho(path: str, storage_options: dict | None = None) -> pa.Table:
    """Clotho captions CSV: one row per clip with its captions side by side."""
    raw = _read(path, storage_options, "Clotho")
    folder = _clotho_folder(path)
    caption_columns = sorted(
        (c for c in raw.column_names if re.fullmatch(r"caption_\d+", c)), key=lambda c: int(c[8:])
    )
    ids, uris, captions = [], [], []
    names = require_cells(raw, "file_name", path)
    for name, *cells in zip(names, *(raw[c].to_pylist() for c in caption_columns)):
        uri = resolve(name, folder)
        for caption in [c.strip() for c in cells if c.strip()] or [""]:
            ids.append(clip_id_for(uri))
            uris.append(uri)
            captions.append(caption)
    return manifest_table(ids, uris, captions, [None] * len(ids))


def _audio_files(folder: str, storage_options: dict | None) -> dict[str, str]:
    """Stem -> URI from one listing per folder: an existence check per clip is too slow on S3."""
    found: dict[str, str] = {}
    for sub in (folder, resolve("audio", folder)):
        fs, root = fsspec.core.url_to_fs(sub, **(storage_options or {}))
        try:
            names = [posixpath.basename(n.rstrip("/")) for n in fs.ls(root, detail=False)]
        except FileNotFoundError:
            continue
        audio = []
        for name in names:
            stem, ext = posixpath.splitext(name)
            if ext.lower() in _AUDIO_EXTENSIONS:
                audio.append((_AUDIO_EXTENSIONS.index(ext.lower()), stem, name))
        for _, stem, name in sorted(audio):
            found.setdefault(stem, resolve(name, sub))
    return found


def read_audiocaps(path: str, storage_options: dict | None = None) -> pa.Table:
    """AudioCaps CSV: one row per caption; a clip is a YouTube segment, and downloads miss some."""
    raw = _read(path, storage_options, "AudioCaps")
    folder = folder_of(path)
    files = _audio_files(folder, storage_options)
    keys = list(zip(require_cells(raw, "youtube_id", path), require_cells(raw, "start_time", path)))
    stems: dict[tuple[str, str], list[str]] = {}
    for (yid, start), acid in zip(keys, raw["audiocap_id"].to_pylist()):
        stems.setdefault((yid, start), [f"{yid}_{start}", f"Y{yid}", yid]).append(acid.strip())
    uris = {key: next((files[s] for s in c if s in files), None) for key, c in stems.items()}
    missing = sum(uri is None for uri in uris.values())
    if missing == len(uris):
        raise FileNotFoundError(
            f"{path}: no AudioCaps audio found in {folder} or its audio/ folder (looked for "
            "{youtube_id}_{start_time}, Y{youtube_id}, {youtube_id} or {audiocap_id} with "
            f"extension {'/'.join(_AUDIO_EXTENSIONS)})"
        )
    rows = [i for i, key in enumerate(keys) if uris[key]]
    if missing:
        warnings.warn(
            f"{path}: no audio for {missing} of {len(uris)} clips; skipped their "
            f"{len(keys) - len(rows)} caption rows",
            stacklevel=2,
        )
    audio = [uris[keys[i]] for i in rows]
    captions = raw["caption"].to_pylist()
    return manifest_table(
        [clip_id_for(uri) for uri in audio],
        audio,
        [captions[i].strip() for i in rows],
        [None] * len(rows),
    )


def _esc50_uris(raw: pa.Table, path: str) -> list[str]:
    audio_folder = resolve("../audio", folder_of(path))
    return [resolve(name, audio_folder) for name in require_cells(raw, "filename", path)]


def _esc50_descriptions(category: str, path: str) -> list[str]:
    if category not in ESC50_CAPTIONS:
        raise ValueError(f"{path}: unknown ESC-50 category {category!r}")
    return ESC50_CAPTIONS[category]


def read_esc50(
    path: str, storage_options: dict | None = None, captions: str = "first"
) -> pa.Table:
    """ESC-50 has classes, not captions: a class's descriptions become queries that all its clips
    answer. "first" gives each clip its class's canonical query (evaluation); "all" gives one row
    per description (training)."""
    if captions not in ("first", "all"):
        raise ValueError(f"captions must be 'first' or 'all', not {captions!r}")
    raw = _read(path, storage_options, "ESC-50")
    ids, uris, texts, labels = [], [], [], []
    categories = [c.strip() for c in raw["category"].to_pylist()]
    for uri, category in zip(_esc50_uris(raw, path), categories):
        descriptions = _esc50_descriptions(category, path)
        for text in descriptions[:1] if captions == "first" else descriptions:
            ids.append(clip_id_for(uri))
            uris.append(uri)
            texts.append(text)
            labels.append(category)
    return manifest_table(ids, uris, texts, labels)


def esc50_metadata(path: str, storage_options: dict | None = None) -> pa.Table:
    """Folds and source recordings by clip id: splits must keep a recording's takes together."""
    raw = _read(path, storage_options, "ESC-50")
    return pa.table(
        {
            "clip_id": [clip_id_for(uri) for uri in _esc50_uris(raw, path)],
            "fold": pc.cast(raw["fold"], pa.int64()),
            "src_file": raw["src_file"],
            "take": raw["take"],
            "category": raw["category"],
        }
    )


_READERS = {"Clotho": read_clotho, "AudioCaps": read_audiocaps, "ESC-50": read_esc50}


def reader_for(columns: list[str]):
    """The public format whose columns the file has, or None for a generic manifest."""
    present = set(columns)
    for name, required in COLUMNS.items():
        if set(required) <= present:
            return _READERS[name]
    return None


def describe() -> str:
    return ", ".join(f"{name} ({', '.join(cols)})" for name, cols in COLUMNS.items())
