"""QueryEncoder: real MiniLM tokens, the stage-1 vectors Milvus is searched with."""

import numpy as np
import pytest

from coattn_dist.query.embed import embed_texts
from coattn_dist.query.encode import QueryEncoder

QUERIES = ["a dog barks", "heavy rain pours down on a tin roof while thunder rolls", "bells"]


@pytest.fixture(scope="module")
def encoder(tiny_model, text_encoder):
    return QueryEncoder(tiny_model, text_encoder)


def test_tokens_and_unit_vectors_per_query(encoder, tiny_model):
    tokens, vectors = encoder(QUERIES)
    assert [t.shape[1] for t in tokens] == [384] * 3
    assert tokens[1].shape[0] > tokens[0].shape[0] > tokens[2].shape[0]  # padding stripped
    assert vectors.shape == (3, tiny_model.cfg.model.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, embed_texts(tiny_model, tokens).numpy(), atol=1e-6)


def test_a_batch_encodes_each_query_as_alone(encoder):
    """The service's encoder batches concurrent queries: a query's vector must not depend on them."""
    _, together = encoder(QUERIES)
    alone = np.concatenate([encoder([q])[1] for q in QUERIES])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_for_model_reads_the_text_encoder_the_config_names(encoder, tiny_model):
    _, expected = encoder(QUERIES[:1])
    _, vectors = QueryEncoder.for_model(tiny_model)(QUERIES[:1])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def imports(module: str, heavy: str) -> bool:
    """Whether importing `module` in a fresh interpreter loads `heavy`."""
    import subprocess
    import sys

    code = f"import sys, {module}; print({heavy!r} in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip() == "True"


def test_start_up_imports_only_what_each_side_needs():
    """What a replica or `coattn search` imports is what its start waits for."""
    assert not imports("coattn_dist.query.search", "ray")
    assert not imports("coattn_dist.query.rerank", "transformers")
    assert not imports("coattn_dist.query.retrieve", "transformers")
