"""all-MiniLM-L6-v2 loaded offline from its PyPI package."""

import torch
import torch.nn.functional as F

from coattn_dist.model import masked_mean


def sentence(text_encoder, texts):
    tokens, mask = text_encoder(texts)
    return F.normalize(masked_mean(tokens, mask), dim=-1)


def test_tokens_and_mask(text_encoder):
    tokens, mask = text_encoder(["a dog barks", "rain falls on a metal roof while thunder rolls"])
    assert tokens.shape[:2] == mask.shape and tokens.shape[2] == 384 == text_encoder.dim
    assert mask[0].sum() < mask[1].sum() and mask[1].all()
    assert torch.isfinite(tokens).all()


def test_paraphrases_are_closer_than_unrelated_sentences(text_encoder):
    e = sentence(text_encoder, ["a dog barks", "a dog is barking loudly", "rain falls on a roof"])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_truncates_to_max_tokens(text_encoder):
    tokens, mask = text_encoder(["word " * 500])
    assert mask.shape[1] == text_encoder.max_tokens


def test_padding_does_not_change_a_sentence(text_encoder):
    alone = sentence(text_encoder, ["a cat meows"])
    padded = sentence(text_encoder, ["a cat meows", "a very long sentence " * 5])[:1]
    torch.testing.assert_close(alone, padded, atol=1e-5, rtol=1e-5)
