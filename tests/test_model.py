"""The co-attention model: cascades, masks, save/load, losses."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coattn_dist.config import load_config
from coattn_dist.model import (
    AlignmentScore,
    CoAttentionLayer,
    RetrievalModel,
    hard_negatives,
    info_nce,
    pad_sequences,
    parse_cascade,
    read_config,
    relative_positions,
    soft_info_nce,
)


def model_with(cascade: str, **overrides) -> RetrievalModel:
    extra = [f"model.{k}={v}" for k, v in overrides.items()]
    torch.manual_seed(0)
    return RetrievalModel(load_config(overrides=[f"model.cascade={cascade}", *extra])).eval()


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_cascade_parameter_counts():
    one = n_params(CoAttentionLayer(128, 4, 2, 0.1))
    assert n_params(model_with("single").reranker.cascade) == one
    assert n_params(model_with("iterated:3").reranker.cascade) == one
    assert n_params(model_with("stacked:3").reranker.cascade) == 3 * one


@pytest.mark.parametrize(
    "spec, expected",
    [("single", ("stacked", 1)), ("stacked:2", ("stacked", 2)), ("iterated:5", ("iterated", 5))],
)
def test_parse_cascade(spec, expected):
    assert parse_cascade(spec) == expected


@pytest.mark.parametrize("bad", ["double", "stacked", "iterated:0", "stacked:x", "single:2"])
def test_bad_cascade_is_refused(bad):
    with pytest.raises(ValueError, match="cascade"):
        parse_cascade(bad)


@pytest.mark.parametrize("cascade", ["single", "stacked:2", "iterated:3"])
def test_forward_and_backward(cascade):
    model = model_with(cascade).train()
    tok, tm = pad_sequences([torch.randn(5, 384), torch.randn(9, 384)], 64)
    seg, sm = pad_sequences([torch.randn(3, 512), torch.randn(1, 512)], 32)
    scores = model.reranker(tok, tm, seg, sm)
    assert scores.shape == (2,) and torch.isfinite(scores).all()
    scores.sum().backward()
    grads = [p.grad for p in model.reranker.cascade.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_iterated_applies_one_layer_t_times():
    model = model_with("iterated:3")
    calls = []
    model.reranker.cascade.layers[0].register_forward_hook(lambda *a: calls.append(1))
    tok, tm = pad_sequences([torch.randn(4, 384)], 64)
    seg, sm = pad_sequences([torch.randn(3, 512)], 32)
    model.reranker(tok, tm, seg, sm)
    assert len(calls) == 3


lengths = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 6)), min_size=2, max_size=5)


@settings(max_examples=25, deadline=None)
@given(lengths=lengths, cascade=st.sampled_from(["single", "stacked:2", "iterated:2"]))
def test_padding_invariance(lengths, cascade):
    """A pair scores the same alone as inside a padded batch of longer sequences."""
    model = model_with(cascade, pooling="attention")
    g = torch.Generator().manual_seed(len(lengths))
    texts = [torch.randn(n, 384, generator=g) for n, _ in lengths]
    clips = [torch.randn(m, 512, generator=g) for _, m in lengths]
    tok, tm = pad_sequences(texts, 64)
    seg, sm = pad_sequences(clips, 32)
    with torch.no_grad():
        batch = model.reranker(tok, tm, seg, sm)
        t_batch, a_batch = model.stage1.embed_text(tok, tm), model.stage1.embed_audio(seg, sm)
        for i, (t, a) in enumerate(zip(texts, clips)):
            ti, tmi = pad_sequences([t], 64)
            ai, ami = pad_sequences([a], 32)
            alone = model.reranker(ti, tmi, ai, ami)
            torch.testing.assert_close(alone[0], batch[i], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(
                model.stage1.embed_text(ti, tmi)[0], t_batch[i], atol=1e-5, rtol=1e-4
            )
            torch.testing.assert_close(
                model.stage1.embed_audio(ai, ami)[0], a_batch[i], atol=1e-5, rtol=1e-4
            )


def test_relative_positions_span_minus_one_to_one():
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    assert relative_positions(mask).tolist() == [[-1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_alignment_score_rewards_the_caption_order():
    """Words that match segments in the same order score higher than in reverse order; the gap
    is the order term alone, since both pairs match the same content."""
    torch.manual_seed(0)
    head = AlignmentScore(8, sharpness=20.0, order_weight=1.0).eval()
    events = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    words, mask = events[None], torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        same, reverse = (
            head(words, mask, events[None], mask),
            head(words, mask, events.flip(0)[None], mask),
        )
        head.order_weight.zero_()
        same_what, reverse_what = (
            head(words, mask, events[None], mask),
            head(words, mask, events.flip(0)[None], mask),
        )
    assert same > reverse
    torch.testing.assert_close(same_what, reverse_what)
    one = torch.ones(1, 1, dtype=torch.bool)  # one segment: nothing to order
    with torch.no_grad():
        head.order_weight.fill_(1.0)
        torch.testing.assert_close(
            head(words, mask, events[None, :1], one), head(words, mask, events[None, :1], one)
        )


def test_long_sequences_are_pooled_in_order():
    seq = torch.arange(64, dtype=torch.float32)[:, None].repeat(1, 4)
    x, mask = pad_sequences([seq, seq[:3]], 32)
    assert x.shape == (2, 32, 4) and mask[0].all() and mask[1].sum() == 3
    assert torch.all(x[0, 1:, 0] > x[0, :-1, 0])  # time order kept


@pytest.mark.parametrize("uri_kind", ["local", "memory"])
def test_save_and_load_round_trip(tmp_path, uri_kind):
    model = model_with("stacked:2", dim=64)
    uri = str(tmp_path / "ckpt") if uri_kind == "local" else "memory://ckpts/run1"
    model.save(uri)
    loaded = RetrievalModel.load(uri)
    assert loaded.cfg == model.cfg
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_config_is_read_without_the_weights(tmp_path):
    model = model_with("iterated:3", dim=64)
    model.save(str(tmp_path / "ckpt"))
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    assert read_config(str(tmp_path / "ckpt")) == model.cfg


def test_info_nce_several_positives():
    logits = torch.tensor([[5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    one_positive = torch.tensor([[True, False, False], [False, False, True]])
    both = torch.tensor([[True, True, False], [False, False, True]])
    # counting the second caption-clip pair as a positive removes the "negative" it was pushed from
    assert info_nce(logits, both, symmetric=False) < info_nce(logits, one_positive, symmetric=False)
    assert info_nce(logits, both, symmetric=False) < 1e-3
    perfect = torch.eye(4) * 20
    assert info_nce(perfect, torch.eye(4, dtype=torch.bool)) < 1e-6


def test_soft_targets_spare_the_near_misses():
    """With soft targets, ranking a clip worded like the query second costs less than ranking an
    unrelated one second; with weight 0 the loss is the plain cross-entropy on the positive."""
    positives = torch.eye(3, dtype=torch.bool)
    similar = torch.tensor([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]])  # 0 and 1 alike
    near_miss = torch.tensor([[4.0, 3.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 4.0]])
    far_miss = torch.tensor([[4.0, 0.0, 3.0], [0.0, 4.0, 3.0], [3.0, 3.0, 4.0]])
    loss = lambda logits: soft_info_nce(logits, positives, similar, 0.5, 0.1)  # noqa: E731
    assert loss(near_miss) < loss(far_miss)
    plain = torch.nn.functional.cross_entropy(near_miss, torch.arange(3))
    assert torch.isclose(soft_info_nce(near_miss, positives, similar, 0.0, 0.1), plain)


def test_hard_negatives_skip_relevant_clips():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.7], [0.1, 0.2, 0.3, 0.4]])
    relevant = torch.tensor([[True, False, False, False], [False, False, False, True]])
    assert hard_negatives(scores, relevant, 2).tolist() == [[1, 3], [2, 1]]


def test_one_stage1_with_several_cascades(tmp_path):
    from coattn_dist.model import cascades

    uri = str(tmp_path / "ckpt")
    primary = model_with("iterated:2", dim=64)
    primary.save(uri)
    other = model_with("stacked:2", dim=64)
    other.save_reranker(uri)
    assert cascades(uri) == ["iterated:2", "stacked:2"]
    loaded = RetrievalModel.load(uri, cascade="stacked:2")
    assert loaded.cfg.model.cascade == "stacked:2"
    for k, v in loaded.state_dict().items():
        source = primary if k.startswith("stage1.") else other
        assert torch.equal(v, source.state_dict()[k]), k
    with pytest.raises(FileNotFoundError, match="single"):
        RetrievalModel.load(uri, cascade="single")


def test_a_checkpoint_of_an_older_model_is_refused_clearly(tmp_path):
    from safetensors.torch import load_file, save_file

    uri = str(tmp_path / "ckpt")
    model_with("single", dim=64).save(uri)
    state = load_file(f"{uri}/model.safetensors")
    save_file(
        {k: v for k, v in state.items() if not k.startswith("reranker.score.")},
        f"{uri}/model.safetensors",
    )
    with pytest.raises(ValueError, match="older model .*reranker.score"):
        RetrievalModel.load(uri)


def test_a_checkpoint_from_before_query_kinds_uses_its_one_weight_for_both(tmp_path):
    from safetensors.torch import load_file, save_file

    uri = str(tmp_path / "ckpt")
    model = model_with("single", dim=64)
    model.reranker.fusion.fill_(0.7)
    model.save(uri)
    state = load_file(f"{uri}/model.safetensors")
    del state["reranker.multi_fusion"]
    save_file(state, f"{uri}/model.safetensors")
    loaded = RetrievalModel.load(uri)
    assert loaded.reranker.multi_fusion.item() == pytest.approx(0.7)


def test_projection_kinds_train_what_they_say():
    import torch

    from coattn_dist.model import Projection

    frozen = Projection(384, 256, 0.0, "frozen")
    assert not [p for p in frozen.parameters() if p.requires_grad]
    x = torch.randn(5, 384)
    y = frozen(x)  # orthogonal rows: a rotation onto 256 of the 384 directions, norms never grow
    assert torch.all(y.norm(dim=1) <= x.norm(dim=1) + 1e-4)
    linear, mlp = Projection(384, 256, 0.0, "linear"), Projection(384, 256, 0.0, "mlp")
    assert linear.mlp is None and mlp.mlp is not None
    assert torch.allclose(linear(x), linear.linear(x))
    with pytest.raises(ValueError, match="projection 'deep'"):
        Projection(384, 256, 0.0, "deep")


def test_an_ensemble_vector_is_one_unit_vector_scoring_the_members_mean_cosine(tmp_path):
    model = model_with("single", dim=64, members=4)
    assert [m.audio_proj.linear.out_features for m in model.stage1.members] == [16] * 4
    segments, smask = pad_sequences([torch.randn(5, 512), torch.randn(2, 512)], 32)
    tokens, tmask = pad_sequences([torch.randn(7, 384), torch.randn(3, 384)], 64)
    a, t = model.stage1.embed_audio(segments, smask), model.stage1.embed_text(tokens, tmask)
    assert a.shape == t.shape == (2, 64)
    assert torch.allclose(a.norm(dim=-1), torch.ones(2))
    members = torch.stack(
        [
            m.embed_text(tokens, tmask) @ m.embed_audio(segments, smask).T
            for m in model.stage1.members
        ]
    )
    assert torch.allclose(t @ a.T, members.mean(0), atol=1e-6)
    assert not torch.allclose(members[0], members[1])  # initialised apart
    model.save(str(tmp_path / "ens"))
    again = RetrievalModel.load(str(tmp_path / "ens"))
    assert torch.allclose(again.stage1.embed_audio(segments, smask), a)


def test_an_ensemble_must_split_the_width_evenly():
    with pytest.raises(ValueError, match="split evenly into 3"):
        model_with("single", dim=64, members=3)


def test_pooling_first_projects_the_sentence_vector():
    """With the text pooled first, a caption's vector depends only on its normalised mean token:
    the sentence vector all-MiniLM compares. Audio stays pooled after its projection."""
    model = model_with("single", dim=64, pool_first="text")
    tokens, tmask = pad_sequences([torch.randn(7, 384), torch.randn(3, 384)], 64)
    t = model.stage1.embed_text(tokens, tmask)
    sentence = torch.nn.functional.normalize(tokens[0, :7].mean(0), dim=0)
    projected = model.stage1.text_proj(sentence)
    assert torch.allclose(t[0], projected / projected.norm(), atol=1e-6)
    # the same sentence vector from other tokens (twice the mean, one token a scaled copy) agrees
    same, smask = pad_sequences([2 * tokens[0, :7].mean(0, keepdim=True)], 64)
    assert torch.allclose(model.stage1.embed_text(same, smask)[0], t[0], atol=1e-5)
    segments, amask = pad_sequences([torch.randn(5, 512)], 32)
    both = model_with("single", dim=64, pool_first="both")
    a = both.stage1.embed_audio(segments, amask)
    pooled = both.stage1.audio_proj(segments[0, :5].mean(0))
    assert torch.allclose(a[0], pooled / pooled.norm(), atol=1e-6)
    with pytest.raises(ValueError, match="pool_first 'words'"):
        model_with("single", pool_first="words")
