"""A bounded load test on loopback: under load the reranker scales out from one replica, with no
error but the ingress' load shedding (503), and back down to one when the load stops (the test's autoscaling delays are short:
see TEST_DEPLOYMENTS in conftest.py)."""

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from ray import serve

CLIENTS = 16
QUERIES = [
    "a dog barks",
    "rain on a roof",
    "church bells",
    "a baby cries",
    "a clock ticks",
    "a helicopter passes",
]


def running_rerankers() -> int:
    deployment = serve.status().applications["coattn"].deployments["Reranker"]
    return deployment.replica_states.get("RUNNING", 0)


def test_reranker_scales_out_under_load_and_back_in(service, poll):
    assert poll(lambda: running_rerankers() == 1, 45)
    stop, statuses, lock = threading.Event(), Counter(), threading.Lock()

    def client(n: int) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                q = QUERIES[n % len(QUERIES)]
                code = session.get(
                    f"{service}/search", params={"q": q, "k": 5, "rerank": 12}, timeout=60
                ).status_code
                with lock:
                    statuses[code] += 1

    start = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for n in range(CLIENTS):
            pool.submit(client, n)
        try:
            peak = poll(lambda: running_rerankers() if running_rerankers() > 1 else None, 60)
        finally:
            stop.set()
    scaled_out_s = time.monotonic() - start
    poll(lambda: running_rerankers() == 1, 45)
    assert peak >= 2, peak
    assert statuses[200] > 0 and set(statuses) <= {200, 503}, statuses  # answers or shed load
    print(
        f"reranker: 1 -> {peak} replicas after {scaled_out_s:.0f} s under {CLIENTS} clients "
        f"({statuses[200]} answers), back to 1 in {time.monotonic() - start - scaled_out_s:.0f} s"
    )
