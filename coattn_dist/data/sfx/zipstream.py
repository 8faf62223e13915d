"""Read a zip archive front to back from a stream, without seeking: 0ad's ``public.zip``
(3.3 GB) sits inside its .deb's compressed tar, so its central directory is unreachable until
the very end. Each entry's local header carries its name, method and sizes; the entries we
want are decompressed, the rest are read past.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

LOCAL = b"PK\x03\x04"
STORED, DEFLATED = 0, 8
_HEADER = struct.Struct("<4sHHHHHIIIHH")


@dataclass
class ZipEntry:
    name: str
    method: int
    compressed_size: int
    size: int
    _f: BinaryIO
    _consumed: bool = False

    def read(self) -> bytes:
        """The entry's bytes (raises ``zlib.error`` or ``ValueError`` on a broken entry)."""
        data = _read_exact(self._f, self.compressed_size)
        self._consumed = True
        if self.method == STORED:
            return data
        if self.method == DEFLATED:
            return zlib.decompress(data, -15)
        raise ValueError(f"{self.name}: zip method {self.method} is not supported")

    def skip(self) -> None:
        if not self._consumed:
            left = self.compressed_size
            while left:
                chunk = self._f.read(min(left, 1 << 20))
                if not chunk:
                    raise ValueError(f"{self.name}: archive ends inside the entry")
                left -= len(chunk)
            self._consumed = True


def _read_exact(f: BinaryIO, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = f.read(left)
        if not chunk:
            raise ValueError("zip archive ends early")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _zip64_sizes(extra: bytes, size: int, csize: int) -> tuple[int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, n = struct.unpack_from("<HH", extra, i)
        if tag == 1:
            values = list(struct.unpack_from(f"<{n // 8}Q", extra, i + 4))
            if size == 0xFFFFFFFF and values:
                size = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
        i += 4 + n
    return size, csize


def zip_entries(f: BinaryIO) -> Iterator[ZipEntry]:
    """Entries in archive order; call ``entry.read()`` before asking for the next to get its
    bytes. Stops at the central directory."""
    while True:
        head = f.read(_HEADER.size)
        if len(head) < _HEADER.size or head[:4] != LOCAL:
            return
        _, _, flags, method, _, _, _, csize, size, nlen, xlen = _HEADER.unpack(head)
        raw_name = _read_exact(f, nlen)
        extra = _read_exact(f, xlen)
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        size, csize = _zip64_sizes(extra, size, csize)
        if flags & 0x08 and csize == 0:
            raise ValueError(f"{name}: sizes only in a data descriptor; extract the zip to read it")
        entry = ZipEntry(name, method, csize, size, f)
        yield entry
        entry.skip()
        if flags & 0x08:  # data descriptor after the data: optional signature, crc, sizes
            sig = f.read(4)
            f.read(8 if sig == b"PK\x07\x08" else 4)
