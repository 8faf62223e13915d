"""Read Qt's binary resource files (``.rcc``), where GCompris keeps each activity's sounds.

Layout after Qt's ``src/corelib/io/qresource.cpp``: a 20-byte header (``qres``, format version,
then the offsets of the tree, the data and the names; version 3 adds a flags word), a tree of
fixed-size nodes (14 bytes, 22 from version 2 on, which appends a modification time), names as
UTF-16BE with a length and a hash, and each file's bytes behind a 4-byte size. A node flagged
``COMPRESSED`` holds zlib data behind a 4-byte uncompressed size; ``COMPRESSED_ZSTD`` (Qt 6)
needs zstd and is refused with a reason.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

MAGIC = b"qres"
HEADER = struct.Struct(">4s4I")
COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 0x1, 0x2, 0x4


def _u32(raw: bytes, at: int) -> int:
    if at + 4 > len(raw):
        raise ValueError("rcc offset past the end of the file")
    return struct.unpack_from(">I", raw, at)[0]


def walk_rcc(raw: bytes, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file in an rcc, paths joined with '/' after ``prefix``. Raises
    ValueError (or zlib.error) on a file that is not a valid rcc."""
    if len(raw) < HEADER.size or raw[:4] != MAGIC:
        raise ValueError("not a Qt resource file (expected magic 'qres')")
    _, version, tree, data, names = HEADER.unpack_from(raw)
    if not 1 <= version <= 3:
        raise ValueError(f"unknown rcc format version {version}")
    node_size = 22 if version >= 2 else 14

    def name(offset: int) -> str:
        at = names + offset
        if at + 6 > len(raw):
            raise ValueError("rcc name past the end of the file")
        (length,) = struct.unpack_from(">H", raw, at)
        return raw[at + 6 : at + 6 + 2 * length].decode("utf-16-be")

    seen: set[int] = set()

    def walk(index: int, path: str) -> Iterator[tuple[str, bytes]]:
        if index in seen:  # a cycle in a corrupt tree
            raise ValueError("rcc tree refers to a node twice")
        seen.add(index)
        at = tree + index * node_size
        if at + 14 > len(raw):
            raise ValueError("rcc node past the end of the file")
        name_offset, flags = struct.unpack_from(">IH", raw, at)
        here = f"{path}/{name(name_offset)}" if index else path
        if flags & DIRECTORY:
            count, first = struct.unpack_from(">II", raw, at + 6)
            for child in range(first, first + count):
                yield from walk(child, here)
            return
        offset = data + _u32(raw, at + 10)
        size = _u32(raw, offset)
        body = raw[offset + 4 : offset + 4 + size]
        if len(body) != size:
            raise ValueError("rcc file data past the end of the file")
        if flags & COMPRESSED_ZSTD:
            raise ValueError(f"{here}: zstd-compressed rcc entries are not supported")
        if flags & COMPRESSED:
            body = zlib.decompress(body[4:])
        yield here.lstrip("/"), body

    yield from walk(0, prefix.rstrip("/"))
