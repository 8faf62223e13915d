"""A package's files as one stream of entries, nested archives opened on the way.

A .deb's data tar is read front to back (``deb.deb_files``); a zip inside it (0ad's
``public.zip``, 3.3 GB) is read from the same stream (``zipstream``), and OpenClonk's C4Group
files (``.ocg``, ``.ocd``, ``.ocf``; 120 MB in all) are read into memory and walked with their
nested groups (``c4group``), as are GCompris's Qt resource files (``.rcc``, ``qtrcc``). An
entry's ``path`` joins the archive path and the member path with '/', so it names the file
uniquely inside the package. Read an entry's bytes (``read()``)
before asking for the next one.
"""

from __future__ import annotations

import posixpath
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from coattn_dist.data.sfx.c4group import C4_MAGIC, walk_group_file
from coattn_dist.data.sfx.deb import deb_files
from coattn_dist.data.sfx.qtrcc import MAGIC as RCC_MAGIC
from coattn_dist.data.sfx.qtrcc import walk_rcc
from coattn_dist.data.sfx.zipstream import zip_entries

C4GROUP_EXTENSIONS = (".ocg", ".ocd", ".ocf", ".ocs", ".c4g", ".c4d", ".c4f", ".c4s")


@dataclass
class Entry:
    path: str
    size: int
    read: Callable[[], bytes]
    link: str | None = None  # a hard link: the path of the file with the same bytes


def package_name(deb_path: str) -> str:
    """``0ad-data_0.0.26-1_all.deb`` → ``0ad-data`` (Debian's name_version_arch.deb)."""
    return posixpath.basename(deb_path).split("_", 1)[0]


def data_path(path: str) -> str:
    """The part of a path that names the sound: without ``usr/share/games/<game>/``, a version
    folder, or the archive a member came from (``.../public.zip/audio/x.ogg`` → ``audio/x.ogg``)."""
    p = re.sub(r"^usr/share/games/[^/]+/", "", path)
    p = re.sub(r"^\d+(\.\d+)+/", "", p)
    return re.sub(r"^.*\.(zip|rcc)/", "", p)


def _in_memory_archive(path: str) -> tuple[bytes, Callable] | None:
    """(magic, walker) for an archive that is read into memory and walked, else ``None``."""
    lower = path.lower()
    if lower.endswith(C4GROUP_EXTENSIONS):
        return C4_MAGIC, lambda raw, where: walk_group_file(raw, where + "/")
    if lower.endswith(".rcc"):
        return RCC_MAGIC, walk_rcc
    return None


def package_entries(
    deb_path: str, on_error: Callable[[str, Exception], None] | None = None
) -> Iterator[Entry]:
    for f in deb_files(deb_path):
        if f.link is None and f.path.lower().endswith(".zip"):
            try:
                for e in zip_entries(f.reader):
                    yield Entry(f"{f.path}/{e.name}", e.size, e.read)
            except ValueError as exc:
                if on_error:
                    on_error(f.path, exc)
        elif f.link is None and (archive := _in_memory_archive(f.path)):
            magic, walk = archive
            raw = f.read()
            if not raw.startswith(magic):
                yield Entry(f.path, len(raw), lambda raw=raw: raw)
                continue
            try:
                for p, data in walk(raw, f.path):
                    yield Entry(p, len(data), lambda data=data: data)
            except (ValueError, zlib.error) as exc:
                if on_error:
                    on_error(f.path, exc)
        else:
            yield Entry(f.path, f.size, f.read, f.link)
