"""Which URIs the service may stream: under the recorded roots, allowed schemes, audio types."""

import os

import pytest

from coattn_dist.data.table import AUDIO_EXTENSIONS
from coattn_dist.store.roots import MEDIA_TYPES, collapse, location, may_serve, roots_of


@pytest.fixture
def tree(tmp_path):
    """A root with one clip, a symbolic link out of it, and a secret beside it."""
    root = tmp_path / "audio"
    (root / "dogs").mkdir(parents=True)
    (root / "dogs" / "bark.wav").write_bytes(b"RIFF")
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    os.symlink(tmp_path / "secret.wav", root / "dogs" / "escape.wav")
    return tmp_path, str(root)


def test_a_clip_under_its_root_is_served(tree):
    _, root = tree
    assert may_serve(f"{root}/dogs/bark.wav", [root])
    assert may_serve(f"file://{root}/dogs/bark.wav", [root])
    assert may_serve("s3://bucket/audio/x.flac", ["s3://bucket/audio"])


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "http://169.254.169.254/latest/meta-data/iam.wav",
        "https://example.com/clip.wav",
        "simplecache::s3://bucket/audio/x.flac",
        "s3://bucket/audio/../private/x.flac",
        "s3://bucket/audio-private/x.flac",  # a sibling whose name starts like the root
        "s3://other/audio/x.flac",
        "memory://audio/x.flac",
        "{root}/../secret.wav",
        "{root}/dogs/page.html",
        "{root}/dogs/icon.svg",
        "{root}/dogs/bark.wav\n",
        "{root}/dogs/escape.wav",  # a symbolic link out of the root
        "{root}2/dogs/bark.wav",
        "",
    ],
)
def test_anything_else_is_refused(tree, uri):
    _, root = tree
    assert not may_serve(uri.format(root=root), [root, "s3://bucket/audio"])


def test_no_roots_serves_nothing(tree):
    _, root = tree
    assert not may_serve(f"{root}/dogs/bark.wav", [])


def test_roots_of_a_manifest_are_its_folders_collapsed():
    uris = ["/data/a/1.wav", "/data/a/b/2.wav", "/data/c/3.wav", "s3://bkt/x/4.flac"]
    assert roots_of(uris) == ["/data/a", "/data/c", "s3://bkt/x"]
    assert collapse(["/data", "/data/a", "/datax"]) == ["/data", "/datax"]


def test_locations_are_normalised_not_resolved():
    assert location("s3://b/k/./x.wav") == ("s3", "/b/k/x.wav")
    assert location("/a//b/x.wav") == ("file", "/a/b/x.wav")
    assert location("/a/../b/x.wav") is None


def test_every_indexed_extension_has_an_audio_type():
    assert set(MEDIA_TYPES) == set(AUDIO_EXTENSIONS)
    assert all(t.startswith("audio/") for t in MEDIA_TYPES.values())
