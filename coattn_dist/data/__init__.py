"""Datasets as manifests: one (clip, caption) table whatever file the user starts from.

`table` holds the schema and its helpers, `formats` the public datasets' readers, `manifest`
the reader that picks between them: table <- formats <- manifest.
"""

from coattn_dist.data.esc50_captions import ESC50_CAPTIONS
from coattn_dist.data.formats import esc50_metadata
from coattn_dist.data.manifest import read_manifest
from coattn_dist.data.table import (
    AUDIO_EXTENSIONS,
    clip_id_for,
    clips,
    groups_of,
    manifest_table,
    queries,
    write_manifest,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "ESC50_CAPTIONS",
    "clip_id_for",
    "clips",
    "esc50_metadata",
    "groups_of",
    "manifest_table",
    "queries",
    "read_manifest",
    "write_manifest",
]
