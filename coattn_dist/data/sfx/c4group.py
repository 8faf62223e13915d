"""Read OpenClonk's C4Group archives (``.ocg``, ``.ocd``, ``.ocf``, ...).

A group file is gzip with its two magic bytes changed from ``1f 8b`` to ``1e 8c``. Inside: a
204-byte header scrambled by ``mem_scramble``, then ``Entries`` plain 316-byte entry records,
then the entries' contents back to back (offsets count from the end of the records). An entry
with ``ChildGroup`` set is itself a group, stored uncompressed (its header scrambled again):
folders are groups nested inside groups. Layout after OpenClonk's ``src/c4group/C4Group.h``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

GROUP_ID = b"RedWolf Design GrpFolder"
GZIP_MAGIC, C4_MAGIC = b"\x1f\x8b", b"\x1e\x8c"
HEADER_SIZE, ENTRY_SIZE = 204, 316
# id[28], Ver1, Ver2, Entries, Maker[32], Password[32], Creation, Original, fbuf[92]
HEADER = struct.Struct("<28s3i32s32s2i92s")
# FileName[260], Packed, ChildGroup, Size, unused, Offset, Time, HasCRC, CRC, Executable, fbuf[26]
ENTRY = struct.Struct("<260s5iIcIc26s")
assert HEADER.size == HEADER_SIZE and ENTRY.size == ENTRY_SIZE


def mem_scramble(data: bytes) -> bytes:
    """XOR every byte with 0xED, then swap the first and third byte of each triple; its own
    inverse, so it both scrambles and unscrambles."""
    b = bytearray(x ^ 0xED for x in data)
    for i in range(0, len(b) - 2, 3):
        b[i], b[i + 2] = b[i + 2], b[i]
    return bytes(b)


@dataclass(frozen=True)
class GroupEntry:
    name: str
    size: int
    offset: int
    child: bool


def ungzip(raw: bytes) -> bytes:
    """A group file's bytes → the group (its magic set back to gzip's first)."""
    if raw[:2] == C4_MAGIC:
        raw = GZIP_MAGIC + raw[2:]
    if raw[:2] != GZIP_MAGIC:
        raise ValueError("not a C4Group file (expected magic 1e 8c)")
    return zlib.decompress(raw, 31)


def read_entries(group: bytes) -> tuple[list[GroupEntry], int]:
    """The entry records of one (uncompressed) group and where its contents start."""
    if len(group) < HEADER_SIZE:
        raise ValueError("C4Group shorter than its header")
    gid, ver1, _ver2, count, *_ = HEADER.unpack(mem_scramble(group[:HEADER_SIZE]))
    if not gid.startswith(GROUP_ID) or ver1 != 1 or not 0 <= count <= len(group) // ENTRY_SIZE:
        raise ValueError("C4Group header is invalid")
    entries = []
    for k in range(count):
        start = HEADER_SIZE + k * ENTRY_SIZE
        name, _packed, child, size, _unused, offset, *_ = ENTRY.unpack_from(group, start)
        entries.append(
            GroupEntry(
                name.split(b"\0", 1)[0].decode("utf-8", "replace"), size, offset, bool(child)
            )
        )
    return entries, HEADER_SIZE + count * ENTRY_SIZE


def walk_group(group: bytes, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file in a group and its nested groups, depth first. A child that
    does not parse as a group is yielded as a file."""
    entries, base = read_entries(group)
    for e in entries:
        data = group[base + e.offset : base + e.offset + e.size]
        path = f"{prefix}{e.name}"
        if e.child:
            try:
                yield from walk_group(data, path + "/")
                continue
            except ValueError:
                pass
        yield path, data


def walk_group_file(raw: bytes, prefix: str = "") -> Iterator[tuple[str, bytes]]:
    """Every file of a group file as stored on disk (gzip with the C4 magic)."""
    yield from walk_group(ungzip(raw), prefix)


def pack_group(files: dict[str, bytes | dict]) -> bytes:
    """The uncompressed group of ``files`` (name → bytes, or name → dict for a nested group);
    ``pack_group_file`` gzips it as a group file. Used to make test archives."""
    contents, records = [], []
    offset = 0
    for name, value in files.items():
        child = isinstance(value, dict)
        data = pack_group(value) if child else value
        records.append(
            ENTRY.pack(
                name.encode("utf-8"),
                0,
                int(child),
                len(data),
                0,
                offset,
                0,
                b"\0",
                0,
                b"\0",
                b"\0" * 26,
            )
        )
        contents.append(data)
        offset += len(data)
    header = HEADER.pack(GROUP_ID, 1, 2, len(files), b"coattn", b"", 0, 0, b"\0" * 92)
    return mem_scramble(header) + b"".join(records) + b"".join(contents)


def pack_group_file(files: dict[str, bytes | dict]) -> bytes:
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    raw = gz.compress(pack_group(files)) + gz.flush()
    return C4_MAGIC + raw[2:]
