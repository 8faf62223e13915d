"""The failure drill: kill every reranker replica while clients search, and judge each request by
when it was sent. What issue 14 promises and what an operator wants to see before trusting a
deploy: every request answers (stage 1 alone, marked degraded) or is refused with a Retry-After
while Serve brings the reranker back, then full answers again; never a 500, never a hang. Run by
tests/serve/test_resilience.py (asserted) and bench/query_latency.py (measured)."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import ray
import requests

from serve.flow import RERANK_UNAVAILABLE

QUERIES = ("a dog barks", "rain on a roof", "footsteps on gravel", "a door creaks open")


def replica_actors(deployment: str, app: str = "coattn") -> list:
    """The live replicas of one deployment of `app`, as Ray actors."""
    prefix = f"SERVE_REPLICA::{app}#{deployment}#"
    return [
        ray.get_actor(a["name"], namespace=a["namespace"])
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(prefix)
    ]


def running_replicas(app: str = "coattn") -> dict[str, int]:
    """Each deployment's running replicas, as Serve's controller counts them."""
    from ray import serve

    deployments = serve.status().applications[app].deployments
    return {name: d.replica_states.get("RUNNING", 0) for name, d in deployments.items()}


@dataclass
class Request:
    sent_s: float  # after the kill (negative: before it)
    ms: float
    kind: str  # "full", "degraded", "refused" (503 with Retry-After) or what went wrong
    detail: str = ""


def _kind(r: requests.Response) -> tuple[str, str]:
    json_body = r.headers.get("content-type", "").startswith("application/json")
    body = r.json() if json_body else {"detail": f"not JSON: {r.text[:200]}"}
    if r.status_code == 200:
        return ("degraded" if body.get("degraded") == RERANK_UNAVAILABLE else "full"), ""
    if r.status_code == 503 and r.headers.get("retry-after"):
        return "refused", str(body.get("detail"))
    return f"status {r.status_code}", str(body.get("detail"))


def kill_reranker_under_load(
    url: str,
    app: str = "coattn",
    clients: int = 1,
    before_s: float = 3.0,
    after_s: float = 5.0,
    limit_s: float = 120.0,
) -> list[Request]:
    """`clients` well-behaved clients (a 503 is asked again after its Retry-After) search the app
    at `url`; after `before_s` every Reranker replica is killed; the load goes on until /health
    has seen the reranker gone and back (at most `limit_s`) and for `after_s` more."""
    stop = threading.Event()
    # (sent at, ms, kind, detail) of every request; list appends are atomic across threads
    seen: list[tuple[float, float, str, str]] = []

    def client(n: int) -> None:
        i = n
        with requests.Session() as session:
            while not stop.is_set():
                sent = time.monotonic()
                params = {"q": QUERIES[i % len(QUERIES)], "k": 10, "rerank": 50}
                r = session.get(f"{url}/search", params=params, timeout=60)
                kind, detail = _kind(r)
                ms = (time.monotonic() - sent) * 1e3
                seen.append((sent, ms, kind, detail))
                i += clients
                if kind == "refused":
                    time.sleep(float(r.headers["retry-after"]))

    def reranker_health() -> str:
        try:
            return requests.get(f"{url}/health", timeout=10).json()["deployments"]["Reranker"]
        except (requests.RequestException, ValueError, KeyError) as error:
            return f"no health: {error}"

    with ThreadPoolExecutor(clients) as pool:
        load = [pool.submit(client, n) for n in range(clients)]
        time.sleep(before_s)
        killed_at = time.monotonic()
        for actor in replica_actors("Reranker", app):
            ray.kill(actor, no_restart=True)
        gone = False
        while time.monotonic() < killed_at + limit_s:
            healthy = reranker_health() == "ok"
            if gone and healthy:
                break
            # a replacement may be up before a poll sees the gap; a degraded answer saw it
            gone = gone or not healthy or any(kind == "degraded" for _, _, kind, _ in seen)
            time.sleep(0.25)
        time.sleep(after_s)
        stop.set()
        for f in load:
            f.result()  # a client's exception (a hang past its timeout) is the drill's
    return [Request(t - killed_at, ms, kind, detail) for t, ms, kind, detail in sorted(seen)]


def summary(requests_: list[Request]) -> dict:
    """Counts before and after the kill, when degraded answers began and full ones came back."""
    after = [r for r in requests_ if r.sent_s >= 0]
    degraded = [r for r in after if r.kind == "degraded"]
    last_degraded = degraded[-1].sent_s if degraded else 0.0
    full_again = next(
        (r.sent_s for r in after if r.kind == "full" and r.sent_s > last_degraded), None
    )
    return {
        "before_kill": dict(Counter(r.kind for r in requests_ if r.sent_s < 0)),
        "after_kill": dict(Counter(r.kind for r in after)),
        "first_degraded_s": round(degraded[0].sent_s, 2) if degraded else None,
        "full_again_s": round(full_again, 1) if full_again is not None else None,
        "degraded_p50_ms": round(statistics.median(r.ms for r in degraded), 1)
        if degraded
        else None,
    }
