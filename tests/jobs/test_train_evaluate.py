"""`coattn train` then `coattn evaluate` end to end on a few real clips: the report agrees with
metrics.json and holds every requested part."""

import json

import pyarrow as pa
from PIL import Image

from coattn_dist.audio.augment import recording
from coattn_dist.cli import main
from coattn_dist.config import TrainConfig
from coattn_dist.data import write_manifest
from coattn_dist.data.formats import read_esc50
from coattn_dist.features import Augmented, FeatureCache, text_key

TINY = [
    "model.dim=64",
    "model.rerank_dim=32",
    "train.epochs=6",
    "train.rerank_epochs=2",
    "train.batch_size=16",
    "train.rerank_batch_size=16",
    "train.patience=3",
]
CLASSES = ["dog", "rain", "church_bells", "crying_baby", "helicopter", "clock_tick"]


def manifests(sample_dir, folder):
    every = read_esc50(str(sample_dir / "meta" / "esc50.csv"), captions="all")
    rows = [r for r in every.to_pylist() if r["label"] in CLASSES]
    first = {}
    for r in rows:
        first.setdefault(r["label"], r["caption"])
    write_manifest(pa.Table.from_pylist(rows, schema=every.schema), str(folder / "train.jsonl"))
    test = [r for r in rows if r["caption"] == first[r["label"]]]
    write_manifest(pa.Table.from_pylist(test, schema=every.schema), str(folder / "test.jsonl"))
    noise = [dict(r, caption="") for r in every.to_pylist() if r["label"] == "wind"]
    write_manifest(pa.Table.from_pylist(noise, schema=every.schema), str(folder / "noise.jsonl"))
    order = [
        {
            "clip_id": test[0]["clip_id"],
            "caption": "a dog barks, then rain is falling",
            "swapped": "rain is falling, then a dog barks",
        }
    ]
    (folder / "order.jsonl").write_text("".join(json.dumps(o) + "\n" for o in order))
    scenes = [dict(r, caption=f"{r['caption']}, then {first['rain']}") for r in test]
    write_manifest(pa.Table.from_pylist(scenes, schema=every.schema), str(folder / "scenes.jsonl"))
    return folder


def warm_cache(folder, features, audio_encoder, text_encoder) -> str:
    """The jobs' feature cache, holding what the session's encoders already made of these clips and
    captions: the jobs read it as they read a cache of their own earlier runs, and the test spends
    its time on training and evaluating rather than on encoding the same audio again. (Encoding
    on Ray Data has its own tests; the noise cells below still encode real audio.)"""
    FeatureCache(folder, audio_encoder.cache_key).add(
        dict(zip(features.clip_ids, features.segments))
    )
    FeatureCache(folder, text_encoder.cache_key).add(
        dict(zip(map(text_key, features.texts), features.tokens))
    )
    return str(folder)


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_then_evaluate(
    sample_dir, tmp_path, capsys, ray_local, small_features, audio_encoder, text_encoder
):
    data = manifests(sample_dir, tmp_path)
    ckpt, report = tmp_path / "ckpt", tmp_path / "report"
    cache = warm_cache(tmp_path / "cache", small_features, audio_encoder, text_encoder)
    assert (
        main(
            [
                "train",
                "--manifest",
                str(data / "train.jsonl"),
                "--val-manifest",
                str(data / "test.jsonl"),
                "--multi-val-manifest",
                str(data / "scenes.jsonl"),
                "--out",
                str(ckpt),
                "--cascades",
                "single,iterated:2",
                "--cache",
                cache,
                "--set",
                *TINY,
                "train.audio_aug=0.3",  # each clip also heard in one drawn recording condition
                "train.audio_aug_versions=1",
                "train.audio_place=0.5",  # ... with the event placed in a longer recording or not
            ]
        )
        == 0
    )
    trained = last_json(capsys)
    assert trained["train_clips"] == 12 and trained["failed"] == 0
    heard = FeatureCache(
        cache, Augmented(audio_encoder, 0, recording(TrainConfig(audio_place=0.5))).cache_key
    ).load()
    assert set(heard) == set(small_features.clip_ids)  # encoded once, cached beside the clean
    assert set(trained["best_val_mAP@10"]) == {"stage1", "single", "iterated:2"}
    fusion = json.loads((ckpt / "train_log.json").read_text())["fusion"]
    for cascade in ("single", "iterated:2"):  # each kind of query chose on its own queries
        assert fusion[cascade]["queries"] == 6 and fusion[cascade]["multi"]["queries"] == 6

    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                f"esc={ckpt}",
                "--manifest",
                f"test={data / 'test.jsonl'}",
                "--report",
                str(report),
                "--rerank",
                "5",
                "--order",
                str(data / "order.jsonl"),
                "--snr",
                "clean,10",
                "--noise",
                "white,real",
                "--noise-clips",
                str(data / "noise.jsonl"),
                "--perturb-text",
                "--cache",
                cache,
            ]
        )
        == 0
    )
    summary = last_json(capsys)
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics["systems"]) == {"stage1", "single", "iterated:2"}
    for m in metrics["systems"].values():
        assert {"R@1", "R@5", "R@10", "mAP@10", "ms_per_query"} <= set(m) and 0 <= m["mAP@10"] <= 1
    assert summary["systems"] == metrics["systems"]
    assert set(metrics["noise"]["esc"]) == {"white", "real"}
    assert set(metrics["noise"]["esc"]["white"]) == {"clean", "10"}
    assert set(metrics["order"]["esc"]) == {"stage1", "single", "iterated:2"}
    assert set(metrics["text_perturbation"]["esc"]) == {"stage1", "single", "iterated:2"}

    md = (report / "report.md").read_text()
    for system, m in metrics["systems"].items():
        assert (
            f"| {system} | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['R@10']:.3f} | {m['mAP@10']:.3f} |"
            in md
        )
    perturbed = metrics["text_perturbation"]["esc"]
    assert "| esc | " + " | ".join(f"{perturbed[s]:.3f}" for s in perturbed) + " |" in md
    for png in ["systems.png", "noise-esc.png"]:
        with Image.open(report / png) as img:
            assert img.format == "PNG" and img.size[0] > 300
