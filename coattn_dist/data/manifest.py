"""Manifests: the one table every job reads, whatever file the user starts from.

One row per (clip, caption) with a fixed schema, so indexing, training and evaluation never care
whether the rows came from a generic manifest or from a public dataset's own metadata file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import posixpath
import warnings

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("audio", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("label", pa.string()),
    ]
)
GENERIC_COLUMNS = ("audio", "caption", "clip_id", "label")
_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
}


def clip_id_for(uri: str) -> str:
    """Derived from the URI so that re-indexing a file upserts it instead of duplicating it."""
    return hashlib.sha1(uri.encode("utf-8")).hexdigest()[:16]


def file_format(path: str) -> str:
    """The extension decides the parser: guessing from content would misread edge cases."""
    ext = posixpath.splitext(path)[1].lower()
    if ext not in _FORMATS:
        raise ValueError(
            f"{path}: unsupported manifest extension {ext!r}; use one of {sorted(_FORMATS)}"
        )
    return _FORMATS[ext]


def folder_of(path: str) -> str:
    """Base for relative audio paths: absolute when local, same scheme and bucket for a URI."""
    if "://" in path:
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{posixpath.dirname(rest)}"
    return os.path.dirname(os.path.abspath(path))


def resolve(ref: str, base: str) -> str:
    """URIs and absolute paths stay as written; relative paths are relative to `base`."""
    if "://" in ref:
        return ref
    if os.path.isabs(ref):
        return os.path.normpath(ref)
    if "://" in base:
        scheme, rest = base.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join(rest, ref))}"
    return os.path.normpath(os.path.join(base, ref))


def _open(path: str, storage_options: dict | None, mode: str = "rb"):
    return fsspec.open(path, mode, **(storage_options or {}))


def _csv_header(line: bytes) -> list[str]:
    return next(csv.reader([line.decode("utf-8-sig").rstrip("\r\n")]), [])


def read_columns(path: str, storage_options: dict | None = None) -> list[str]:
    """Only the header: enough to tell which format a file is before parsing all of it."""
    kind = file_format(path)
    with _open(path, storage_options) as f:
        if kind == "parquet":
            return pq.read_schema(f).names
        line = f.readline()
    if kind == "csv":
        return _csv_header(line)
    return list(json.loads(line)) if line.strip() else []


def _parse_csv(data: bytes) -> pa.Table:
    # Typed as text up front: inference would turn an id like "0012" into the integer 12.
    types = {name: pa.string() for name in _csv_header(data.split(b"\n", 1)[0])}
    return pacsv.read_csv(
        pa.py_buffer(data),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
    )


def read_table(path: str, storage_options: dict | None = None) -> pa.Table:
    """Every column as text with '' for missing cells, so readers handle one representation."""
    kind = file_format(path)
    with _open(path, storage_options) as f:
        data = f.read()
    if kind == "csv":
        table = _parse_csv(data)
    elif kind == "parquet":
        table = pq.read_table(pa.BufferReader(data))
    else:
        table = pajson.read_json(pa.BufferReader(data))
    return pa.table(
        {name: pc.fill_null(pc.cast(table[name], pa.string()), "") for name in table.column_names}
    )


def require_cells(raw: pa.Table, column: str, path: str) -> list[str]:
    """A blank file reference would silently resolve to the folder itself."""
    values = [v.strip() for v in raw[column].to_pylist()]
    empty = [i + 1 for i, v in enumerate(values) if not v]
    if empty:
        more = " ..." if len(empty) > 10 else ""
        raise ValueError(
            f"{path}: empty {column!r} cell in data row(s) {empty[:10]}{more} "
            "(rows counted from 1, header excluded)"
        )
    return values


def manifest_table(
    clip_id: list[str], audio: list[str], caption: list[str], label: list[str | None]
) -> pa.Table:
    return pa.table([clip_id, audio, caption, label], schema=SCHEMA)


_CAPTION_LOOKALIKES = {"captions", "text", "texts", "description", "sentence", "query"}


def _check_columns(columns: list[str], path: str, formats_help: str) -> None:
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
            f"{list(GENERIC_COLUMNS)} ('audio' required); recognised public formats: {formats_help}"
        )


def _optional(raw: pa.Table, column: str) -> list[str]:
    if column not in raw.column_names:
        return [""] * raw.num_rows
    return [v.strip() for v in raw[column].to_pylist()]


def _check_ids(table: pa.Table, path: str) -> None:
    """Two files under one id would overwrite each other in the index."""
    seen: dict[str, str] = {}
    for cid, uri in zip(table["clip_id"].to_pylist(), table["audio"].to_pylist()):
        if seen.setdefault(cid, uri) != uri:
            raise ValueError(
                f"{path}: clip_id {cid!r} names two audio files: {seen[cid]!r}, {uri!r}"
            )


def _read_generic(raw: pa.Table, path: str, formats_help: str) -> pa.Table:
    _check_columns(raw.column_names, path, formats_help)
    base = folder_of(path)
    uris = [resolve(ref, base) for ref in require_cells(raw, "audio", path)]
    ids = [cid or clip_id_for(uri) for cid, uri in zip(_optional(raw, "clip_id"), uris)]
    labels = [label or None for label in _optional(raw, "label")]
    table = manifest_table(ids, uris, _optional(raw, "caption"), labels)
    _check_ids(table, path)
    return table


def read_manifest(path: str, storage_options: dict | None = None) -> pa.Table:
    """Accept whatever the user has: a generic manifest or a public dataset's metadata file."""
    from coattn_dist.data import formats  # formats builds on this module's helpers

    reader = formats.reader_for(read_columns(path, storage_options))
    if reader is not None:
        return reader(path, storage_options)
    return _read_generic(read_table(path, storage_options), path, formats.describe())


def write_manifest(table: pa.Table, path: str, storage_options: dict | None = None) -> None:
    """Only the schema's columns: anything else would make the file unreadable as a manifest."""
    kind = file_format(path)
    table = table.select(SCHEMA.names)
    with _open(path, storage_options, "wb") as f:
        if kind == "csv":
            pacsv.write_csv(table, f)
        elif kind == "parquet":
            pq.write_table(table, f)
        else:
            lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in table.to_pylist())
            f.write("".join(lines).encode("utf-8"))


def clips(table: pa.Table) -> pa.Table:
    """One row per clip: what the index job embeds, independent of how many captions it has."""
    first: dict[str, int] = {}
    for i, cid in enumerate(table["clip_id"].to_pylist()):
        first.setdefault(cid, i)
    return table.take(pa.array(list(first.values()), pa.int64())).select(
        ["clip_id", "audio", "label"]
    )


def queries(table: pa.Table) -> tuple[list[str], list[list[str]]]:
    """Evaluation queries: a caption shared by several clips makes all of them relevant."""
    relevant: dict[str, dict[str, None]] = {}
    for caption, cid in zip(table["caption"].to_pylist(), table["clip_id"].to_pylist()):
        if caption:
            relevant.setdefault(caption, {})[cid] = None
    return list(relevant), [list(ids) for ids in relevant.values()]
