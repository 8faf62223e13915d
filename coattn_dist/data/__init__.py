"""Datasets as manifests: one (clip, caption) table whatever file the user starts from."""

from coattn_dist.data.formats import ESC50_CAPTIONS, esc50_metadata
from coattn_dist.data.manifest import clip_id_for, clips, queries, read_manifest, write_manifest

__all__ = [
    "ESC50_CAPTIONS",
    "clip_id_for",
    "clips",
    "esc50_metadata",
    "queries",
    "read_manifest",
    "write_manifest",
]
