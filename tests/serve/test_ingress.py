"""The HTTP API over a real deployment: answers, every malformed request, audio, a Milvus outage."""

import numpy as np
import pytest
import requests

from coattn_dist.data import clip_id_for
from coattn_dist.model import read_config
from coattn_dist.store import ClipStore
from tests.serve.conftest import COLLECTION


def search(service: str, **params) -> requests.Response:
    return requests.get(f"{service}/search", params=params, timeout=60)


def test_a_description_finds_its_sounds_with_both_scores_and_timings(service, indexed):
    response = search(service, q="a dog barks", k=2, rerank=12)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == "a dog barks"
    dogs = {c for c, clip in indexed.items() if clip["label"] == "dog"}
    assert {r["clip_id"] for r in body["results"]} == dogs  # one on local disk, one in S3
    for r in body["results"]:
        assert r["uri"] == indexed[r["clip_id"]]["uri"] and r["label"] == "dog"
        assert -1.0 <= r["stage1_score"] <= 1.0 and r["score"] != r["stage1_score"]
    assert body["results"][0]["score"] >= body["results"][1]["score"]
    timings = body["timings_ms"]
    assert set(timings) == {"encode", "retrieve", "rerank", "total"}
    assert timings["total"] >= timings["encode"] + timings["retrieve"] + timings["rerank"] - 0.1 > 0


def test_rerank_zero_ranks_by_stage_one_alone(service):
    body = search(service, q="rain falling", k=12, rerank=0).json()
    assert len(body["results"]) == 12
    assert all(r["score"] == r["stage1_score"] for r in body["results"])
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "params, field",
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 501}, "q"),
        ({"q": "dog", "k": 0}, "k"),
        ({"q": "dog", "k": 101}, "k"),
        ({"q": "dog", "k": "ten"}, "k"),
        ({"q": "dog", "rerank": -1}, "rerank"),
        ({"q": "dog", "rerank": 501}, "rerank"),
        ({"q": "dog", "rerank": 2.5}, "rerank"),
    ],
)
def test_malformed_requests_get_422_with_a_message(service, params, field):
    response = search(service, **params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.startswith(f"{field}: ")


def test_audio_streams_from_local_disk_and_from_s3(service, indexed):
    for clip_id, clip in indexed.items():
        response = requests.get(f"{service}/audio/{clip_id}", timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/flac"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == clip["path"].read_bytes()
    assert sum(c["uri"].startswith("s3://") for c in indexed.values()) == 1


def test_audio_of_unknown_or_malformed_ids(service):
    assert (
        requests.get(f"{service}/audio/{clip_id_for('/nowhere.flac')}", timeout=30).status_code
        == 404
    )
    response = requests.get(f"{service}/audio/bad%22id", timeout=30)
    assert response.status_code == 422 and "clip_id" in response.json()["detail"]


def test_audio_refuses_rows_pointing_outside_the_roots(
    service, indexed, milvus, trained_checkpoint, sample_dir
):
    """Rows an attacker (or a careless manifest) planted in the collection: each a 404 that names
    no path, while the indexed clips stream as before."""
    hostile = [
        "file:///etc/passwd",
        "/etc/passwd",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/x.wav",
        "simplecache::s3://serve-audio/x.flac",
        f"{sample_dir}/audio/../../../../etc/passwd.flac",
        f"{sample_dir}/audio/page.html",
        f"{sample_dir}/meta/esc50.csv",
        "s3://serve-audio-private/x.flac",
        "memory://serve-audio/x.flac",
    ]
    dim = read_config(trained_checkpoint).model.dim
    some = next(iter(indexed))
    with ClipStore(milvus.uri, COLLECTION, dim) as store:
        segments = store.fetch([some])[some].segments
        rows = [
            {
                "clip_id": clip_id_for(uri),
                "vector": np.full(dim, dim**-0.5, np.float32),
                "uri": uri,
                "label": "planted",
                "segments": segments,
            }
            for uri in hostile
        ]
        store.upsert(rows)
        try:
            for row in rows:
                response = requests.get(f"{service}/audio/{row['clip_id']}", timeout=30)
                assert response.status_code == 404, row["uri"]
                assert response.headers["content-type"] == "application/json"
                assert "etc" not in response.text and "serve-audio" not in response.text
            assert requests.get(f"{service}/audio/{some}", timeout=30).status_code == 200
        finally:
            store.delete([r["clip_id"] for r in rows])
            store.flush()


def test_milvus_outage_is_a_503_and_the_service_recovers_without_restart(
    service, milvus, indexed, poll
):
    milvus.stop()
    try:
        response = search(service, q="a dog barks", k=2)
        assert response.status_code == 503
        assert "unavailable" in response.json()["detail"] and response.headers["retry-after"]
        health = requests.get(f"{service}/health", timeout=30)
        assert health.status_code == 503 and health.json()["milvus"] == "unavailable"
    finally:
        milvus.start()

    def answers() -> requests.Response | None:
        """the service answers a search again"""
        response = search(service, q="a dog barks", k=2)
        return response if response.status_code == 200 else None

    body = poll(answers, 60).json()
    dogs = {c for c, clip in indexed.items() if clip["label"] == "dog"}
    assert {r["clip_id"] for r in body["results"]} == dogs
    health = requests.get(f"{service}/health", timeout=30).json()
    assert (health["status"], health["milvus"]) == ("ok", "ok")
