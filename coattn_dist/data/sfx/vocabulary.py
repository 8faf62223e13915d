"""The caption vocabulary: concepts (label → caption templates) and materials.

Each concept has 3–5 captions written as people caption sounds; the first is the canonical
(evaluation) caption, the rest are training paraphrases. A template may name the material of a
surface or an impact: ``{on}`` ("on gravel"), ``{noun}`` ("wood"), ``{adj}`` ("wooden"), so
one concept covers footsteps on every surface and the label becomes ``footsteps_walk_gravel``.

The tables live in ``vocabulary.yaml`` next to this module (shipped as package data).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any, NamedTuple

import yaml


class Material(NamedTuple):
    """How captions name a material."""

    on: str  # on the surface: "on gravel", "in the sand"
    noun: str  # the material as a noun: "wood"
    adj: str  # an adjective before a noun: "wooden"


def data_file(name: str) -> Any:
    """A YAML file shipped with this package, parsed (by libyaml where PyYAML has it: 10x faster)."""
    text = files(__package__).joinpath(name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


_TABLES = data_file("vocabulary.yaml")
# canonical material → how captions name it
MATERIALS: dict[str, Material] = {k: Material(*v) for k, v in _TABLES["materials"].items()}
# a word in a path → the canonical material it names
MATERIAL_ALIASES: dict[str, str] = dict(_TABLES["aliases"])
# concept label → caption templates, the canonical one first
CONCEPTS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _TABLES["concepts"].items()}
