"""The ONNX query encoder against the torch one it replaces on CPUs: the shipped checkpoint, real
MiniLM, a thousand varied captions and the ESC-50 sample's clips."""

import logging
import shutil

import numpy as np
import pytest
import torch

from coattn_dist.checkpoints import resolve_checkpoint
from coattn_dist.data.formats import read_esc50
from coattn_dist.data.table import queries
from coattn_dist.features import build_features
from coattn_dist.model import RetrievalModel
from coattn_dist.query import onnx_encode
from coattn_dist.query.embed import embed_clips
from coattn_dist.query.encode import QueryEncoder
from coattn_dist.query.onnx_encode import (
    WEIGHTS,
    ExportMismatch,
    OnnxQueryEncoder,
    cosines,
    export_path,
    quantized_path,
)
from tests.harness.queries import varied_queries


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A private export folder: the first encoder of the module exports, later ones reuse it."""
    folder = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(onnx_encode, "EXPORTS", folder)
        yield folder


@pytest.fixture(scope="module")
def shipped():
    return RetrievalModel.load(resolve_checkpoint(None))


@pytest.fixture(scope="module")
def encoders(shipped, text_encoder, exports):
    return QueryEncoder(shipped, text_encoder), QueryEncoder.for_model(shipped)


@pytest.fixture(scope="module")
def int8(shipped, exports):
    return QueryEncoder.for_model(shipped, runtime="onnx-int8")


def agrees_on_a_thousand_queries(slow, fast) -> None:
    texts = varied_queries()
    assert len(texts) == 1000
    for start in range(0, len(texts), 100):
        batch = texts[start : start + 100]
        (want_tokens, want_vectors), (tokens, vectors) = slow(batch), fast(batch)
        assert cosines(vectors, want_vectors).min() >= 0.999
        for t, w in zip(tokens, want_tokens):
            assert t.shape == w.shape  # the same tokens, padding stripped alike
            assert cosines(t, w).min() >= 0.999


def test_the_cpu_default_is_onnx_float32_and_agrees_with_torch_on_a_thousand_queries(
    encoders, exports, shipped, text_encoder
):
    slow, fast = encoders
    assert isinstance(fast, OnnxQueryEncoder) and fast.path == export_path(shipped, text_encoder)
    assert fast.path.parent == exports
    agrees_on_a_thousand_queries(slow, fast)


def test_int8_weights_agree_with_torch_on_a_thousand_queries(encoders, int8, shipped, text_encoder):
    assert isinstance(int8, OnnxQueryEncoder)
    assert int8.path == quantized_path(export_path(shipped, text_encoder))
    agrees_on_a_thousand_queries(encoders[0], int8)


def test_same_top_ten_on_the_esc50_queries(
    encoders, shipped, audio_encoder, text_encoder, sample_dir
):
    table = read_esc50(str(sample_dir / "meta" / "esc50.csv"), captions="all")
    clips = embed_clips(shipped, build_features(audio_encoder, text_encoder, table).segments)
    texts, _ = queries(table)
    slow, fast = encoders
    top = {
        name: torch.topk(torch.from_numpy(enc(texts)[1]) @ clips.T, 10).indices
        for name, enc in (("torch", slow), ("onnx", fast))
    }
    assert len(texts) >= 100
    assert torch.equal(top["torch"], top["onnx"])


def test_a_batch_encodes_each_query_as_alone(encoders, int8):
    texts = ["rain", "a dog barks while rain falls and thunder rolls far away", "bells ring"]
    for fast in (encoders[1], int8):
        together = fast(texts)[1]
        alone = np.concatenate([fast([t])[1] for t in texts])
        np.testing.assert_allclose(together, alone, atol=1e-5)


def test_a_graph_that_disagrees_with_torch_is_refused_and_torch_answers(
    shipped, text_encoder, exports, caplog
):
    """An export made for another stage 1 (or by a buggy exporter) never ranks anything."""
    other = RetrievalModel(shipped.cfg).eval()  # same shapes, fresh weights
    ours = OnnxQueryEncoder(
        shipped, text_encoder, QueryEncoder(shipped, text_encoder), weights="fp32"
    )
    wrong = export_path(other, text_encoder)
    shutil.copy(ours.path, wrong)
    for weights in WEIGHTS:  # the int8 graph is made from the wrong one, and refused too
        with pytest.raises(ExportMismatch, match="disagrees with torch"):
            OnnxQueryEncoder(
                other, text_encoder, QueryEncoder(other, text_encoder), weights=weights
            )
    with caplog.at_level(logging.WARNING, logger="coattn.query"):
        fallback = QueryEncoder.for_model(other, runtime="onnx-int8")
    assert type(fallback) is QueryEncoder and "stays on torch" in caplog.text
    wrong.unlink()
    quantized_path(wrong).unlink()
    assert isinstance(
        QueryEncoder.for_model(other, runtime="onnx-int8"), OnnxQueryEncoder
    )  # exported afresh, agrees


def test_int8_weights_that_disagree_fall_back_to_the_float32_graph(
    shipped, text_encoder, int8, exports, caplog
):
    other = RetrievalModel(shipped.cfg).eval()
    shutil.copy(int8.path, quantized_path(export_path(other, text_encoder)))  # shipped's int8
    with caplog.at_level(logging.WARNING, logger="coattn.query"):
        encoder = QueryEncoder.for_model(other, runtime="onnx-int8")
    assert isinstance(encoder, OnnxQueryEncoder) and encoder.path == export_path(
        other, text_encoder
    )
    assert "int8 weights refused" in caplog.text and "stays on torch" not in caplog.text


def test_weights_choice(shipped, text_encoder):
    with pytest.raises(ValueError, match="weights 'int4'"):
        OnnxQueryEncoder(shipped, text_encoder, QueryEncoder(shipped, text_encoder), weights="int4")


def test_runtime_choice():
    model = RetrievalModel.load(resolve_checkpoint(None))
    assert type(QueryEncoder.for_model(model, runtime="torch")) is QueryEncoder
    with pytest.raises(ValueError, match="runtime 'tensorrt'"):
        QueryEncoder.for_model(model, runtime="tensorrt")
