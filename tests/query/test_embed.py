"""Stage-1 vectors in batches: the batch a clip or query lands in must not change its vector."""

import torch

from coattn_dist.query.embed import (
    embed_clips,
    embed_texts,
    pad_segments,
    pad_tokens,
    stage1_matrix,
)


def test_vectors_do_not_depend_on_the_batch(tiny_model, features):
    tokens, segments = features
    torch.testing.assert_close(
        embed_clips(tiny_model, segments, batch=3),
        embed_clips(tiny_model, segments),
        atol=1e-6,
        rtol=0,
    )
    torch.testing.assert_close(
        embed_texts(tiny_model, tokens, batch=2), embed_texts(tiny_model, tokens), atol=1e-6, rtol=0
    )


def test_stage1_matrix_is_the_cosine_of_unit_vectors(tiny_model, features):
    tokens, segments = features
    scores = stage1_matrix(tiny_model, tokens, segments)
    assert scores.shape == (len(tokens), len(segments))
    assert scores.abs().max() <= 1 + 1e-5
    one = embed_texts(tiny_model, tokens[2:3]) @ embed_clips(tiny_model, segments[4:5]).T
    torch.testing.assert_close(scores[2, 4], one[0, 0], atol=1e-6, rtol=0)


def test_padding_follows_the_models_limits(tiny_model):
    """Queries and clips longer than the model reads are pooled down to its limits, in time order."""
    m = tiny_model.cfg.model
    tok, tok_mask = pad_tokens(
        tiny_model, [torch.randn(m.max_tokens + 9, 384), torch.randn(3, 384)]
    )
    seg, seg_mask = pad_segments(
        tiny_model, [torch.arange(2.0 * m.max_segments)[:, None].repeat(1, 512)]
    )
    assert tok.shape == (2, m.max_tokens, 384) and tok_mask.sum(1).tolist() == [m.max_tokens, 3]
    assert seg.shape == (1, m.max_segments, 512) and bool(seg_mask.all())
    assert bool((seg[0, 1:, 0] > seg[0, :-1, 0]).all())
