"""A zip read front to back from a stream that cannot seek (a member of a compressed tar)."""

import io

from coattn_dist.data.sfx.zipstream import zip_entries
from tests.data.sfx.archives import zip_bytes


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes):
        self.inner = io.BytesIO(data)

    def read(self, n=-1):
        return self.inner.read(n)

    def seekable(self):
        return False


def test_stored_and_deflated_members_read_in_order():
    files = {
        "a/one.ogg": b"1" * 1000,
        "b/two.txt": b"hello " * 50,
        "three.wav": bytes(range(256)) * 4,
    }
    got = {}
    for entry in zip_entries(Unseekable(zip_bytes(files))):
        if not entry.name.endswith(".txt"):  # entries not read are skipped
            got[entry.name] = entry.read()
    assert got == {"a/one.ogg": files["a/one.ogg"], "three.wav": files["three.wav"]}
