"""Any Hugging Face model by path: small randomly-initialised models built here, no download."""

import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizerFast,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
)

from coattn_dist.config import AudioEncoderConfig, TextEncoderConfig
from coattn_dist.encoders import build_audio_encoder, build_text_encoder

WORDS = "a dog barks rain falls on the roof while birds sing".split()


@pytest.fixture(scope="module")
def tiny_text_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(path)
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=len(WORDS) + 5,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=37,
        )
    ).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_audio_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-wav2vec2")
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(path)
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    Wav2Vec2Model(cfg).save_pretrained(path)
    return str(path)


def test_text_model_by_path(tiny_text_model):
    encoder = build_text_encoder(TextEncoderConfig(name=tiny_text_model, max_tokens=8))
    tokens, mask = encoder(["a dog barks", "rain falls on the roof while birds sing"])
    assert encoder.dim == 32 and tokens.shape == (2, 8, 32)
    assert mask[0].sum() == 5 and mask[1].all()  # [CLS] a dog barks [SEP]; the second is truncated


def test_audio_model_by_path_pools_frames_into_segments(tiny_audio_model):
    encoder = build_audio_encoder(AudioEncoderConfig(name=tiny_audio_model, segment_hop_s=0.5))
    assert encoder.sample_rate == 16000 and encoder.dim == 32
    rng = np.random.default_rng(0)
    long, short = (
        rng.standard_normal(32000).astype(np.float32),
        rng.standard_normal(8000).astype(np.float32),
    )
    a, b = encoder([long, short])
    assert a.shape == (4, 32) and b.shape == (1, 32)
    torch.testing.assert_close(encoder([short])[0], b, atol=1e-4, rtol=1e-4)


def test_missing_model_path_fails_clearly(tmp_path):
    with pytest.raises(OSError):
        build_text_encoder(TextEncoderConfig(name=str(tmp_path / "nowhere")))
