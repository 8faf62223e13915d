"""Listing sources, skipping what is indexed, and reading bytes: per-file errors become rows,
an object-store outage stops the job."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs

from coattn_dist.data import clip_id_for
from coattn_dist.pipeline.reader import (
    SourceUnavailable,
    drop_indexed,
    list_folder,
    list_manifest,
    read_bytes,
)
from coattn_dist.store import ClipStore
from coattn_dist.store.lite_server import free_port


def test_folder_listing_is_recursive_sorted_audio_only(tmp_path):
    for name in ["b.WAV", "a.flac", "sub/c.ogg", "notes.txt", "cover.jpg"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    listing = list_folder(str(tmp_path))
    uris = listing["uri"].to_pylist()
    assert uris == [str(tmp_path / n) for n in ["a.flac", "b.WAV", "sub/c.ogg"]]
    assert listing["clip_id"].to_pylist() == [clip_id_for(u) for u in uris]
    with pytest.raises(ValueError, match="no audio files"):
        list_folder(str(tmp_path / "sub" / "missing"))


def test_s3_listing_names_full_uris_and_reads_them(s3_server):
    fs = s3fs.S3FileSystem(**s3_server, skip_instance_cache=True)
    fs.mkdir("reader-bucket")
    fs.pipe({"reader-bucket/audio/x.flac": b"flac bytes", "reader-bucket/audio/y.txt": b"no"})
    options = dict(s3_server)
    listing = list_folder("s3://reader-bucket/audio", options)
    assert listing["uri"].to_pylist() == ["s3://reader-bucket/audio/x.flac"]
    assert listing["clip_id"].to_pylist() == [clip_id_for("s3://reader-bucket/audio/x.flac")]

    uris = np.array(
        ["s3://reader-bucket/audio/x.flac", "s3://reader-bucket/audio/gone.flac"], dtype=object
    )
    out = read_bytes({"uri": uris}, options)
    assert list(out["data"]) == [b"flac bytes", b""]
    assert list(out["kind"]) == ["", "unreadable"]
    assert "gone.flac" in out["message"][1] and out["message"][0] == ""


def test_object_store_outage_raises_instead_of_failing_every_file():
    options = {
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "key": "k",
        "secret": "s",
        "retries": 1,
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
    }
    with pytest.raises(SourceUnavailable, match="after 2 attempts"):
        read_bytes(
            {"uri": np.array(["s3://down/a.flac"], dtype=object)},
            options,
            attempts=2,
            backoff_s=0.01,
        )


def test_manifest_listing_keeps_its_ids_and_labels(tmp_path):
    pq.write_table(
        pa.table(
            {
                "audio": ["a.flac", "a.flac", "b.flac"],
                "caption": ["one", "two", ""],
                "clip_id": ["clip-a", "clip-a", ""],
                "label": ["dog", "dog", ""],
            }
        ),
        tmp_path / "m.parquet",
    )
    listing = list_manifest(str(tmp_path / "m.parquet"))
    assert listing.to_pylist() == [
        {
            "clip_id": "clip-a",
            "uri": str(tmp_path / "a.flac"),
            "label": "dog",
            "size": -1,
            "version": "",
        },
        {
            "clip_id": clip_id_for(str(tmp_path / "b.flac")),
            "uri": str(tmp_path / "b.flac"),
            "label": "",
            "size": -1,  # a manifest does not say: such a clip is never counted as changed
            "version": "",
        },
    ]


def test_drop_indexed_skips_stored_clips_before_any_read(tmp_path):
    for name in ["a.wav", "b.wav", "c.wav", "d.wav"]:
        (tmp_path / name).write_bytes(b"x")
    listing = list_folder(str(tmp_path))
    assert listing["size"].to_pylist() == [1] * 4 and all(listing["version"].to_pylist())
    ids, versions = listing["clip_id"].to_pylist(), listing["version"].to_pylist()

    def row(i: int, **meta) -> dict:
        return {"clip_id": ids[i], "vector": np.ones(4) / 2, "uri": "u", "label": "",
                "segments": np.zeros((1, 8)), **meta}  # fmt: skip

    with ClipStore(str(tmp_path / "milvus.db"), "clips", 4) as store:
        store.create_if_absent()
        store.upsert(
            [
                row(1, size=1, version=versions[1]),  # unchanged
                row(2),  # indexed from a manifest: no version to compare, so unchanged
                row(3, size=1, version="older"),  # the file changed since
            ]
        )
        todo, skipped, changed = drop_indexed(listing, store)
    assert (skipped, changed) == (2, 1)
    assert todo["uri"].to_pylist() == [str(tmp_path / "a.wav"), str(tmp_path / "d.wav")]
