"""A tiny untrained model and random features: the query path's arithmetic does not depend on
trained weights, and a tiny model keeps each test well under a second."""

import pytest
import torch

from coattn_dist.config import load_config
from coattn_dist.model import RetrievalModel

TINY = ["model.dim=64", "model.rerank_dim=32", "model.cascade=iterated:2", "model.dropout=0.0"]


@pytest.fixture(scope="package")
def tiny_model() -> RetrievalModel:
    torch.manual_seed(0)
    return RetrievalModel(load_config(overrides=TINY)).eval()


@pytest.fixture(scope="package")
def features() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """7 queries of 2..12 tokens and 10 clips of 1..9 segments, lengths varied so padding shows."""
    g = torch.Generator().manual_seed(0)
    tokens = [torch.randn(2 + 5 * i % 11, 384, generator=g) for i in range(7)]
    segments = [torch.randn(1 + 4 * i % 9, 512, generator=g) for i in range(10)]
    return tokens, segments
