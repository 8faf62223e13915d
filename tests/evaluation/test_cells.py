"""Evaluation cells on a tiny model and encoders in miniature: which systems a cell scores, what
it reports for each, and how noise and perturbed text enter it."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from coattn_dist.config import load_config
from coattn_dist.data import manifest_table
from coattn_dist.data.formats import read_esc50
from coattn_dist.evaluation.cells import (
    STAGE1,
    NoisyEncoder,
    evaluate_systems,
    load_noise,
    load_systems,
    metrics_for,
    noisy_cell,
    order_accuracy,
    perturbed_text_cell,
    without_labels,
)
from coattn_dist.features import Features, build_features
from coattn_dist.model import RetrievalModel
from coattn_dist.noise import snr_db

AUDIO_DIM, TEXT_DIM = 8, 6
TINY = [
    f"model.audio_dim={AUDIO_DIM}",
    f"model.text_dim={TEXT_DIM}",
    "model.dim=16",
    "model.rerank_dim=8",
    "model.heads=2",
    "model.dropout=0.0",
]
METRICS = {
    "R@1",
    "R@5",
    "R@10",
    "mAP@10",
    "mAP@10_dcase",
    "mAP@10_multi",
    "clip_accuracy",
    "ms_per_query",
}
ESC50 = Path(__file__).resolve().parents[2] / "samples" / "esc50"


def tiny(cascade: str = "single") -> RetrievalModel:
    torch.manual_seed(0)
    return RetrievalModel(load_config(overrides=[*TINY, f"model.cascade={cascade}"])).eval()


class WordEncoder:
    """A text encoder in miniature: a fixed vector per word, scaled by its place in the caption
    as a contextual encoder would change it. `ordered=False` sorts the words first, so a caption
    and its order-swapped twin get the very same tokens."""

    dim = TEXT_DIM

    def __init__(self, ordered: bool = True):
        self.ordered = ordered

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [re.findall(r"\w+", t) for t in texts]
        rows = rows if self.ordered else [sorted(words) for words in rows]
        tokens = torch.zeros(len(rows), max(map(len, rows)), TEXT_DIM)
        mask = torch.zeros(tokens.shape[:2], dtype=torch.bool)
        for i, words in enumerate(rows):
            for j, word in enumerate(words):
                seed = int(hashlib.sha1(word.encode()).hexdigest()[:8], 16)
                vector = np.random.default_rng(seed).standard_normal(TEXT_DIM)
                tokens[i, j] = torch.tensor(vector * (1.5 + np.sin(j + np.arange(TEXT_DIM))))
                mask[i, j] = True
        return tokens, mask


class BandEncoder:
    """An audio encoder in miniature: log energy in AUDIO_DIM frequency bands of each third of a
    clip, three segments per clip."""

    sample_rate, dim = 16000, AUDIO_DIM

    def __call__(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        out = []
        for wave in waves:
            power = [np.abs(np.fft.rfft(part)) ** 2 for part in np.array_split(wave, 3)]
            bands = [[np.log1p(b.sum()) for b in np.array_split(p, AUDIO_DIM)] for p in power]
            out.append(torch.tensor(bands, dtype=torch.float32))
        return out


class Passthrough:
    """Returns the waves it is given, to look at what NoisyEncoder mixed."""

    sample_rate, dim = 16000, 1

    def __call__(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        return [torch.from_numpy(w) for w in waves]


@pytest.fixture(scope="module")
def features() -> Features:
    """Six clips and six captions in feature space, caption i describing clip i."""
    g = torch.Generator().manual_seed(0)
    texts = [f"caption {i}" for i in range(6)]
    return Features(
        [f"c{i}" for i in range(6)],
        [f"/x/c{i}.flac" for i in range(6)],
        [torch.randn(3, AUDIO_DIM, generator=g) for _ in range(6)],
        texts,
        [torch.randn(4, TEXT_DIM, generator=g) for _ in range(6)],
        torch.eye(6, dtype=torch.bool),
    )


@pytest.fixture(scope="module")
def systems(tmp_path_factory) -> dict[str, RetrievalModel]:
    uri = str(tmp_path_factory.mktemp("ckpt") / "checkpoint")
    tiny("single").save(uri)
    tiny("stacked:2").save_reranker(uri)
    return load_systems(uri, ["single", "stacked:2"])


@pytest.fixture(scope="module")
def esc50_four():
    """Four real clips of two classes with their canonical captions."""
    table = read_esc50(str(ESC50 / "meta" / "esc50.csv"))
    dogs = [i for i, label in enumerate(table["label"].to_pylist()) if label == "dog"][:2]
    rain = [i for i, label in enumerate(table["label"].to_pylist()) if label == "rain"][:2]
    return table.take(dogs + rain)


def test_systems_are_stage1_and_each_cascade_on_one_stage1(tmp_path, systems):
    assert list(systems) == [STAGE1, "single", "stacked:2"]
    assert systems["stacked:2"].cfg.model.cascade == "stacked:2"
    first = systems[STAGE1].stage1.state_dict()
    for name in ("single", "stacked:2"):
        for key, value in systems[name].stage1.state_dict().items():
            assert torch.equal(value, first[key]), (name, key)
    uri = str(tmp_path / "checkpoint")
    tiny("iterated:2").save(uri)
    alone = load_systems(uri, [])
    assert list(alone) == [STAGE1] and alone[STAGE1].cfg.model.cascade == "iterated:2"


def test_metrics_time_the_reranker_only(systems, features):
    out = evaluate_systems(systems, features, depth=3)
    assert list(out) == list(systems)
    for name, metrics in out.items():
        assert set(metrics) == METRICS
        assert all(0.0 <= v <= 1.0 for k, v in metrics.items() if k != "ms_per_query"), name
    assert out[STAGE1]["ms_per_query"] == 0.0
    assert out["single"]["ms_per_query"] > 0.0 and out["stacked:2"]["ms_per_query"] > 0.0
    # the name decides: stage 1 of a cascade's model scores as stage 1 does
    again = metrics_for(systems["single"], STAGE1, features, depth=3)
    assert again == out[STAGE1]


def scenes(features: Features) -> list[dict]:
    """Three scenes of the set's clips, and one of a clip the set lacks."""
    pairs = [
        ("a dog barks", "rain falls"),
        ("a bell rings", "a baby cries"),
        ("someone knocks", "a clock ticks"),
        ("x", "y"),
    ]
    ids = [*features.clip_ids[:3], "not-in-the-set"]
    return [
        {"clip_id": cid, "caption": f"{a}, then {b}", "swapped": f"{b}, then {a}"}
        for cid, (a, b) in zip(ids, pairs)
    ]


def test_order_accuracy_counts_each_scene_on_one_side(systems, features):
    order = scenes(features)
    forward = order_accuracy(systems, WordEncoder(), features, order)
    flipped = [{**r, "caption": r["swapped"], "swapped": r["caption"]} for r in order]
    backward = order_accuracy(systems, WordEncoder(), features, flipped)
    assert list(forward) == list(systems)
    for name in systems:  # no ties: a scene the system gets right one way it gets wrong the other
        assert forward[name] + backward[name] == pytest.approx(1.0), name
        thirds = forward[name] * 3  # the scene of a clip the set lacks is skipped
        assert thirds == pytest.approx(round(thirds))


def test_order_accuracy_counts_a_tie_as_a_miss(systems, features):
    blind = order_accuracy(systems, WordEncoder(ordered=False), features, scenes(features))
    assert blind == {name: 0.0 for name in systems}


def test_without_labels_drops_noise_classes_and_scenes_that_contain_them():
    table = manifest_table(
        ["a", "b", "c", "d"],
        ["/a", "/b", "/c", "/d"],
        ["x"] * 4,
        ["dog", "rain | dog", "rain", None],
    )
    kept = without_labels(table, {"rain", "wind"})
    assert kept["clip_id"].to_pylist() == ["a", "d"]


@pytest.mark.parametrize("kind", ["white", "pink", "real"])
def test_noisy_encoder_mixes_at_the_snr_and_repeats_with_the_seed(kind):
    rng = np.random.default_rng(0)
    clean = [rng.standard_normal(n).astype(np.float32) for n in (1600, 800)]
    short = [np.sin(np.arange(100) / 3).astype(np.float32)]  # looped to each clip's length
    mixed = NoisyEncoder(Passthrough(), kind, 10.0, short, seed=1)(clean)
    for c, m in zip(clean, mixed):
        assert snr_db(c, m.numpy()) == pytest.approx(10.0, abs=1e-3)
    again = NoisyEncoder(Passthrough(), kind, 10.0, short, seed=1)(clean)
    assert all(torch.equal(m, a) for m, a in zip(mixed, again))
    if kind == "real":
        residual = mixed[0].numpy() - clean[0]
        assert np.allclose(residual[100:200], residual[:100], atol=1e-5)


def test_load_noise_reports_a_broken_clip(tmp_path, esc50_four):
    (tmp_path / "broken.wav").write_bytes(b"not audio at all" * 10)
    table = manifest_table(
        ["broken", *esc50_four["clip_id"].to_pylist()[:1]],
        [str(tmp_path / "broken.wav"), esc50_four["audio"][0].as_py()],
        ["", ""],
        ["wind", "dog"],
    )
    waves, failures = load_noise(table, 16000)
    assert len(waves) == 1 and len(waves[0]) == 5 * 16000
    assert [(f.clip_id, f.kind) for f in failures] == [("broken", "not_audio")]


def test_noisy_cell_scores_every_checkpoint_on_one_noisy_embedding(systems, esc50_four):
    noise = [np.random.default_rng(0).standard_normal(16000).astype(np.float32)]
    out = noisy_cell(
        {"a": systems, "b": systems},
        BandEncoder(),
        WordEncoder(),
        esc50_four,
        "real",
        200.0,
        noise,
        depth=2,
    )
    assert list(out) == ["a", "b"] and out["a"] == out["b"]
    clean = build_features(BandEncoder(), WordEncoder(), esc50_four)
    # at 200 dB the noise is far below float precision: the clean collection's numbers
    assert out["a"] == {n: m["mAP@10"] for n, m in evaluate_systems(systems, clean, 2).items()}


def test_perturbed_text_cell_is_repeatable_with_its_seed(systems, features):
    one = perturbed_text_cell(systems, WordEncoder(), features, depth=3, seed=4)
    assert list(one) == list(systems) and all(0.0 <= v <= 1.0 for v in one.values())
    assert perturbed_text_cell(systems, WordEncoder(), features, depth=3, seed=4) == one
