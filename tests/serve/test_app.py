"""The application: its settings, its config file, and that it ranks as `coattn search` does."""

import json

import pytest
import requests
import yaml

from coattn_dist.checkpoints import GENERAL
from coattn_dist.cli import main
from serve.app import CONFIG, DEPLOYMENTS, ServiceArgs
from serve.flow import Deadlines


def test_service_ranks_exactly_as_coattn_search(service, service_args, capsys):
    for query, k, depth in [
        ("a dog barks", 6, 12),
        ("church bells ringing", 4, 8),
        ("a helicopter flies over", 3, 0),
    ]:
        code = main(
            [
                "search",
                "--checkpoint",
                service_args["checkpoint"],
                "--milvus-uri",
                service_args["milvus_uri"],
                "--collection",
                service_args["collection"],
                query,
                "-k",
                str(k),
                "--rerank",
                str(depth),
            ]
        )
        assert code == 0
        cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        http = requests.get(
            f"{service}/search", params={"q": query, "k": k, "rerank": depth}, timeout=60
        ).json()
        assert [r["clip_id"] for r in http["results"]] == [r["clip_id"] for r in cli["results"]]
        assert len(http["results"]) == k
        for ours, theirs in zip(http["results"], cli["results"]):
            assert ours["score"] == pytest.approx(theirs["score"], abs=1e-5)
            assert ours["stage1_score"] == pytest.approx(theirs["stage1_score"], abs=1e-5)


def test_environment_wins_over_config_args(monkeypatch, tmp_path):
    monkeypatch.setenv("COATTN_MILVUS_URI", "http://127.0.0.1:19999")
    monkeypatch.setenv("COATTN_COLLECTION", "from_env")
    monkeypatch.delenv("COATTN_CHECKPOINT", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    args = ServiceArgs.resolve(
        {"checkpoint": "ckpt", "milvus_uri": "http://127.0.0.1:1", "collection": "from_config"}
    )
    assert (args.milvus_uri, args.collection) == ("http://127.0.0.1:19999", "from_env")
    assert args.checkpoint == str(tmp_path / "ckpt")  # replicas do not share our working dir


def test_missing_settings_and_a_lite_file_are_clear_errors(monkeypatch):
    for var in ("COATTN_CHECKPOINT", "COATTN_MILVUS_URI", "COATTN_COLLECTION"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match=r"collection \(or \$COATTN_COLLECTION\)"):
        ServiceArgs.resolve({"checkpoint": "c", "milvus_uri": "http://127.0.0.1:1"})
    with pytest.raises(ValueError, match="Milvus Lite file.*milvus-lite server"):
        ServiceArgs.resolve({"checkpoint": "c", "milvus_uri": "./milvus.db", "collection": "x"})
    with pytest.raises(ValueError, match="query_encoder 'tensorrt': expected one of onnx, "):
        ServiceArgs.resolve(
            {"milvus_uri": "http://127.0.0.1:1", "collection": "x", "query_encoder": "tensorrt"}
        )


def test_config_gives_every_deployment_its_own_autoscaling_on_loopback():
    config = yaml.safe_load(CONFIG.read_text())
    assert config["http_options"]["host"] == "127.0.0.1"
    (app,) = config["applications"]
    assert app["import_path"] == "serve.app:build"
    scaling = {d["name"]: d["autoscaling_config"] for d in app["deployments"]}
    assert scaling.keys() == DEPLOYMENTS.keys()
    for name, config in scaling.items():
        assert 1 <= config["min_replicas"] < config["max_replicas"], name
        assert config["target_ongoing_requests"] > 0, name
    for d in app["deployments"]:  # every queue bounded: a full one refuses instead of waiting
        assert 0 < d["max_queued_requests"] and d["max_ongoing_requests"] > 0, d["name"]
        assert d["autoscaling_config"]["target_ongoing_requests"] <= d["max_ongoing_requests"]
    assert set(app["args"]["deadlines"]) <= set(Deadlines.__dataclass_fields__)
    assert app["args"]["checkpoint"] is None  # the shipped checkpoint
    resolved = ServiceArgs.resolve({**app["args"], "milvus_uri": "http://127.0.0.1:1"})
    assert resolved.checkpoint == str(GENERAL) and resolved.query_encoder == "onnx"


def test_queries_by_sound_rank_as_coattn_search_does(service, service_args, indexed, capsys):
    clip_id = sorted(indexed)[2]
    base = [
        "search",
        "--checkpoint",
        service_args["checkpoint"],
        "--milvus-uri",
        service_args["milvus_uri"],
        "--collection",
        service_args["collection"],
        "-k",
        "5",
    ]
    assert main([*base, "--like", clip_id]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    http = requests.get(f"{service}/search", params={"like": clip_id, "k": 5}, timeout=60).json()
    assert cli["query"] == http["query"] == {"like": clip_id}
    assert [r["clip_id"] for r in http["results"]] == [r["clip_id"] for r in cli["results"]]
    path = str(indexed[clip_id]["path"])
    assert main([*base, "--audio", path]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with open(path, "rb") as f:
        http = requests.post(
            f"{service}/search", files={"audio": (path, f)}, data={"k": 5}, timeout=60
        ).json()
    assert [r["clip_id"] for r in http["results"]] == [r["clip_id"] for r in cli["results"]]
    assert cli["results"][0]["clip_id"] == clip_id
    for ours, theirs in zip(http["results"], cli["results"]):
        assert ours["score"] == pytest.approx(theirs["score"], abs=1e-4)
    # one query at a time, and a clear error for an unknown clip
    assert main([*base, "a dog", "--like", clip_id]) == 2
    assert "give one query" in capsys.readouterr().err
    assert main([*base, "--like", "nope"]) == 2
    assert "no clip 'nope'" in capsys.readouterr().err


def test_a_collection_of_another_checkpoint_is_refused_with_the_reason(service, service_args):
    """The shipped checkpoint pointed at a collection the test's checkpoint indexed: every search,
    reranked or not, says which checkpoint the collection holds, and ranks nothing (vectors of
    another space would rank as noise)."""
    from ray import serve

    from serve.app import run

    one_small = {"ray_actor_options": {"num_cpus": 0.1}, "autoscaling_config": {"max_replicas": 1}}
    url = run(
        {**service_args, "checkpoint": str(GENERAL)},
        dict.fromkeys(("Ingress", "Retriever", "Reranker"), one_small),
        port=int(service.rsplit(":", 1)[1]),
        name="mismatched",
        route_prefix="/mismatched",
    )
    try:
        for rerank in (12, 0):
            response = requests.get(
                f"{url}/search", params={"q": "a dog barks", "rerank": rerank}, timeout=60
            )
            assert response.status_code == 500, response.text
            assert "holds vectors of checkpoint" in response.json()["detail"]
            assert "coattn index --reindex" in response.json()["detail"]
    finally:
        serve.delete("mismatched")
