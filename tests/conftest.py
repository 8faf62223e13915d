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
