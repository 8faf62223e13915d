"""File names that are not UTF-8, as URIs a collection can store and a reader can open.

POSIX names are bytes; Python hands an undecodable one over with surrogates, which neither
Milvus nor Parquet can store. Such a name is kept as a ``file://`` URL with its bytes
percent-encoded (RFC 8089), and ``open_uri`` opens it again. Every other URI passes through to
fsspec unchanged.
"""

from __future__ import annotations

import os
import urllib.parse

import fsspec


def listed_uri(path: str) -> str:
    """A local path from a listing as a storable URI: itself when it is valid UTF-8."""
    try:
        path.encode()
        return path
    except UnicodeEncodeError:
        return "file://" + urllib.parse.quote(os.fsencode(path))


def local_path(uri: str) -> str | None:
    """The OS path behind a percent-encoded ``file://`` URL of `listed_uri`, else ``None`` (also
    when the name as written exists: a name may really contain ``%xx``). Every reader of a URI
    (decoding, the service's ``/audio``, its confinement check) resolves it here, so all agree."""
    if not uri.startswith("file://") or "%" not in uri or os.path.exists(uri[len("file://") :]):
        return None
    return os.fsdecode(urllib.parse.unquote_to_bytes(uri[len("file://") :]))


def open_uri(uri: str, storage_options: dict | None = None):
    """``fsspec.open(uri, "rb")``, or the local file `local_path` names."""
    path = local_path(uri)
    if path is not None:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it, as it does fsspec's
    return fsspec.open(uri, "rb", **(storage_options or {}))
