"""The service under stress, against the real app: what the ingress receives (never the
candidates' features), a full queue (503 with Retry-After, at once), a reranker past its deadline
or killed mid-load (stage 1 answers, marked degraded, until it is back), /health per deployment."""

import asyncio
import json
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests
from ray import serve

from coattn_dist.store import Hit
from serve.drill import kill_reranker_under_load, summary
from serve.flow import RERANK_UNAVAILABLE, Deadlines, SearchFlow
from tests.serve.conftest import wait_until

APP = "coattn"


class Recording:
    """A deployment handle that keeps every value its responses deliver to the caller."""

    def __init__(self, handle, received: list):
        self.handle, self.received = handle, received

    def __getattr__(self, method: str):
        return Recording(getattr(self.handle, method), self.received)

    def remote(self, *args, **kwargs):
        return Delivered(self.handle.remote(*args, **kwargs), self.received)


class Delivered:
    def __init__(self, response, received: list):
        self.response, self.received = response, received

    def __await__(self):
        value = yield from self.response.__await__()
        self.received.append(value)
        return value

    def cancel(self):
        self.response.cancel()


def features_in(value) -> int:
    """Candidates carrying segment features anywhere in `value`."""
    if isinstance(value, Hit):
        return int(value.segments is not None)
    if isinstance(value, list | tuple):
        return sum(features_in(v) for v in value)
    return 0


def test_the_ingress_never_receives_the_candidates_features(service, service_args, indexed):
    from coattn_dist.model import RetrievalModel
    from coattn_dist.query.encode import QueryEncoder

    handles = {n: serve.get_deployment_handle(n, APP) for n in ("Retriever", "Reranker")}
    received: list = []
    encode = QueryEncoder.for_model(RetrievalModel.load(service_args["checkpoint"]))
    flow = SearchFlow(
        encode, *(Recording(handles[n], received) for n in ("Retriever", "Reranker")), Deadlines()
    )
    response = asyncio.run(flow.search("a dog barks", 2, 12))
    assert response.status_code == 200
    body = json.loads(response.body)
    assert body["degraded"] is None
    assert all(r["score"] != r["stage1_score"] for r in body["results"])  # reranked
    assert len(received) == 1  # the reranker's top k, and nothing else
    assert features_in(received) == 0
    # What the old relay carried through here: all 12 candidates with their segment features.
    _, vectors = encode(["a dog barks"])
    relayed = asyncio.run(_value(handles["Retriever"].search.remote(vectors[0], 2, 12)))
    assert features_in(relayed) == 12
    assert len(pickle.dumps(received[0])) * 10 < len(pickle.dumps(relayed))


async def _value(response):
    return await response


class Counting:
    """A deployment handle that counts the requests sent through it."""

    def __init__(self, handle):
        self.handle, self.sent = handle, 0

    def __getattr__(self, method: str):
        target = getattr(self.handle, method)

        def remote(*args, **kwargs):
            self.sent += 1
            return target.remote(*args, **kwargs)

        return SimpleNamespace(remote=remote)


@pytest.mark.parametrize("rest_s, asked", [(60.0, 1), (0.0, 3)])
def test_a_failed_reranker_rests_before_it_is_asked_again(service, service_args, rest_s, asked):
    """A dead replica would otherwise cost every search the whole rank deadline."""
    from coattn_dist.model import RetrievalModel
    from coattn_dist.query.encode import QueryEncoder

    retriever, reranker = (serve.get_deployment_handle(n, APP) for n in ("Retriever", "Reranker"))
    reranker = Counting(reranker)
    encode = QueryEncoder.for_model(RetrievalModel.load(service_args["checkpoint"]))
    late = Deadlines(rank_s=0.001, rerank_rest_s=rest_s)  # no reranker answers in time
    flow = SearchFlow(encode, retriever, reranker, late)
    bodies = [json.loads(asyncio.run(flow.search("a dog barks", 2, 12)).body) for _ in range(3)]
    assert [b["degraded"] for b in bodies] == [RERANK_UNAVAILABLE] * 3
    assert all(len(b["results"]) == 2 for b in bodies)  # stage 1 answered every time
    assert reranker.sent == asked


def test_health_reports_every_deployment(service):
    body = requests.get(f"{service}/health", timeout=30).json()
    assert body == {
        "status": "ok",
        "milvus": "ok",
        "deployments": {"Retriever": "ok", "Reranker": "ok"},
    }


@pytest.fixture(scope="module")
def tight(service, service_args):
    """A second deployment of the app: one request in flight and one queued at the ingress, and a
    rerank deadline no reranker meets."""
    from serve.app import application

    small = {"ray_actor_options": {"num_cpus": 0.1}}
    deployments = {
        "Ingress": {
            **small,
            "max_ongoing_requests": 1,
            "max_queued_requests": 1,
            "autoscaling_config": {
                "min_replicas": 1,
                "max_replicas": 1,
                "target_ongoing_requests": 1,
            },
        },
        **{n: small for n in ("Retriever", "Reranker")},
    }
    args = {**service_args, "deadlines": {"rank_s": 0.001}}
    serve.run(application(args, deployments), name="tight", route_prefix="/tight")
    url = f"{service}/tight"
    wait_until(lambda: requests.get(f"{url}/health", timeout=5).status_code == 200, 60)
    yield url
    serve.delete("tight")


def test_a_reranker_past_its_deadline_leaves_stage_one_answering(tight, indexed):
    body = requests.get(f"{tight}/search", params={"q": "a dog barks", "k": 2}, timeout=30).json()
    assert body["degraded"] == RERANK_UNAVAILABLE
    dogs = {c for c, clip in indexed.items() if clip["label"] == "dog"}
    assert {r["clip_id"] for r in body["results"]} == dogs  # stage 1 still finds them
    assert all(r["score"] == r["stage1_score"] for r in body["results"])


def test_a_full_queue_is_refused_at_once_with_retry_after(tight):
    def one(i: int) -> tuple[int, float, str | None]:
        start = time.perf_counter()
        r = requests.get(f"{tight}/search", params={"q": f"rain {i}", "k": 3}, timeout=30)
        return r.status_code, time.perf_counter() - start, r.headers.get("retry-after")

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(48)))
    codes = [c for c, _, _ in answers]
    assert set(codes) == {200, 503}, codes
    refused = [(s, after) for c, s, after in answers if c == 503]
    assert all(after == "1" for _, after in refused)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    answered = median([s for c, s, _ in answers if c == 200])
    print(f"503 median {median([s for s, _ in refused]):.3f} s, 200 median {answered:.3f} s")
    assert median([s for s, _ in refused]) < answered  # refused without waiting in line


def test_reranker_killed_mid_load_answers_degraded_until_it_is_back(service):
    # one client: within what one ingress replica takes in (serve/config.yaml: 2 in flight, 1
    # queued, beside the drill's health polls)
    done = kill_reranker_under_load(service, APP, clients=1)
    seen = summary(done)
    print(seen)
    wrong = [r for r in done if r.kind not in ("full", "degraded", "refused")]
    assert not wrong, wrong  # never a 500, never a 503 without Retry-After
    refused = [r for r in done if r.kind == "refused"]
    assert len(refused) * 4 < len(done), refused  # a moment's shedding, not an outage
    assert seen["before_kill"].get("full", 0) >= 1
    assert seen["first_degraded_s"] is not None  # stage 1 answered while the reranker was gone
    assert seen["full_again_s"] is not None  # and full answers came back with it
    assert done[-1].kind == "full"
