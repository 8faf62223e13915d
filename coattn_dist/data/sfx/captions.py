"""Natural captions from paths: ``ambient/water/river_raging_21.ogg`` → "a raging river rushes".

A path becomes words (``path_text``); per-game naming rules, then generic keyword rules (both in
``naming.yaml``), map the words to a concept of the vocabulary (``vocabulary.CONCEPTS``),
optionally with a material taken from the path (``footstep:{m}`` on ``fs_gravel3`` →
``footstep_gravel``). A clip whose path names nothing recognisable gets no caption: the builder
drops it as ``unnamed`` rather than inventing one. Package docs may add a hint (0ad's sound-group
XML names, Debian copyright comments): it is consulted only when the path itself names nothing.

``group_of`` names the recording a file is a take of: takes and variants (``_1``, ``_2``,
``03``, ``10a``/``10b``, ``3alt``) of one recording share it, so splits never separate them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from coattn_dist.data.sfx.vocabulary import CONCEPTS, MATERIAL_ALIASES, MATERIALS, data_file
from coattn_dist.data.table import AUDIO_EXTENSIONS

AUDIO_EXT = re.compile("(" + "|".join(map(re.escape, AUDIO_EXTENSIONS)) + ")$", re.I)
CONTAINER_EXT = re.compile(r"\.(ocg|ocd|ocf|ocs|zip|rcc)(?=/|$)", re.I)
TAKE_SUFFIX = re.compile(r"(?:[ _.-]*\d+[a-z]?|[ _.-]*\d*alt|[ _.-]+[a-z])$", re.I)


class Rule(NamedTuple):
    """A naming rule: ``pattern`` over a path's words → ``concept`` ("concept",
    "concept:material", "concept:{m}" with the material the pattern captured, or "" for "the
    path names nothing")."""

    pattern: re.Pattern[str]
    concept: str


def _rules(pairs: list[list[str]]) -> list[Rule]:
    return [Rule(re.compile(pattern), concept) for pattern, concept in pairs]


# the rules live in naming.yaml next to this module; first match wins, a game's own rules first
_NAMING = data_file("naming.yaml")
GAME_RULES: dict[str, list[Rule]] = {game: _rules(r) for game, r in _NAMING["games"].items()}
GENERIC_RULES: list[Rule] = _rules(_NAMING["generic"])


@dataclass(frozen=True)
class Naming:
    """A clip's concept: ``label`` and its captions (the first is canonical)."""

    label: str
    captions: tuple[str, ...]


def game_of(package: str) -> str:
    """``wesnoth-1.16-data`` → ``wesnoth``: the key of a package's naming rules."""
    return re.sub(r"(-\d[\d.]*)?(-data|-sounds?|-sfx)?$", "", package)


def path_text(path: str) -> str:
    """A path as lowercase words: camelCase, digits and separators split, extensions gone."""
    p = AUDIO_EXT.sub("", path)
    p = CONTAINER_EXT.sub("", p)
    p = re.sub(r"([a-z])([A-Z])", r"\1 \2", p)
    p = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", p)
    p = re.sub(r"([A-Za-z])(\d)|(\d)([A-Za-z])", lambda m: " ".join(g for g in m.groups() if g), p)
    return " ".join(w for w in re.split(r"[^a-z0-9]+", p.lower()) if w)


def group_of(package: str, path: str) -> str:
    """The recording a file is a take of: package, folder and stem without take numbers."""
    folder, _, name = path.rpartition("/")
    stem = AUDIO_EXT.sub("", name)
    base = stem
    while True:
        shorter = TAKE_SUFFIX.sub("", base)
        if shorter == base or not shorter:
            break
        base = shorter
    return f"{package}/{folder}/{base.lower()}" if folder else f"{package}/{base.lower()}"


def render(spec: str, match: re.Match | None = None) -> Naming:
    """``concept`` or ``concept:material`` (``{m}``: the material the pattern captured)."""
    key, _, material = spec.partition(":")
    if material == "{m}":
        found = match and (match.groupdict().get("m") or match.groupdict().get("m2"))
        material = MATERIAL_ALIASES[found.lower()] if found else "hard"
    templates = CONCEPTS[key]
    if not material:
        return Naming(key, tuple(templates))
    on, noun, adj = MATERIALS[material]
    captions = tuple(t.format(on=on, noun=noun, adj=adj) for t in templates)
    return Naming(f"{key}_{material}", captions)


def _first_match(rules: list[Rule], text: str) -> tuple[bool, Naming | None]:
    for pattern, spec in rules:
        m = pattern.search(text)
        if m:
            return True, (render(spec, m) if spec else None)
    return False, None


def name_clip(package: str, path: str, hint: str = "") -> Naming | None:
    """The concept a path names, or ``None`` (then the clip is dropped as ``unnamed``). A game's
    own rules come first; a rule whose concept is empty means "the path names nothing": the
    rules stop there, and the docs' hint, if any, is read instead."""
    rules = GAME_RULES.get(game_of(package), []) + GENERIC_RULES
    _, naming = _first_match(rules, path_text(path))
    if naming is None and hint:
        _, naming = _first_match(rules, path_text(hint))
    return naming
