import pytest


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> str:
    """An untrained model: the pipeline's stages only need its shapes and encoder names."""
    import torch

    from coattn_dist.config import Config
    from coattn_dist.model import RetrievalModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("random") / "checkpoint"
    RetrievalModel(Config()).eval().save(str(path))
    return str(path)
