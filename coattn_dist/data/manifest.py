"""`read_manifest`: the one table every job reads, whatever file the user starts from.

A public dataset's metadata file is recognised by its columns and read by its own reader
(`formats`); anything else is a generic manifest with the columns of `table.GENERIC_COLUMNS`.
"""

from __future__ import annotations

import warnings

import pyarrow as pa

from coattn_dist.data.formats import describe, reader_for
from coattn_dist.data.table import (
    GENERIC_COLUMNS,
    clip_id_for,
    folder_of,
    manifest_table,
    read_columns,
    read_table,
    require_cells,
    resolve,
)

_CAPTION_LOOKALIKES = {"captions", "text", "texts", "description", "sentence", "query"}


def _check_columns(columns: list[str], path: str) -> None:
    """Extra columns (a split, a duration) are ignored with a warning; a caption column under
    another name is an error, since it would silently leave the manifest without queries."""
    problems = []
    if "audio" not in columns:
        problems.append("missing column 'audio'")
    unknown = sorted(set(columns) - set(GENERIC_COLUMNS))
    if "caption" not in columns and _CAPTION_LOOKALIKES & {c.lower() for c in unknown}:
        problems.append(f"unknown column(s) {unknown}")
    elif unknown:
        warnings.warn(f"{path}: ignoring column(s) {unknown}", stacklevel=3)
    if problems:
        raise ValueError(
            f"{path}: not a manifest: {'; '.join(problems)}. A generic manifest has the columns "
            f"{list(GENERIC_COLUMNS)} ('audio' required); recognised public formats: {describe()}"
        )


def _optional(raw: pa.Table, column: str) -> list[str]:
    if column not in raw.column_names:
        return [""] * raw.num_rows
    return [v.strip() for v in raw[column].to_pylist()]


def _nullable(raw: pa.Table, column: str) -> list[str | None]:
    return [v or None for v in _optional(raw, column)]


def _check_ids(table: pa.Table, path: str) -> None:
    """Two files under one id would overwrite each other in the index."""
    seen: dict[str, str] = {}
    for cid, uri in zip(table["clip_id"].to_pylist(), table["audio"].to_pylist()):
        if seen.setdefault(cid, uri) != uri:
            raise ValueError(
                f"{path}: clip_id {cid!r} names two audio files: {seen[cid]!r}, {uri!r}"
            )


def _read_generic(raw: pa.Table, path: str) -> pa.Table:
    _check_columns(raw.column_names, path)
    base = folder_of(path)
    uris = [resolve(ref, base) for ref in require_cells(raw, "audio", path)]
    ids = [cid or clip_id_for(uri) for cid, uri in zip(_optional(raw, "clip_id"), uris)]
    table = manifest_table(
        ids,
        uris,
        _optional(raw, "caption"),
        _nullable(raw, "label"),
        group=_nullable(raw, "group"),
        source=_nullable(raw, "source"),
        licence=_nullable(raw, "licence"),
    )
    _check_ids(table, path)
    return table


def read_manifest(path: str, storage_options: dict | None = None) -> pa.Table:
    """Accept whatever the user has: a generic manifest or a public dataset's metadata file."""
    reader = reader_for(read_columns(path, storage_options))
    if reader is not None:
        return reader(path, storage_options)
    return _read_generic(read_table(path, storage_options), path)
