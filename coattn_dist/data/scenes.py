"""*Scenes*: a harder dataset built from real ESC-50 clips, where word order matters.

Two or three clips play one after another ("a dog barks, then rain falls") or overlap ("a dog
barks while rain falls"). A model that pools over time cannot tell "A, then B" from "B, then A";
every class pair is generated in both orders (from different clips), so those are exactly the
hard negatives a co-attention reranker must learn to separate.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import soundfile as sf

from coattn_dist.audio import load
from coattn_dist.data.esc50_captions import ESC50_CAPTIONS
from coattn_dist.data.table import clip_id_for, manifest_table

SAMPLE_RATE = 44100
# Training captions vary the wording; test captions use one fixed form per kind.
SEQUENCE_JOINS = [", then ", ", and then ", ", after that ", " and then "]
OVERLAP_JOINS = [" while ", " as ", " and at the same time "]
# Longest first, so ", and then " is never read as ", " + " and then ".
_SEQUENCE_JOIN = re.compile(
    "|".join(re.escape(j) for j in sorted(SEQUENCE_JOINS, key=len, reverse=True))
)
_ANY_JOIN = re.compile(
    "|".join(re.escape(j) for j in sorted(SEQUENCE_JOINS + OVERLAP_JOINS, key=len, reverse=True))
)


@dataclass
class Scene:
    scene_id: str
    kind: str  # "sequence" or "overlap"
    clips: list[str]  # source audio URIs, in playing order
    labels: list[str]
    caption: str
    swapped: str  # the same caption with the events in the other order ("" for overlaps)


def swap_events(caption: str) -> str:
    """The caption with its sequenced events in reverse order ("A, then B" -> "B, then A"), the
    joins kept in place; "" when it names no sequence. The order test's twin and the reranker's
    order negative during training both come from here."""
    phrases = _SEQUENCE_JOIN.split(caption)
    if len(phrases) < 2:
        return ""
    joins = _SEQUENCE_JOIN.findall(caption)
    return phrases[-1] + "".join(j + p for j, p in zip(joins, phrases[-2::-1]))


# After an overlap join, a clause about the first one's source ("a man screams as he dies", "a
# door squeaks as it opens") adds no event.
_SAME_SOURCE = re.compile(r"(it|its|he|she|they)\b")


def several_events(caption: str) -> bool:
    """Whether the caption names several events in sequence or at once ("A, then B", "A while
    B"): the queries the reranker's multi-event weight serves (`model.RetrievalModel.fuse`)."""
    if _SEQUENCE_JOIN.search(caption):
        return True
    return any(not _SAME_SOURCE.match(clause.lstrip()) for clause in _ANY_JOIN.split(caption)[1:])


def caption_for(
    labels: list[str],
    kind: str,
    rng: random.Random | None,
    captions: dict[str, list[str]] = ESC50_CAPTIONS,
) -> tuple[str, str]:
    """(caption, order-swapped caption) from each label's `captions` (canonical first). rng=None
    gives the canonical test wording."""
    phrase = (lambda c: captions[c][0]) if rng is None else (lambda c: rng.choice(captions[c]))
    phrases = [phrase(c) for c in labels]
    joins = OVERLAP_JOINS if kind == "overlap" else SEQUENCE_JOINS
    join = joins[0] if rng is None else rng.choice(joins)
    caption = join.join(phrases)
    return caption, "" if kind == "overlap" else swap_events(caption)


def plan_scenes(
    clips_by_label: dict[str, list[str]],
    n: int,
    seed: int,
    canonical: bool,
    prefix: str,
    captions: dict[str, list[str]] = ESC50_CAPTIONS,
) -> list[Scene]:
    """n scenes: 70 % two-clip sequences (each class pair in both orders), 15 % three-clip
    sequences, 15 % two-clip overlaps. Clips are drawn from ``clips_by_label`` only; each label's
    `captions` word the events (ESC-50's by default)."""
    rng = random.Random(seed)
    labels = sorted(clips_by_label)
    scenes: list[Scene] = []

    def add(kind: str, chosen: list[str]):
        clip_uris = [rng.choice(clips_by_label[c]) for c in chosen]
        caption, swapped = caption_for(chosen, kind, None if canonical else rng, captions)
        scenes.append(
            Scene(f"{prefix}-{len(scenes):05d}", kind, clip_uris, chosen, caption, swapped)
        )

    n_pairs = round(0.35 * n)
    for _ in range(n_pairs):
        a, b = rng.sample(labels, 2)
        add("sequence", [a, b])
        add("sequence", [b, a])
    while len(scenes) < n:
        if len(scenes) % 2 == 0:
            add("sequence", rng.sample(labels, 3))
        else:
            add("overlap", rng.sample(labels, 2))
    return scenes[:n]


def render(scene: Scene) -> np.ndarray:
    """Sequences are concatenated with 50 ms fades; overlaps start the second clip halfway
    through the first. Peaks above full scale are normalised, never clipped."""
    waves = [load(uri, SAMPLE_RATE) for uri in scene.clips]
    fade = int(0.05 * SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    for w in waves:
        if len(w) > 2 * fade:
            w[:fade] *= ramp
            w[-fade:] *= ramp[::-1]
    if scene.kind == "sequence":
        out = np.concatenate(waves)
    else:
        a, b = waves
        start = len(a) // 2
        out = np.zeros(max(len(a), start + len(b)), dtype=np.float32)
        out[: len(a)] += a
        out[start : start + len(b)] += b
    peak = float(np.abs(out).max())
    return out / peak * 0.9 if peak > 1.0 else out


def write_scenes(scenes: list[Scene], folder: Path, progress=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, scene in enumerate(scenes):
        path = folder / f"{scene.scene_id}.flac"
        if not path.exists():
            sf.write(path, render(scene), SAMPLE_RATE)
        if progress:
            progress(i + 1, len(scenes))


def scenes_manifest(scenes: list[Scene], folder: Path) -> pa.Table:
    """The rendered scenes in `folder` as a manifest: each scene a clip, its caption the query,
    its events' labels joined as the label."""
    uris = [str(folder / f"{s.scene_id}.flac") for s in scenes]
    return manifest_table(
        [clip_id_for(u) for u in uris],
        uris,
        [s.caption for s in scenes],
        [" | ".join(s.labels) for s in scenes],
    )
