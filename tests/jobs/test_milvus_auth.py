"""A Milvus with authentication (the real C++ server from PyPI): `coattn index` and `coattn
search` reach it with COATTN_MILVUS_TOKEN from the environment, never from a command line, and
without it they are turned away."""

import json
import shutil

import pytest

from coattn_dist.cli import main
from coattn_dist.store import ClipStore, StoreUnavailable
from coattn_dist.store.milvus import TOKEN_ENV
from tests.harness.servers import MILVUS_ROOT_TOKEN


def test_the_token_comes_from_the_environment(
    milvus_with_auth, sample_dir, trained_checkpoint, ray_local, tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "audio"
    folder.mkdir()
    for clip in sorted((sample_dir / "audio").glob("*.flac"))[:3]:
        shutil.copy(clip, folder / clip.name)
    index = ["index", "--source", folder, "--milvus-uri", milvus_with_auth, "--collection",
             "clips", "--checkpoint", trained_checkpoint, "--num-workers", 1,
             "--failures", tmp_path / "f.parquet"]  # fmt: skip
    search = ["search", "a dog barks", "--milvus-uri", milvus_with_auth, "--collection", "clips",
              "--checkpoint", trained_checkpoint]  # fmt: skip

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(StoreUnavailable):
        ClipStore(milvus_with_auth, "clips", 256, attempts=1).exists()

    monkeypatch.setenv(TOKEN_ENV, MILVUS_ROOT_TOKEN)
    assert main([str(a) for a in index]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["indexed"] == 3
    assert main([str(a) for a in search]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(answer["results"]) == 3
    assert MILVUS_ROOT_TOKEN not in " ".join(map(str, index + search))  # not on any command line
