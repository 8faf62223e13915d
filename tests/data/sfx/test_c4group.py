"""C4Group archives: the scramble, the header and entry layout, nested groups, the C4 gzip magic."""

import pytest

from coattn_dist.data.sfx.c4group import (
    ENTRY_SIZE,
    HEADER_SIZE,
    mem_scramble,
    pack_group,
    pack_group_file,
    read_entries,
    walk_group_file,
)


def test_scramble_is_its_own_inverse_and_hides_the_id():
    header = b"RedWolf Design GrpFolder" + bytes(range(180))
    scrambled = mem_scramble(header)
    assert scrambled != header and b"RedWolf" not in scrambled
    assert mem_scramble(scrambled) == header


def test_group_file_round_trip_with_nested_groups():
    files = {
        "authors.txt": b"someone",
        "Hits.ocg": {"Glass.ocg": {"Shatter.ogg": b"x" * 10}, "Thud.wav": b"yy"},
    }
    raw = pack_group_file(files)
    assert raw[:2] == b"\x1e\x8c"  # gzip with the magic changed
    assert dict(walk_group_file(raw)) == {
        "authors.txt": b"someone",
        "Hits.ocg/Glass.ocg/Shatter.ogg": b"x" * 10,
        "Hits.ocg/Thud.wav": b"yy",
    }


def test_entries_are_316_bytes_after_a_204_byte_header():
    group = pack_group({"a.wav": b"1234", "b.wav": b"56"})
    entries, base = read_entries(group)
    assert base == HEADER_SIZE + 2 * ENTRY_SIZE
    assert [(e.name, e.size, e.offset, e.child) for e in entries] == [
        ("a.wav", 4, 0, False),
        ("b.wav", 2, 4, False),
    ]
    assert group[base:] == b"123456"


def test_not_a_group_is_refused():
    with pytest.raises(ValueError):
        walk_group_file(b"PK\x03\x04 not a group").__next__()
    with pytest.raises(ValueError):
        read_entries(b"\0" * 300)
