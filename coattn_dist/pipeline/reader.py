"""Indexing, stage 1: which clips to index, and their bytes.

A source is a folder or prefix (a local path or any fsspec URI: ``s3://``, ``gs://``, ...) listed
for audio files, or a manifest (anything `read_manifest` accepts). Clip ids are
`clip_id_for(uri)` unless the manifest gives them, so the same file always maps to the same row.
Clips the collection already holds are dropped here, before a byte is read: that is what makes a
rerun after a crash cheap and a run over a grown bucket proportional to the new files.
"""

from __future__ import annotations

import posixpath
import time
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from coattn_dist.audio import (
    DEFAULT_LIMITS,
    AudioError,
    DecodeLimits,
    TooLargeError,
    UnreadableError,
)
from coattn_dist.audio.decode import check_size, read_capped
from coattn_dist.audio.paths import listed_uri
from coattn_dist.data import AUDIO_EXTENSIONS, clip_id_for, clips, read_manifest
from coattn_dist.store.roots import is_under
from coattn_dist.store.rows import LABEL_MAX_BYTES, URI_MAX_BYTES, check_clip_id

if TYPE_CHECKING:  # read tasks never touch Milvus: no pymilvus import in them
    from coattn_dist.store import ClipStore

# size and version (an ETag or an mtime) say whether the file changed since it was indexed;
# -1 and "" where the source does not tell (a manifest), and such a clip is never re-embedded
LISTING_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("uri", pa.string()),
        ("label", pa.string()),
        ("size", pa.int64()),
        ("version", pa.string()),
    ]
)
# Errors that belong to one file; anything else (connection refused, timeouts, throttling, a
# missing fsspec backend) is retried and, if it persists, stops the job: an object-store outage
# must not be recorded as every remaining file being bad.
FILE_ERRORS = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ValueError,
)


class SourceUnavailable(Exception):
    """The object store kept failing after retries; the job stops instead of failing every file."""


def list_folder(source: str, storage_options: dict | None = None) -> pa.Table:
    """Every audio file under `source`, recursively, in a stable (sorted) order, with the size
    and version the listing gives for free."""
    fs, root = fsspec.core.url_to_fs(source, **(storage_options or {}))
    # fsspec shares one filesystem object per process: without this, a file added since an
    # earlier listing in this process is listed but then not found by the reads (stale dircache)
    fs.invalidate_cache(root)
    found = fs.find(root, detail=True)
    paths = sorted(p for p in found if posixpath.splitext(p)[1].lower() in AUDIO_EXTENSIONS)
    if not paths:
        raise ValueError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {source}")
    uris = [fs.unstrip_protocol(p) if "://" in source else listed_uri(p) for p in paths]
    return pa.table(
        [
            [clip_id_for(u) for u in uris],
            uris,
            [""] * len(uris),
            [int(found[p].get("size") or 0) for p in paths],
            [file_version(found[p]) for p in paths],
        ],
        schema=LISTING_SCHEMA,
    )


def file_version(info: dict) -> str:
    """What changes when a file's content does: the object's ETag, else its modification time."""
    for key in ("ETag", "etag", "mtime", "LastModified", "last_modified", "updated"):
        if info.get(key) is not None:
            return str(info[key]).strip('"')
    return ""


def list_manifest(path: str, storage_options: dict | None = None) -> pa.Table:
    """One row per distinct clip of a manifest, with its own clip ids and labels."""
    table = clips(read_manifest(path, storage_options))
    n = table.num_rows
    return pa.table(
        [
            table["clip_id"],
            table["audio"],
            pc.fill_null(table["label"], ""),
            pa.array([-1] * n, pa.int64()),
            pa.array([""] * n, pa.string()),
        ],
        schema=LISTING_SCHEMA,
    )


def row_problem(clip_id: str, uri: str, label: str) -> tuple[str, str] | None:
    """(kind, message) when a listing row cannot become a collection row, else ``None``."""
    try:
        encoded = uri.encode()
    except UnicodeEncodeError:  # a file name that is not UTF-8, kept by the OS as surrogates
        return "bad_name", f"{uri!r}: the file name is not valid UTF-8"
    if len(encoded) > URI_MAX_BYTES:
        return "uri_too_long", f"{uri[:200]}...: over {URI_MAX_BYTES} bytes"
    try:
        check_clip_id(clip_id)
    except ValueError as error:
        return "bad_clip_id", f"{uri}: {error}"
    if len(label.encode("utf-8", "replace")) > LABEL_MAX_BYTES:
        return "label_too_long", f"{uri}: label over {LABEL_MAX_BYTES} bytes"
    return None


def screen(listing: pa.Table) -> tuple[pa.Table, list[dict]]:
    """(the rows that can be indexed, failure rows for the rest): a malformed row of a manifest
    or a listing is one failure, never the end of the job."""
    keep, failures = [], []
    for clip_id, uri, label in zip(*(listing[c].to_pylist() for c in ("clip_id", "uri", "label"))):
        problem = row_problem(clip_id, uri, label)
        keep.append(problem is None)
        if problem:
            kind, message = problem
            failures.append(
                {
                    "uri": uri.encode("utf-8", "backslashreplace").decode(),
                    "clip_id": clip_id.encode("utf-8", "backslashreplace").decode(),
                    "kind": kind,
                    "message": message,
                }
            )
    return listing.filter(pa.array(keep, pa.bool_())), failures


def drop_indexed(listing: pa.Table, store: ClipStore) -> tuple[pa.Table, int, int]:
    """(clips to index, how many the collection holds unchanged, how many of those to index
    changed since: another size or version). Where either side has no version (a manifest's
    listing, a row indexed from one) the clip counts as unchanged: a rerun from another kind of
    source must not re-embed a whole collection."""
    ids = listing["clip_id"].to_pylist()
    stored = store.versions(ids)
    keep, changed = [], 0
    for cid, size, version in zip(ids, listing["size"].to_pylist(), listing["version"].to_pylist()):
        known = cid in stored and bool(version) and bool(stored[cid][1])
        stale = known and stored[cid] != (size, version)
        keep.append(cid not in stored or stale)
        changed += stale
    return listing.filter(pa.array(keep, pa.bool_())), len(stored) - changed, changed


def prune_gone(store: ClipStore, listing: pa.Table, roots: list[str]) -> int:
    """Delete the rows under `roots` whose URI the listing (the source as it is now) lacks; rows
    from other roots are another source's business. Returns how many went."""
    present = set(listing["uri"].to_pylist())
    gone = [
        r["clip_id"]
        for r in store.scan(["clip_id", "uri"])
        if r["uri"] not in present and any(is_under(r["uri"], root) for root in roots)
    ]
    store.delete(gone)
    store.flush()
    return len(gone)


def read_bytes(
    batch: dict[str, np.ndarray],
    storage_options: dict | None = None,
    attempts: int = 4,
    backoff_s: float = 0.5,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> dict[str, np.ndarray]:
    """Ray Data map: adds ``data`` (the file's bytes) and the failure columns; a file that cannot
    be read becomes a failure row (``unreadable``, or ``too_large`` past ``limits.max_bytes``)."""
    data, kind, message = [], [], []
    for uri in batch["uri"]:
        try:
            data.append(_read(str(uri), storage_options or {}, attempts, backoff_s, limits))
            kind.append("")
            message.append("")
        except AudioError as error:
            data.append(b"")
            kind.append(error.kind)
            message.append(str(error))
    return {
        **batch,
        "data": np.array(data, dtype=object),
        "kind": np.array(kind, dtype=object),
        "message": np.array(message, dtype=object),
    }


def _read(
    uri: str, storage_options: dict, attempts: int, backoff_s: float, limits: DecodeLimits
) -> bytes:
    error: Exception | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            data = read_capped(uri, storage_options, limits)
        except MemoryError as exc:  # this file, not the store: retrying would fail the same way
            raise TooLargeError(uri, "ran out of memory reading it") from exc
        except FILE_ERRORS as exc:
            raise UnreadableError(uri, f"cannot read: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # each backend raises its own: OSError, botocore, aiohttp
            error = exc
            continue
        check_size(data, uri, limits)  # too_large: a property of the file, never retried
        return data
    raise SourceUnavailable(
        f"cannot read {uri} after {attempts} attempts: {type(error).__name__}: {error}"
    ) from error
