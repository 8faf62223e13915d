"""Read a Debian package without dpkg, streaming: a .deb is an ``ar`` archive whose
``data.tar.{xz,gz,bz2,zst}`` member holds the installed files.

Members are yielded one at a time from the compressed stream, so a 1.4 GB package never lands
on disk; ``zst`` (which this Python's tarfile cannot read) goes through ``zstd -dc``, falling back
to ``dpkg-deb --fsys-tarfile``.
"""

from __future__ import annotations

import posixpath
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

AR_MAGIC = b"!<arch>\n"
_TAR_MODES = {".xz": "r|xz", ".gz": "r|gz", ".bz2": "r|bz2", "": "r|"}


class BoundedReader:
    """The next ``size`` bytes of a stream as a file object of their own."""

    def __init__(self, f: BinaryIO, size: int):
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self.left:
            n = self.left
        data = self.f.read(n) if n else b""
        self.left -= len(data)
        return data

    def skip(self) -> None:
        while self.left:
            if not self.read(1 << 20):
                break


def ar_members(f: BinaryIO) -> Iterator[tuple[str, BoundedReader]]:
    """(name, reader) for each member; a member not read to its end is skipped."""
    if f.read(8) != AR_MAGIC:
        raise ValueError("not an ar archive (a .deb starts with '!<arch>')")
    while True:
        header = f.read(60)
        if len(header) < 60:
            return
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        reader = BoundedReader(f, size)
        yield name, reader
        reader.skip()
        if size % 2:
            f.read(1)


@dataclass
class DebFile:
    """One file of the package: ``path`` without the leading './'; ``link`` names the file it is
    a hard or symbolic link to (same bytes, stored once), else ``None``."""

    path: str
    size: int
    link: str | None
    reader: BinaryIO | None

    def read(self) -> bytes:
        return self.reader.read() if self.reader else b""


def _zstd_tar(deb_path: str, reader: BoundedReader) -> subprocess.Popen:
    if shutil.which("zstd"):
        proc = subprocess.Popen(["zstd", "-dc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        import threading

        def feed():
            try:
                while chunk := reader.read(1 << 20):
                    proc.stdin.write(chunk)
            finally:
                proc.stdin.close()

        threading.Thread(target=feed, daemon=True).start()
        return proc
    if shutil.which("dpkg-deb"):
        return subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb_path], stdout=subprocess.PIPE)
    raise RuntimeError(f"{deb_path}: data.tar.zst needs the zstd or dpkg-deb program")


def deb_files(deb_path: str) -> Iterator[DebFile]:
    """Every regular file and link of the package, in archive order. Read a file's bytes
    before asking for the next one: the archive is one compressed stream."""
    with open(deb_path, "rb") as f:
        for name, reader in ar_members(f):
            if not name.startswith("data.tar"):
                continue
            ext = name[len("data.tar") :]
            proc = None
            if ext == ".zst":
                proc = _zstd_tar(deb_path, reader)
                tar = tarfile.open(fileobj=proc.stdout, mode="r|")
            elif ext in _TAR_MODES:
                tar = tarfile.open(fileobj=reader, mode=_TAR_MODES[ext])
            else:
                raise ValueError(f"{deb_path}: unknown data member {name!r}")
            try:
                for info in tar:
                    path = info.name.removeprefix("./")
                    if info.isfile():
                        yield DebFile(path, info.size, None, tar.extractfile(info))
                    elif info.islnk():
                        yield DebFile(path, 0, info.linkname.removeprefix("./"), None)
                    elif info.issym():  # relative to the link's folder, or absolute
                        target = posixpath.normpath(
                            posixpath.join(posixpath.dirname(path), info.linkname)
                        )
                        yield DebFile(path, 0, target.lstrip("/"), None)
            finally:
                tar.close()
                if proc:
                    proc.stdout.close()
                    proc.wait()
            return
    raise ValueError(f"{deb_path}: no data.tar member")
