"""Both stages learn on real features: a tiny model overfits a handful of real clips."""

import dataclasses
import itertools

import pytest
import torch

from coattn_dist.config import load_config
from coattn_dist.data.scenes import swap_events
from coattn_dist.features import Features, cached_texts
from coattn_dist.metrics import retrieval_metrics
from coattn_dist.model import RetrievalModel
from coattn_dist.query.embed import pad_segments, pad_tokens
from coattn_dist.query.rerank import score_matrix
from coattn_dist.train.loops import (
    WeightAverage,
    candidates,
    crop_segments,
    drop_tokens,
    heard_in,
    name_beds,
    seed_everything,
    train_reranker,
    train_stage1,
)

TINY = [
    "model.dim=64",
    "model.rerank_dim=32",
    "model.cascade=iterated:2",
    "model.dropout=0.0",
    "train.epochs=40",
    "train.rerank_epochs=25",
    "train.batch_size=16",
    "train.rerank_batch_size=16",
    "train.lr=0.003",
]


def test_tiny_model_overfits_real_clips(small_features):
    cfg = load_config(overrides=TINY)
    seed_everything(0)
    model = RetrievalModel(cfg)
    data = small_features
    before = retrieval_metrics(score_matrix(model, data.tokens, data.segments), data.relevant)
    s1 = train_stage1(model, data, cfg.train)
    s2 = train_reranker(model, data, cfg.train)
    assert s1[-1]["loss"] < 0.2 * s1[0]["loss"] and s2[-1]["loss"] < 0.2 * s2[0]["loss"]
    stage1 = retrieval_metrics(score_matrix(model, data.tokens, data.segments), data.relevant)
    full = retrieval_metrics(
        score_matrix(model, data.tokens, data.segments, depth=6), data.relevant
    )
    assert before["mAP@10"] < 0.9
    assert stage1["R@1"] == 1.0 and stage1["mAP@10"] > 0.99
    assert full["R@1"] == 1.0 and full["mAP@10"] > 0.99


def test_training_is_deterministic_with_a_seed(small_features):
    cfg = load_config(overrides=[*TINY, "train.epochs=2", "train.rerank_epochs=1"])
    runs = []
    for _ in range(2):
        seed_everything(7)
        model = RetrievalModel(cfg)
        runs.append(
            (
                train_stage1(model, small_features, cfg.train),
                train_reranker(model, small_features, cfg.train),
            )
        )
    assert runs[0] == runs[1]


def test_weight_average_follows_the_steps_and_is_swapped_in_only_for_validation():
    layer = torch.nn.Linear(3, 2)
    average = WeightAverage(layer, decay=0.9)
    expected = layer.weight.detach().clone()
    for step in range(1, 30):
        with torch.no_grad():
            layer.weight.add_(1.0)
        average.update()
        d = min(0.9, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * layer.weight.detach()
    live = layer.weight.detach().clone()
    with average.swapped():
        assert torch.allclose(layer.weight, expected)
        assert (layer.weight < live - 2).all()  # it lags the live weights by a few steps
    assert torch.equal(layer.weight, live)


def test_training_with_a_weight_average_keeps_the_average(small_features):
    cfg = load_config(overrides=[*TINY, "train.epochs=3", "train.ema=0.95"])
    seed_everything(0)
    model = RetrievalModel(cfg)
    scores = []

    def evaluate():
        scores.append({k: v.clone() for k, v in model.stage1.state_dict().items()})
        return float(len(scores))  # every epoch "better": the last one is kept

    train_stage1(model, small_features, cfg.train, evaluate=evaluate)
    kept = model.stage1.state_dict()
    assert all(torch.equal(kept[k], scores[-1][k]) for k in kept)  # the validated weights
    seed_everything(0)
    plain = RetrievalModel(cfg)
    train_stage1(plain, small_features, dataclasses.replace(cfg.train, ema=0.0))
    live = plain.stage1.state_dict()  # the same steps without the average: the live weights
    assert not torch.allclose(kept["audio_proj.linear.weight"], live["audio_proj.linear.weight"])


def test_reranker_candidates_put_the_positive_first():
    batch = torch.tensor([[0, 5], [1, 6], [2, 7]])
    negatives = torch.tensor([[9, 8], [9, 7], [3, 4]])
    cand = candidates(batch, negatives, 3, torch.Generator().manual_seed(0))
    assert cand.shape == (3, 6)
    assert cand[:, 0].tolist() == [5, 6, 7] and cand[:, 1:3].tolist() == negatives.tolist()
    assert set(cand[:, 3:].reshape(-1).tolist()) <= {5, 6, 7}


def real_sequences(data: Features, text_encoder) -> Features:
    """Two-event scenes in feature space: the segments of two real clips of different classes one
    after the other, captioned in that order; every class pair in both orders."""
    one_per_class = {
        data.texts[int(data.relevant[:, c].nonzero()[0])]: c for c in range(len(data.clip_ids))
    }
    pairs = list(itertools.permutations(one_per_class.items(), 2))
    texts = [f"{first}, then {second}" for (first, _), (second, _) in pairs]
    twins = cached_texts(text_encoder, [swap_events(t) for t in texts], None)
    return Features(
        [f"{a}-{b}" for (_, a), (_, b) in pairs],
        [""] * len(pairs),
        [torch.cat([data.segments[a], data.segments[b]]) for (_, a), (_, b) in pairs],
        texts,
        cached_texts(text_encoder, texts, None),
        torch.eye(len(pairs), dtype=torch.bool),
        swapped=dict(enumerate(twins)),
    )


def test_reranker_learns_event_order_from_real_clips(small_features, text_encoder):
    scenes = real_sequences(small_features, text_encoder)
    cfg = load_config(overrides=[*TINY, "train.epochs=10", "train.rerank_epochs=30"])
    seed_everything(0)
    model = RetrievalModel(cfg)
    train_stage1(model, scenes, cfg.train)
    train_reranker(model, scenes, cfg.train)
    n = len(scenes.texts)
    with torch.no_grad():
        scores = model.eval().reranker(
            *pad_tokens(model, scenes.tokens + [scenes.swapped[i] for i in range(n)]),
            *pad_segments(model, scenes.segments * 2),
        )
    assert (scores[:n] > scores[n:]).float().mean() >= 0.95


def test_segment_crops_are_runs_of_the_clip_and_reproducible():
    seqs = [torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 4) for n in (1, 3, 8)]
    assert all(a is b for a, b in zip(crop_segments(seqs, 0.0, torch.Generator()), seqs))
    first = crop_segments(seqs, 1.0, torch.Generator().manual_seed(5))
    again = crop_segments(seqs, 1.0, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    lengths = set()
    for seed in range(30):
        for orig, cut in zip(seqs, crop_segments(seqs, 1.0, torch.Generator().manual_seed(seed))):
            start = int(cut[0, 0])
            assert 1 <= len(cut) <= len(orig)
            assert torch.equal(cut, orig[start : start + len(cut)])  # a contiguous run
            lengths.add((len(orig), len(cut)))
    assert {(8, 1), (8, 8)} <= lengths  # a single segment and the whole clip both occur


def test_token_dropout_keeps_word_order_and_at_least_one_token():
    seqs = [torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3) for n in (1, 5, 40)]
    kept = drop_tokens(seqs, 0.4, torch.Generator().manual_seed(0))
    assert torch.equal(kept[0], seqs[0])  # a one-token caption keeps its token
    for orig, cut in zip(seqs, kept):
        order = cut[:, 0].long()
        assert 1 <= len(cut) <= len(orig) and torch.equal(cut, orig[order])
        assert bool((order[1:] > order[:-1]).all())  # the words' order is the caption's
    assert 10 <= len(kept[2]) <= 34  # about 60 % of 40 kept
    assert all(len(c) == 1 for c in drop_tokens(seqs, 1.0, torch.Generator()))
    assert all(torch.equal(a, b) for a, b in zip(drop_tokens(seqs, 0.0, torch.Generator()), seqs))


def test_clips_are_heard_in_their_variants_at_the_chance_given():
    seqs = [torch.zeros(2, 3) for _ in range(200)]
    variants = [[torch.full((2, 3), 1.0), torch.full((2, 3), 2.0)] for _ in seqs]
    same, which = heard_in(seqs, variants, 0.0, torch.Generator())
    assert all(a is b for a, b in zip(same, seqs)) and set(which) == {-1}
    heard, which = heard_in(seqs, variants, 0.5, torch.Generator().manual_seed(0))
    picked = [int(s[0, 0]) for s in heard]
    assert 70 <= picked.count(0) <= 130 and picked.count(1) > 30 and picked.count(2) > 30
    assert which == [p - 1 for p in picked]  # the version each row was heard in
    assert all(int(s[0, 0]) > 0 for s in heard_in(seqs, variants, 1.0, torch.Generator())[0])
    assert heard_in(seqs[:1], [[]], 1.0, torch.Generator())[0][0] is seqs[0]  # none: the clip


def test_a_caption_names_the_bed_only_where_its_clip_was_heard_over_one():
    tokens = [torch.zeros(3, 4) for _ in range(4)]
    both = torch.ones(5, 4)
    named = [[None, both], [None, both], [None, None], [both, both]]
    heard = [1, 0, 1, -1]  # over a bed, over no bed, over a bed not named, the clean clip
    out = name_beds(tokens, named, heard, 1.0, torch.Generator())
    assert out[0] is both and all(out[i] is tokens[i] for i in (1, 2, 3))
    assert name_beds(tokens, named, heard, 0.0, torch.Generator())[0] is tokens[0]


def test_every_member_of_a_stage1_ensemble_learns(small_features):
    cfg = load_config(overrides=[*TINY, "model.members=2", "train.epochs=15"])
    seed_everything(0)
    model = RetrievalModel(cfg)
    data = small_features
    before = [
        retrieval_metrics(_member_scores(m, model, data), data.relevant)["mAP@10"]
        for m in model.stage1.members
    ]
    history = train_stage1(model, data, cfg.train)
    assert history[-1]["loss"] < 0.3 * history[0]["loss"]
    for member, was in zip(model.stage1.members, before):
        assert retrieval_metrics(_member_scores(member, model, data), data.relevant)[
            "mAP@10"
        ] > max(0.9, was)


def _member_scores(member, model, data) -> torch.Tensor:
    with torch.no_grad():
        t = member.embed_text(*pad_tokens(model, data.tokens))
        a = member.embed_audio(*pad_segments(model, data.segments))
    return t @ a.T


def test_each_stage_steps_with_its_own_batch_size(small_features, monkeypatch):
    """The shipped recipe gives stage 1 large batches (more negatives) and the reranker its own."""
    from coattn_dist.train import loops

    sizes = []
    real = loops._my_batches
    monkeypatch.setattr(
        loops, "_my_batches", lambda p, size, g: sizes.append(size) or real(p, size, g)
    )
    overrides = [*TINY, "train.epochs=1", "train.rerank_epochs=1", "train.batch_size=12"]
    cfg = load_config(overrides=[*overrides, "train.rerank_batch_size=5"])
    seed_everything(0)
    model = RetrievalModel(cfg)
    train_stage1(model, small_features, cfg.train)
    train_reranker(model, small_features, cfg.train)
    assert sizes == [12, 5]


def test_bed_captions_without_named_versions_is_an_error(small_features):
    cfg = load_config(
        overrides=[*TINY, "train.epochs=1", "train.audio_aug=0.3", "train.bed_captions=1"]
    )
    versions = dataclasses.replace(small_features, variants=[[s] for s in small_features.segments])
    with pytest.raises(ValueError, match="bed_captions"):
        train_stage1(RetrievalModel(cfg), versions, cfg.train)


def test_recording_conditions_without_versions_is_an_error_not_a_silent_no_op(small_features):
    cfg = load_config(overrides=[*TINY, "train.epochs=1", "train.audio_aug=0.3"])
    with pytest.raises(ValueError, match="with_variants"):
        train_stage1(RetrievalModel(cfg), small_features, cfg.train)
