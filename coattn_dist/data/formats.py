"""Readers for the metadata files public datasets ship, so users point at what they downloaded.

Each returns the manifest schema (`table.SCHEMA`) with default clip ids, so a clip gets the same
id whether it is read from here or from a generic manifest naming its URI.
"""

from __future__ import annotations

import os
import posixpath
import re
import warnings

import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from coattn_dist.data.esc50_captions import ESC50_CAPTIONS
from coattn_dist.data.table import (
    AUDIO_EXTENSIONS,
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
            if ext.lower() in AUDIO_EXTENSIONS:
                audio.append((AUDIO_EXTENSIONS.index(ext.lower()), stem, name))
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
            f"extension {'/'.join(AUDIO_EXTENSIONS)})"
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
        group=[keys[i][0] for i in rows],  # segments of one video are one recording
    )


def _esc50_uris(raw: pa.Table, path: str) -> list[str]:
    audio_folder = resolve("../audio", folder_of(path))
    return [resolve(name, audio_folder) for name in require_cells(raw, "filename", path)]


def _esc50_descriptions(category: str, path: str) -> list[str]:
    if category not in ESC50_CAPTIONS:
        raise ValueError(f"{path}: unknown ESC-50 category {category!r}")
    return ESC50_CAPTIONS[category]


def read_esc50(path: str, storage_options: dict | None = None, captions: str = "first") -> pa.Table:
    """ESC-50 has classes, not captions: a class's descriptions become queries that all its clips
    answer. "first" gives each clip its class's canonical query (evaluation); "all" gives one row
    per description (training)."""
    if captions not in ("first", "all"):
        raise ValueError(f"captions must be 'first' or 'all', not {captions!r}")
    raw = _read(path, storage_options, "ESC-50")
    ids, uris, texts, labels, groups = [], [], [], [], []
    categories = [c.strip() for c in raw["category"].to_pylist()]
    sources = [s.strip() for s in raw["src_file"].to_pylist()]
    for uri, category, source in zip(_esc50_uris(raw, path), categories, sources):
        descriptions = _esc50_descriptions(category, path)
        for text in descriptions[:1] if captions == "first" else descriptions:
            ids.append(clip_id_for(uri))
            uris.append(uri)
            texts.append(text)
            labels.append(category)
            groups.append(source)  # the Freesound recording its takes were cut from
    return manifest_table(ids, uris, texts, labels, group=groups)


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
