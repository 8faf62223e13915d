"""Shared real fixtures: the ESC-50 sample shipped in the repo and the pretrained encoders."""

import logging
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
torch.set_num_threads(2)

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "esc50"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def audio_encoder():
    from coattn_dist.encoders import AisfxEncoder

    return AisfxEncoder()


@pytest.fixture(scope="session")
def text_encoder():
    from coattn_dist.config import TextEncoderConfig
    from coattn_dist.encoders import build_text_encoder

    return build_text_encoder(TextEncoderConfig())


@pytest.fixture(scope="session")
def small_features(audio_encoder, text_encoder):
    """Real features of 2 clips x 6 classes with every caption of their class: 12 clips."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from coattn_dist.data.formats import read_esc50
    from coattn_dist.features import build_features

    table = read_esc50(str(SAMPLE / "meta" / "esc50.csv"), captions="all")
    classes = ["dog", "rain", "church_bells", "crying_baby", "clock_tick", "helicopter"]
    table = table.filter(pc.is_in(table["label"], value_set=pa.array(classes)))
    return build_features(audio_encoder, text_encoder, table)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session: starting Ray costs ~6 s. Four logical CPUs on two cores:
    actors that an earlier test's Ray Data job keeps alive must not starve a later Ray Train run."""
    import ray

    from coattn_dist.runtime import use_serve_fast_path

    if not ray.is_initialized():
        use_serve_fast_path()  # the service's tests run it as it is deployed
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def trained_checkpoint(small_features, tmp_path_factory) -> str:
    """Both stages briefly trained on `small_features` and saved: enough for "a dog barks" to
    find a dog. Indexing only needs some checkpoint; searching needs one that learned a little."""
    from coattn_dist.config import load_config
    from coattn_dist.model import RetrievalModel
    from coattn_dist.train.loops import seed_everything, train_reranker, train_stage1

    # like_fusion 0.5: queries by sound go through the segment rescoring too
    cfg = load_config(
        None,
        [
            "train.epochs=15",
            "train.rerank_epochs=3",
            "model.cascade=single",
            "model.like_fusion=0.5",
        ],
    )
    seed_everything(cfg.train.seed)
    model = RetrievalModel(cfg)
    train_stage1(model, small_features, cfg.train)
    train_reranker(model, small_features, cfg.train)
    path = tmp_path_factory.mktemp("trained") / "checkpoint"
    model.eval().save(str(path))
    return str(path)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A SeaweedFS S3 endpoint on loopback for the session; each test makes its own bucket."""
    from tests.harness.servers import seaweedfs_s3

    with seaweedfs_s3(tmp_path_factory.mktemp("seaweedfs"), "index-key", "index-secret") as s3:
        yield s3


@pytest.fixture(scope="session")
def milvus_with_auth(tmp_path_factory):
    """The real Milvus server (C++, from PyPI) with authentication on; its token is
    `tests.harness.servers.MILVUS_ROOT_TOKEN`. `make test` builds its environment."""
    import os

    from tests.harness.servers import milvus_standalone

    python = os.environ.get("COATTN_MILVUS_PYTHON", ".venv-milvus/bin/python")
    if not os.access(python, os.X_OK):
        pytest.skip(f"no Milvus server environment at {python}: `make test` builds it")
    with milvus_standalone(tmp_path_factory.mktemp("milvus-auth"), python, auth=True) as uri:
        yield uri


@pytest.fixture(scope="session")
def bad_audio(sample_dir) -> dict[str, tuple[bytes, str]]:
    """One file of each bad kind an index job meets: name -> (bytes, the kind it must fail with)."""
    import io

    import numpy as np
    import soundfile as sf

    def wav(samples: np.ndarray, subtype: str) -> bytes:
        buf = io.BytesIO()
        sf.write(buf, samples, 44100, format="WAV", subtype=subtype)
        return buf.getvalue()

    flac = next(iter(sorted((sample_dir / "audio").glob("*.flac")))).read_bytes()
    nan = np.zeros(4410, dtype=np.float32)
    nan[100] = np.nan
    return {
        "truncated.flac": (flac[: len(flac) // 2], "truncated"),
        "empty.wav": (b"", "empty"),
        "notes.mp3": (b"these are meeting notes, not audio\n" * 20, "not_audio"),
        "silent.wav": (wav(np.zeros((0, 1), dtype=np.float32), "PCM_16"), "zero_samples"),
        "nan.wav": (wav(nan, "FLOAT"), "non_finite"),
    }
