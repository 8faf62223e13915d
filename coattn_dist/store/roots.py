"""Which audio a collection may hand out: the roots it was indexed from, kept with it.

The service streams a clip from the URI its row holds, with the service's own credentials, so a
row is not trusted to point anywhere: the index job records the folders and prefixes it read
from (``coattn.roots``, a collection property), and ``/audio`` serves a URI only when it lies
under one of them, on an allowed scheme, with an audio file extension. A row that says
``file:///etc/passwd``, ``http://169.254.169.254/``, ``simplecache::s3://...`` or
``/data/../etc/shadow`` is refused whatever else it says.
"""

from __future__ import annotations

import json
import os
import posixpath
import re

from coattn_dist.audio.paths import local_path

ROOTS_PROPERTY = "coattn.roots"
# Where collections live: local disk and the object stores fsspec knows. No http(s): a row must
# not turn the service into a proxy for the cloud's metadata endpoint or the intranet.
SCHEMES = ("file", "s3", "gs", "gcs", "az", "abfs", "abfss")
MEDIA_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".mp3": "audio/mpeg",
}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def location(uri: str) -> tuple[str, str] | None:
    """(scheme, absolute path) of a URI the service may open, else ``None``: chained protocols
    (``a::b``), other schemes, control characters and ``..`` segments are refused, not resolved."""
    if "::" in uri or not uri.isprintable():
        return None
    m = _SCHEME.match(uri)
    scheme = m.group(1).lower() if m else "file"
    if scheme not in SCHEMES:
        return None
    if scheme == "file":
        path = (local_path(uri) or uri[len("file://") :]) if m else uri
        if not path.startswith("/"):
            path = os.path.abspath(path)
    else:
        path = "/" + uri[m.end() :]
    if ".." in path.split("/"):
        return None
    return scheme, posixpath.normpath(path)


def collapse(roots: list[str]) -> list[str]:
    """The roots without any that lies under another, sorted."""
    kept: list[str] = []
    for root in sorted(set(roots), key=len):
        if not any(is_under(root, k) for k in kept):
            kept.append(root)
    return sorted(kept)


def roots_of(uris: list[str]) -> list[str]:
    """The folders holding `uris` (a manifest's clips), collapsed."""
    return collapse([_parent(u) for u in uris])


def _parent(uri: str) -> str:
    m = _SCHEME.match(uri)
    head, rest = (uri[: m.end()], uri[m.end() :]) if m else ("", uri)
    return head + posixpath.dirname(rest) if "/" in rest else uri


def is_under(uri: str, root: str) -> bool:
    here, top = location(uri), location(root)
    if here is None or top is None or here[0] != top[0]:
        return False
    return top[1] == "/" or here[1] == top[1] or here[1].startswith(top[1] + "/")


def may_serve(uri: str, roots: list[str]) -> bool:
    """Whether `uri` lies under one of `roots` (and, on local disk, still does once symbolic links
    are followed) with an audio file extension."""
    where = location(uri)
    if where is None or media_type(uri) is None or not any(is_under(uri, r) for r in roots):
        return False
    if where[0] != "file":
        return True
    local_roots = [top[1] for top in map(location, roots) if top and top[0] == "file"]
    real = os.path.realpath(where[1])
    return any(is_under(real, os.path.realpath(root)) for root in local_roots)


def media_type(uri: str) -> str | None:
    return MEDIA_TYPES.get(posixpath.splitext(uri.split("?")[0])[1].lower())


def decode_roots(properties: dict[str, str]) -> list[str]:
    try:
        roots = json.loads(properties.get(ROOTS_PROPERTY, "[]"))
    except ValueError:
        return []
    return [r for r in roots if isinstance(r, str)]


def record_roots(store, roots: list[str]) -> list[str]:
    """Add `roots` to those the collection (a `ClipStore`) already serves from; returns all."""
    merged = collapse(decode_roots(store.properties()) + roots)
    store.set_properties(**{ROOTS_PROPERTY: json.dumps(merged)})
    return merged
