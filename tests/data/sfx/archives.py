"""Real archives for the tests: short sine+noise clips, zips, Qt resource files and Debian
packages (C4Groups come from ``coattn_dist.data.sfx.c4group.pack_group_file``)."""

import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf


def clip_bytes(
    fmt: str = "WAV",
    seconds: float = 0.4,
    freq: float = 440.0,
    seed: int = 0,
    rate: int = 22050,
    silent: bool = False,
) -> bytes:
    """A real, decodable clip: a sine with noise (or digital silence) as WAV or OGG bytes."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    x = (
        0.0 * t
        if silent
        else 0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))
    )
    buf = io.BytesIO()
    sf.write(
        buf, x.astype("float32"), rate, format=fmt, subtype="VORBIS" if fmt == "OGG" else "PCM_16"
    )
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i, (name, data) in enumerate(files.items()):
            z.writestr(
                name, data, compress_type=zipfile.ZIP_DEFLATED if i % 2 else zipfile.ZIP_STORED
            )
    return buf.getvalue()


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode("ascii")
    return header + data + (b"\n" if len(data) % 2 else b"")


def make_deb(
    path: Path,
    files: dict[str, bytes],
    links: dict[str, str] | None = None,
    symlinks: dict[str, str] | None = None,
) -> Path:
    """A Debian package (ar: debian-binary, control.tar.xz, data.tar.xz) holding ``files``;
    ``links`` adds hard links (path → target), ``symlinks`` symbolic ones (path → as written)."""

    def tar_xz(
        entries: dict[str, bytes], hard: dict[str, str], soft: dict[str, str] | None = None
    ) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:xz") as tar:
            for name, data in entries.items():
                info = tarfile.TarInfo("./" + name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            for name, target in hard.items():
                info = tarfile.TarInfo("./" + name)
                info.type, info.linkname = tarfile.LNKTYPE, "./" + target
                tar.addfile(info)
            for name, target in (soft or {}).items():
                info = tarfile.TarInfo("./" + name)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
        return buf.getvalue()

    control = tar_xz({"control": b"Package: test\nVersion: 1.0\n"}, {})
    data = tar_xz(files, links or {}, symlinks or {})
    path.write_bytes(
        b"!<arch>\n"
        + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", control)
        + _ar_member("data.tar.xz", data)
    )
    return path


def rcc_bytes(tree: dict, compress: bool = True) -> bytes:
    """A Qt resource file (format 3) holding ``tree`` (name → bytes, or → a nested dict for a
    folder), files zlib-compressed or stored, laid out as Qt's ``rcc`` tool does: breadth first,
    each folder's children in consecutive nodes."""
    nodes, names, data = [], bytearray(), bytearray()

    def add_name(name: str) -> int:
        at = len(names)
        encoded = name.encode("utf-16-be")
        names.extend(struct.pack(">HI", len(name), 0) + encoded)
        return at

    nodes.append(None)  # the root, filled in when its children are placed
    slots = {0: ("", tree)}
    index = 0
    while index < len(nodes):
        name, item = slots[index]
        name_offset = add_name(name) if index else 0
        if isinstance(item, dict):
            first = len(nodes)
            for child_name, child in item.items():
                slots[len(nodes)] = (child_name, child)
                nodes.append(None)
            nodes[index] = struct.pack(">IHII", name_offset, 0x2, len(item), first) + bytes(8)
        else:
            payload = struct.pack(">I", len(item)) + zlib.compress(item) if compress else item
            at = len(data)
            data.extend(struct.pack(">I", len(payload)) + payload)
            flags = 0x1 if compress else 0x0
            nodes[index] = struct.pack(">IHHHI", name_offset, flags, 0, 0, at) + bytes(8)
        index += 1
    data_at = 24  # after the header: magic, version, the three offsets, flags
    names_at = data_at + len(data)
    tree_at = names_at + len(names)
    header = b"qres" + struct.pack(">5I", 3, tree_at, data_at, names_at, 0)
    return header + bytes(data) + bytes(names) + b"".join(nodes)
