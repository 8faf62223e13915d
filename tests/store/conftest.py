import numpy as np
import pytest

DIM = 64


def _make_rows(n, start=0, seed=0, dim=DIM, label="dog"):
    """n clips with unit vectors and 1..40 segments of 512-d features (pooled to 32 on write)."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        {
            "clip_id": f"clip-{start + i:05d}",
            "vector": vectors[i],
            "uri": f"s3://audio/{start + i}.flac",
            "label": label,
            "segments": rng.standard_normal((1 + i % 40, 512)),
        }
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def make_rows():
    return _make_rows
