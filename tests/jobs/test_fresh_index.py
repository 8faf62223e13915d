"""A collection that tells the truth after its files change: changed content embedded again,
deleted files pruned, and vectors of another checkpoint refused instead of mixed in."""

import json
import shutil

import pytest
import torch

from coattn_dist.cli import main
from coattn_dist.config import Config
from coattn_dist.data import clip_id_for
from coattn_dist.model import RetrievalModel
from coattn_dist.store import ClipStore
from coattn_dist.store.fingerprint import FINGERPRINT_PROPERTY
from coattn_dist.store.lite_server import milvus_lite_server

DIM = 256


@pytest.fixture
def db(tmp_path):
    """A Milvus Lite server: the jobs and the test's own checks share it between runs (a `.db`
    path opened here would stay locked by this process)."""
    with milvus_lite_server(tmp_path / "milvus.db") as uri:
        yield uri


def index(capsys, folder, db, checkpoint, *extra) -> tuple[int, dict, str]:
    code = main(
        [str(a) for a in ["index", "--source", folder, "--checkpoint", checkpoint,
                          "--milvus-uri", db, "--collection", "clips", "--batch-size", 2,
                          "--num-workers", 1, "--failures", folder.parent / "f.parquet", *extra]]
    )  # fmt: skip
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else {}, err


def test_changed_files_are_embedded_again_and_gone_ones_pruned(
    sample_dir, trained_checkpoint, ray_local, tmp_path, capsys, db
):
    folder = tmp_path / "audio"
    folder.mkdir()
    clips = sorted((sample_dir / "audio").glob("*.flac"))[:4]
    for clip in clips[:3]:
        shutil.copy(clip, folder / clip.name)
    code, summary, err = index(capsys, folder, db, trained_checkpoint)
    assert code == 0, err
    assert summary["indexed"] == 3

    changed = folder / clips[0].name
    changed.write_bytes(clips[3].read_bytes())  # new content at the same path
    (folder / clips[1].name).unlink()
    code, summary, err = index(capsys, folder, db, trained_checkpoint)
    assert code == 0, err
    assert (summary["indexed"], summary["changed"], summary["skipped"]) == (1, 1, 1)
    assert summary["pruned"] == 0
    with ClipStore(db, "clips", DIM) as store:
        assert store.versions([clip_id_for(str(changed))])[clip_id_for(str(changed))][0] == (
            clips[3].stat().st_size
        )
        assert len(store.all_ids()) == 3  # the deleted file's row stays without --prune

    code, summary, err = index(capsys, folder, db, trained_checkpoint, "--prune")
    assert code == 0, err
    assert (summary["indexed"], summary["skipped"], summary["pruned"]) == (0, 2, 1)
    with ClipStore(db, "clips", DIM) as store:
        assert store.all_ids() == {clip_id_for(str(folder / c.name)) for c in (clips[0], clips[2])}


def test_another_checkpoint_is_refused_until_reindex(
    sample_dir, trained_checkpoint, ray_local, tmp_path, capsys, db
):
    folder = tmp_path / "audio"
    folder.mkdir()
    for clip in sorted((sample_dir / "audio").glob("*.flac"))[:2]:
        shutil.copy(clip, folder / clip.name)
    torch.manual_seed(1)
    retrained = tmp_path / "retrained"
    RetrievalModel(Config()).save(str(retrained))  # the same width, another embedding space

    assert index(capsys, folder, db, trained_checkpoint)[0] == 0
    code, summary, err = index(capsys, folder, db, retrained)
    assert code == 1 and "holds vectors of checkpoint" in err and "--reindex" in err
    assert summary["indexed"] == 0

    search = ["search", "a dog barks", "--milvus-uri", db, "--collection", "clips"]
    assert main([str(a) for a in [*search, "--checkpoint", retrained]]) == 2
    assert "holds vectors of checkpoint" in capsys.readouterr().err

    code, summary, err = index(capsys, folder, db, retrained, "--reindex")
    assert code == 0 and summary["indexed"] == 2, err
    with ClipStore(db, "clips", DIM) as store:
        fingerprint = store.properties()[FINGERPRINT_PROPERTY]
    assert fingerprint == RetrievalModel.load(str(retrained)).fingerprint()
    assert main([str(a) for a in [*search, "--checkpoint", retrained]]) == 0
    assert main([str(a) for a in [*search, "--checkpoint", trained_checkpoint]]) == 2
