"""The service against a Milvus with authentication: its replicas take COATTN_MILVUS_TOKEN from
their own environment (a cluster's secret, here Ray's runtime_env), never from the app's args."""

import requests
from ray import serve

from coattn_dist.pipeline.reader import list_folder
from coattn_dist.pipeline.runner import run_index
from coattn_dist.store.milvus import TOKEN_ENV
from tests.harness.servers import MILVUS_ROOT_TOKEN

COLLECTION = "served_with_auth"


def test_the_service_searches_a_milvus_with_authentication(
    service, service_args, milvus_with_auth, sample_dir, trained_checkpoint, tmp_path, monkeypatch
):
    monkeypatch.setenv(TOKEN_ENV, MILVUS_ROOT_TOKEN)
    listing = list_folder(str(sample_dir / "audio"))
    summary = run_index(
        listing.slice(0, 4), trained_checkpoint, milvus_with_auth, COLLECTION,
        str(tmp_path / "failures.parquet"), batch_size=4, num_workers=1,
    )  # fmt: skip
    assert summary.indexed == 4

    from serve.app import run

    secret = {"ray_actor_options": {"runtime_env": {"env_vars": {TOKEN_ENV: MILVUS_ROOT_TOKEN}}}}
    small = {"ray_actor_options": {"num_cpus": 0.25}, "autoscaling_config": {"max_replicas": 1}}
    args = {**service_args, "milvus_uri": milvus_with_auth, "collection": COLLECTION}
    assert MILVUS_ROOT_TOKEN not in str(args)
    port = int(service.rsplit(":", 1)[1])
    reranker = {
        **small,
        "ray_actor_options": {**small["ray_actor_options"], **secret["ray_actor_options"]},
    }
    deployments = {"Retriever": secret, "Reranker": reranker}  # both read Milvus
    url = run(args, deployments, port=port, name="coattn-auth", route_prefix="/auth")
    try:
        response = requests.get(f"{url}/search", params={"q": "a dog barks", "k": 4}, timeout=120)
        assert response.status_code == 200, response.text
        assert {r["uri"] for r in response.json()["results"]} == set(
            listing.slice(0, 4)["uri"].to_pylist()
        )
        assert requests.get(f"{service}/health", timeout=30).status_code == 200  # the other app
    finally:
        serve.delete("coattn-auth")
