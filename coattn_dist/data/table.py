"""The manifest table: its schema, and the helpers every reader and job shares.

One row per (clip, caption) with a fixed schema, so indexing, training and evaluation never care
whether the rows came from a generic manifest or from a public dataset's own metadata file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import posixpath

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

# group: the recording a clip was cut from (its takes and variants share it, and a split keeps a
# group on one side); source and licence: where the audio came from and on what terms.
SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("audio", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("group", pa.string()),
        pa.field("source", pa.string()),
        pa.field("licence", pa.string()),
    ]
)
GENERIC_COLUMNS = ("audio", "caption", "clip_id", "label", "group", "source", "licence")
# In order of preference when one stem exists with several extensions.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
_CLIP_COLUMNS = ["clip_id", "audio", "label", "group", "source", "licence"]
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
    clip_id: list[str],
    audio: list[str],
    caption: list[str],
    label: list[str | None],
    *,
    group: list[str | None] | None = None,
    source: list[str | None] | None = None,
    licence: list[str | None] | None = None,
) -> pa.Table:
    """The optional columns default to null: most datasets know nothing of them."""
    nulls = [None] * len(clip_id)
    columns = [clip_id, audio, caption, label, group or nulls, source or nulls, licence or nulls]
    return pa.table(columns, schema=SCHEMA)


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
    """One row per clip: what the index job embeds, independent of how many captions it has.
    The optional columns (group, source, licence) come along where the table has them."""
    first: dict[str, int] = {}
    for i, cid in enumerate(table["clip_id"].to_pylist()):
        first.setdefault(cid, i)
    columns = [c for c in _CLIP_COLUMNS if c in table.column_names]
    return table.take(pa.array(list(first.values()), pa.int64())).select(columns)


def groups_of(table: pa.Table) -> dict[str, str]:
    """clip_id -> group for splitting; a clip without one is a recording of its own."""
    rows = clips(table)
    ids = rows["clip_id"].to_pylist()
    return {cid: group or cid for cid, group in zip(ids, rows["group"].to_pylist())}


def canonical(table: pa.Table) -> pa.Table:
    """Each clip's first caption row only: the evaluation query, where the rest are training
    paraphrases of it (several near-identical queries would count one concept several times)."""
    seen: set[str] = set()
    keep = [not (cid in seen or seen.add(cid)) for cid in table["clip_id"].to_pylist()]
    return table.filter(pa.array(keep, pa.bool_()))


def queries(table: pa.Table) -> tuple[list[str], list[list[str]]]:
    """Evaluation queries: a caption shared by several clips makes all of them relevant."""
    relevant: dict[str, dict[str, None]] = {}
    for caption, cid in zip(table["caption"].to_pylist(), table["clip_id"].to_pylist()):
        if caption:
            relevant.setdefault(caption, {})[cid] = None
    return list(relevant), [list(ids) for ids in relevant.values()]
