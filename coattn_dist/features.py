"""Frozen-encoder features for a manifest: segment sequences per clip, token sequences per caption.

Encoders are frozen, so these are computed once and reused by training, evaluation and the index.
A clip that cannot be decoded is reported with its typed error, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from safetensors.torch import load_file, save_file

from coattn_dist.audio import AudioError, load
from coattn_dist.audio.augment import RECORDING, Conditions, augment, bed_draw, is_bed, seed_of
from coattn_dist.data import clips, queries
from coattn_dist.data.scenes import swap_events
from coattn_dist.data.table import canonical

# Encoder outputs of every clip and caption a job has seen: train and evaluate share it.
DEFAULT_CACHE = Path.home() / ".cache" / "coattn" / "features"


@dataclass
class Failure:
    clip_id: str
    uri: str
    kind: str
    message: str


@dataclass
class Features:
    """A retrieval set in feature space: ``relevant[q, c]`` says clip c answers caption q."""

    clip_ids: list[str]
    uris: list[str]
    segments: list[torch.Tensor]  # per clip: (n_segments, audio_dim)
    texts: list[str]
    tokens: list[torch.Tensor]  # per caption: (n_tokens, text_dim)
    relevant: torch.Tensor  # (len(texts), len(clip_ids)) bool
    failures: list[Failure] = field(default_factory=list)
    # caption index -> tokens of its order-swapped twin, for captions that name events in sequence
    swapped: dict[int, torch.Tensor] = field(default_factory=dict)
    # per clip: its segment features under other recording conditions (`with_variants`) ...
    variants: list[list[torch.Tensor]] = field(default_factory=list)
    # ... the bed clip behind each version (None: no bed) ...
    variant_beds: list[list[str | None]] = field(default_factory=list)
    # ... and the tokens of a caption naming that bed too, None where there is none (`bed_captions`)
    variant_tokens: list[list[torch.Tensor | None]] = field(default_factory=list)


class FeatureCache:
    """Encoder outputs on disk, one folder per encoder (``cache_key``), float16 safetensors shards.

    Appending a shard per run (never rewriting) keeps concurrent runs and interrupted runs safe:
    a shard is renamed into place only once it is complete.
    """

    def __init__(self, root: str | Path, key: str):
        self.folder = Path(root) / key

    def load(self) -> dict[str, torch.Tensor]:
        out = {}
        for shard in sorted(self.folder.glob("*.safetensors")):
            out.update((k, v.float()) for k, v in load_file(str(shard)).items())
        return out

    def add(self, items: dict[str, torch.Tensor]) -> None:
        if not items:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = self.folder / f".{name}.tmp"
        save_file({k: v.half().contiguous() for k, v in items.items()}, str(tmp))
        os.replace(tmp, self.folder / f"{name}.safetensors")


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def encode_clips(
    encoder,
    table: pa.Table,
    batch_size: int = 16,
    storage_options: dict | None = None,
    progress=None,
) -> tuple[dict[str, torch.Tensor], list[Failure]]:
    """clip_id -> segment features for every distinct clip of a manifest table."""
    rows = clips(table).to_pylist()
    out, failures = {}, []
    for start in range(0, len(rows), batch_size):
        batch, waves = [], []
        for row in rows[start : start + batch_size]:
            try:
                waves.append(load(row["audio"], encoder.sample_rate, storage_options))
                batch.append(row["clip_id"])
            except AudioError as err:
                failures.append(Failure(row["clip_id"], row["audio"], err.kind, str(err)))
        if waves:
            out.update(zip(batch, encoder(waves)))
        if progress:
            progress(min(start + batch_size, len(rows)), len(rows))
    return out, failures


def encode_texts(encoder, texts: list[str], batch_size: int = 128) -> list[torch.Tensor]:
    """One (n_tokens, dim) tensor per text, padding stripped."""
    out = []
    for start in range(0, len(texts), batch_size):
        tokens, mask = encoder(texts[start : start + batch_size])
        out.extend(t[m] for t, m in zip(tokens, mask))
    return out


def cached_clips(
    encoder,
    table: pa.Table,
    cache: str | Path | None,
    storage_options: dict | None,
    progress=None,
    encode_audio=None,
) -> tuple[dict[str, torch.Tensor], list[Failure]]:
    """Like encode_clips, but only clips missing from the cache are decoded and embedded, by
    `encode_audio(table)` when given (the Ray Data path of the jobs), else in this process."""
    encode = encode_audio or (
        lambda t: encode_clips(encoder, t, storage_options=storage_options, progress=progress)
    )
    if cache is None:
        return encode(table)
    store = FeatureCache(cache, encoder.cache_key)
    known = store.load()
    todo = table.filter(pc.invert(pc.is_in(table["clip_id"], pa.array(list(known), pa.string()))))
    new, failures = encode(todo) if todo.num_rows else ({}, [])
    store.add(new)
    return {**known, **new}, failures


def cached_texts(encoder, texts: list[str], cache: str | Path | None) -> list[torch.Tensor]:
    if cache is None:
        return encode_texts(encoder, texts)
    store = FeatureCache(cache, encoder.cache_key)
    known = store.load()
    todo = sorted({t for t in texts if text_key(t) not in known})
    new = dict(zip(map(text_key, todo), encode_texts(encoder, todo)))
    store.add(new)
    known.update(new)
    return [known[text_key(t)] for t in texts]


def build_features(
    audio_encoder,
    text_encoder,
    table: pa.Table,
    storage_options: dict | None = None,
    progress=None,
    cache: str | Path | None = None,
    encode_audio=None,
) -> Features:
    """Features of a manifest; with ``cache`` (a folder) each clip and text is encoded only once.
    ``encode_audio``: see `cached_clips`."""
    segments, failures = cached_clips(
        audio_encoder, table, cache, storage_options, progress, encode_audio
    )
    ids = [c for c in clips(table)["clip_id"].to_pylist() if c in segments]
    uris = dict(zip(clips(table)["clip_id"].to_pylist(), clips(table)["audio"].to_pylist()))
    texts, relevant_ids = queries(table)
    column = {c: j for j, c in enumerate(ids)}
    relevant = torch.zeros(len(texts), len(ids), dtype=torch.bool)
    for i, rel in enumerate(relevant_ids):
        relevant[i, [column[c] for c in rel if c in column]] = True
    keep = relevant.any(dim=1)  # captions whose every clip failed to decode cannot be queries
    texts = [t for t, k in zip(texts, keep.tolist()) if k]
    twins = {i: s for i, s in enumerate(map(swap_events, texts)) if s}
    tokens = cached_texts(text_encoder, texts + list(twins.values()), cache)  # one cache read
    return Features(
        ids,
        [uris[c] for c in ids],
        [segments[c] for c in ids],
        texts,
        tokens[: len(texts)],
        relevant[keep],
        failures,
        dict(zip(twins, tokens[len(texts) :])),
    )


class Augmented:
    """An audio encoder that hears every clip in its `version`-th drawn recording condition
    (`audio.augment`; `beds`: clip id -> a real recording a noise floor may be); its features
    cache apart from the clean ones."""

    def __init__(
        self,
        encoder,
        version: int,
        conditions: Conditions = RECORDING,
        beds: dict[str, np.ndarray] | None = None,
    ):
        self.encoder, self.version, self.conditions = encoder, version, conditions
        self.beds = [beds[c] for c in sorted(beds)] if beds else []
        self.sample_rate = encoder.sample_rate
        key = f"{encoder.cache_key}-aug{conditions.key}"
        if beds:  # other beds, other features ("bedset": the bed drawn on its own stream)
            key += f"-bedset{zlib.crc32(' '.join(sorted(beds)).encode()):08x}"
        self.cache_key = f"{key}-v{version}"

    def __call__(self, waves: list) -> list[torch.Tensor]:
        rate, version, conditions = self.sample_rate, self.version, self.conditions
        return self.encoder([augment(w, rate, version, conditions, self.beds) for w in waves])


@dataclass
class BedPlan:
    """The steady clips of a table that can stand behind another sound (`audio.augment.is_bed`),
    and for each clip the bed behind each of its versions (None: a synthetic floor or none)."""

    beds: dict[str, np.ndarray]
    behind: dict[str, list[str | None]]


def plan_beds(
    table: pa.Table,
    sample_rate: int,
    conditions: Conditions,
    versions: int,
    storage_options: dict | None = None,
) -> BedPlan:
    """One decode of every clip: whether it is a bed, and the seeds its versions draw from. A clip
    that does not decode is no bed and has no versions (encoding reports it)."""
    beds, seeds = {}, {}
    for row in clips(table).to_pylist():
        try:
            wave = load(row["audio"], sample_rate, storage_options)
        except AudioError:
            continue
        if is_bed(wave, sample_rate, conditions):
            beds[row["clip_id"]] = wave
        seeds[row["clip_id"]] = [seed_of(wave, v) for v in range(versions)]
    ids = sorted(beds)
    behind = {
        cid: [None if (b := bed_draw(s, conditions, len(ids))) is None else ids[b] for s in ss]
        for cid, ss in seeds.items()
    }
    return BedPlan(beds, behind)


def with_variants(
    data: Features,
    audio_encoder,
    table: pa.Table,
    versions: int,
    cache: str | Path | None = None,
    storage_options: dict | None = None,
    progress=None,
    conditions: Conditions = RECORDING,
) -> Features:
    """`data` (built from `table`) with `versions` augmented versions of every clip's features;
    with `conditions.p_bed`, the steady recordings of `table` are the beds, and
    `variant_beds` says which lies behind each version."""
    plan = None
    if conditions.p_bed:
        plan = plan_beds(table, audio_encoder.sample_rate, conditions, versions, storage_options)
    beds = plan.beds if plan else None
    heard = [
        cached_clips(
            Augmented(audio_encoder, v, conditions, beds), table, cache, storage_options, progress
        )[0]
        for v in range(versions)
    ]
    variants = [[h[c] for h in heard if c in h] for c in data.clip_ids]
    variant_beds = []
    if plan:
        variant_beds = [
            [plan.behind[c][v] for v, h in enumerate(heard) if c in h] for c in data.clip_ids
        ]
    return dataclasses.replace(data, variants=variants, variant_beds=variant_beds)


def bed_captions(
    data: Features, table: pa.Table, text_encoder, cache: str | Path | None = None
) -> Features:
    """`data` with, for every version heard over a bed, the tokens of a caption that names both
    sounds: the clip's canonical caption "while" the bed's ("a dog barks while rain falls
    steadily"), so that a bed is learned as a second sound rather than one to ignore. A bed of
    the clip's own concept adds nothing to say and keeps the clip's captions."""
    first = canonical(table).to_pylist()
    caption = {r["clip_id"]: r["caption"] for r in first}
    sound = {r["clip_id"]: r["label"] or r["caption"] for r in first}  # unlabelled: the caption
    texts = {
        (c, b): f"{caption[c]} while {caption[b]}"
        for c, behind in zip(data.clip_ids, data.variant_beds)
        for b in behind
        if b is not None and sound[b] != sound[c]
    }
    order = sorted(set(texts.values()))
    tokens = dict(zip(order, cached_texts(text_encoder, order, cache)))
    variant_tokens = [
        [tokens[texts[c, b]] if (c, b) in texts else None for b in behind]
        for c, behind in zip(data.clip_ids, data.variant_beds)
    ]
    return dataclasses.replace(data, variant_tokens=variant_tokens)
