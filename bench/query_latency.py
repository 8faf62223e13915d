"""Query latency of the service: HTTP end to end under load, per stage, and the reranker's cost.

    .venv/bin/python bench/query_latency.py --backend lite --rows 100000
    .venv/bin/python bench/query_latency.py --backend standalone --rows 100000 \
        --milvus-python /tmp/venv-milvus/bin/python      # a venv holding `pip install milvus==2.3.5`
    .venv/bin/python bench/query_latency.py --table --write BENCHMARKS.md

The collection is `milvus_scale`'s (its generator, its insert path and its ANN measurement, run
first): mixtures of real clips' stage-1 vectors with their real segment features. The service is
the real app (`serve.app.run`, serve/config.yaml) on a local Ray with 2 CPUs, serving the checkpoint
whose stage 1 made those vectors, with Serve's fast request path (`runtime.SERVE_FAST_PATH`) and,
side by side on a Ray of its own, without it (one client); clients are threads on the same
machine, over loopback, sending `GET /search?k=10&rerank=50` with varied free-text queries.
After the levels, 64 clients for 30 s (overload) and the failure drill (every reranker replica
killed under load, each request judged full, degraded or refused until Serve brings it back).
Per-stage numbers are the service's own `timings_ms` (the ingress' view: queueing and batching
included). The reranker's cost against depth and cascade is measured in-process on real
candidates from the same collection, one torch thread (what a 1-CPU replica gets), with freshly
initialised cascades (cost does not depend on the weights). Each run writes WORKDIR/query-<backend>-<rows>.json; --table renders all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from milvus_scale import scale_collection, scale_main  # noqa: E402

MARKER = "query_latency"
QUERIES = [
    "a dog barking in the distance",
    "heavy rain pouring down on a roof",
    "someone knocks on a wooden door",
    "a baby is crying",
    "church bells ringing",
    "a helicopter flying overhead",
    "a clock ticking",
    "waves crashing on the shore",
    "birds chirping in the morning",
    "a car horn honking",
    "glass shattering on the floor",
    "footsteps on a wooden floor",
    "a cat meowing",
    "thunder rumbling",
    "a toilet flushing",
    "people clapping",
    "keyboard typing",
    "a siren wailing",
    "wind blowing",
    "a rooster crowing",
]
CONCURRENCY = {1: 60, 8: 160, 32: 320}  # clients -> requests
DEPTHS, CASCADES = (10, 50, 200), ("single", "stacked:2", "iterated:3")
BATCH = 8  # the reranker deployment's max_batch_size


def quantiles(ms: list[float]) -> dict:
    return {f"p{q}": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)}


def load(url: str, clients: int, requests_total: int, k: int = 10, depth: int = 50) -> dict:
    """`requests_total` searches from `clients` threads; latency as each client saw it."""
    done, wall = _searches(url, clients, k, depth, total=requests_total)
    ok = [t for _, code, t in done if code == 200]
    return {
        "clients": clients,
        "requests": len(done),
        "errors": len(done) - len(ok),
        "qps": round(len(done) / wall, 1),
        "latency_ms": quantiles([ms for ms, _, _ in done]),
        "stages_p50_ms": {
            s: round(statistics.median(t[s] for t in ok), 1)
            for s in ("encode", "retrieve", "rerank")
        },
    }


def _searches(
    url: str, clients: int, k: int, depth: int, total=None, seconds=None, honour_retry_after=False
):
    """[(ms, status, timings or None)] from `clients` threads, `total` requests or for `seconds`;
    and the wall time."""
    import requests

    end = time.perf_counter() + (seconds or 0)

    def client(n: int) -> list[tuple[float, int, dict | None]]:
        out = []
        with requests.Session() as session:
            i = n
            while (i < total) if total else (time.perf_counter() < end):
                q = QUERIES[i % len(QUERIES)]
                start = time.perf_counter()
                r = session.get(
                    f"{url}/search", params={"q": q, "k": k, "rerank": depth}, timeout=120
                )
                ms = (time.perf_counter() - start) * 1e3
                out.append((ms, r.status_code, r.json()["timings_ms"] if r.ok else None))
                i += clients
                if r.status_code == 503 and honour_retry_after:  # as a well-behaved client does
                    time.sleep(float(r.headers.get("retry-after", 1)))
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = [r for rs in pool.map(client, range(clients)) for r in rs]
    return done, time.perf_counter() - start


def overload(url: str, clients: int = 64, seconds: float = 30.0) -> dict:
    """`clients` threads for `seconds`: what came back, how fast, and the service right after."""
    import requests

    done, wall = _searches(url, clients, 10, 50, seconds=seconds, honour_retry_after=True)
    codes = Counter(code for _, code, _ in done)
    answered = [ms for ms, code, _ in done if code == 200]
    refused = [ms for ms, code, _ in done if code == 503]
    health = requests.get(f"{url}/health", timeout=30)
    after, _ = _searches(url, 1, 10, 50, total=20)
    return {
        "clients": clients,
        "seconds": seconds,
        "statuses": {str(c): n for c, n in sorted(codes.items())},
        "answered_qps": round(len(answered) / wall, 1),
        "answered_ms": quantiles(answered) if answered else None,
        "refused_ms": quantiles(refused) if refused else None,
        "health_after": health.json()["status"],
        "one_client_after_ms": quantiles([ms for ms, code, _ in after if code == 200]),
    }


def reranker_killed(url: str, clients: int = 2, settle_s: float = 180) -> dict:
    """The failure drill (`serve.drill`) under `clients` well-behaved clients, once the autoscaler
    is back at one replica per deployment after the overload (up to `settle_s`): on 2 CPUs the
    overload's extra ingress replicas hold the CPU a replacement reranker needs, so a drill right
    after it would measure those leftovers, not the failure."""
    from serve.drill import kill_reranker_under_load, running_replicas, summary

    after_overload, start = running_replicas(), time.perf_counter()
    while any(n > 1 for n in running_replicas().values()):
        if time.perf_counter() - start > settle_s:
            break
        time.sleep(2)
    settled = {"after_overload": after_overload, "settled_s": round(time.perf_counter() - start)}
    requests_ = kill_reranker_under_load(url, clients=clients)
    return {"clients": clients, **settled, **summary(requests_), "at_end": running_replicas()}


def in_process(uri: str, checkpoint: str, n: int = 60) -> dict:
    """`coattn search`'s Searcher on the same collection and queries, one at a time: what the
    service adds to the work itself."""
    from coattn_dist.query.search import Searcher

    searcher = Searcher.open(checkpoint, uri, "scale")
    try:
        for q in QUERIES[:4]:
            searcher.search(q, 10, 50)  # warm-up
        ms, stages = [], []
        for i in range(n):
            start = time.perf_counter()
            stages.append(searcher.search(QUERIES[i % len(QUERIES)], 10, 50).timings_ms)
            ms.append((time.perf_counter() - start) * 1e3)
    finally:
        searcher.close()
    return {
        **quantiles(ms),
        "stages_p50_ms": {
            s: round(statistics.median(t[s] for t in stages), 1)
            for s in ("encode", "retrieve", "rerank")
        },
    }


def reranker_cost(uri: str, checkpoint: str, repeats: int = 20) -> dict:
    """ms per query to rerank `depth` real candidates, per cascade, on one thread."""
    import torch

    from coattn_dist.encoders import build_text_encoder
    from coattn_dist.model import RetrievalModel
    from coattn_dist.query.encode import QueryEncoder
    from coattn_dist.query.rerank import rerank_hits
    from coattn_dist.query.retrieve import retrieve
    from coattn_dist.store import ClipStore

    torch.set_num_threads(1)
    trained = RetrievalModel.load(checkpoint)
    tokens, vectors = QueryEncoder(trained, build_text_encoder(trained.cfg.text))(QUERIES[:repeats])
    with ClipStore(uri, "scale", trained.cfg.model.dim) as store:
        hits = [retrieve(store, v[None], max(DEPTHS), max(DEPTHS))[0] for v in vectors]
    out = {}
    for cascade in CASCADES:
        torch.manual_seed(0)
        trained.cfg.model.cascade = cascade
        model = RetrievalModel(trained.cfg).eval()
        for depth in DEPTHS:
            rerank_hits(model, tokens[:1], [hits[0][:depth]], [10])  # warm-up
            ms = []
            for t, h in zip(tokens, hits):
                start = time.perf_counter()
                rerank_hits(model, [t], [h[:depth]], [10])
                ms.append((time.perf_counter() - start) * 1e3)
            out[f"{cascade}@{depth}"] = quantiles(ms)
        # what @serve.batch buys: BATCH queries ranked in one call, per query, at depth 50
        ms = []
        for i in [i for _ in range(3) for i in range(0, len(tokens) - BATCH + 1, BATCH)]:
            start = time.perf_counter()
            rerank_hits(
                model, tokens[i : i + BATCH], [h[:50] for h in hits[i : i + BATCH]], [10] * BATCH
            )
            ms.append((time.perf_counter() - start) * 1e3 / BATCH)
        out[f"{cascade}@50x{BATCH}"] = {"per_query_ms": round(statistics.median(ms), 1)}
    return out


def milvus_top50_ms(uri: str, dim: int, n: int = 30) -> float:
    """Milvus' own top-50 with features (the service's `retrieve`), p50, right before a service
    run: tells a Milvus busy with background work (compaction after a large insert) from a slow
    service."""
    from coattn_dist.query.retrieve import retrieve
    from coattn_dist.store import ClipStore

    vectors = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    ms = []
    with ClipStore(uri, "scale", dim) as store:
        for v in vectors:
            start = time.perf_counter()
            retrieve(store, v[None], 10, 50)
            ms.append((time.perf_counter() - start) * 1e3)
    return round(statistics.median(ms[1:]), 1)


def serve_and_load(
    uri: str, checkpoint: str, fast_path: bool, concurrency: dict[int, int], stress: bool = False
) -> tuple[list[dict], dict]:
    """The service on a fresh local Ray, with Serve's fast request path on or off (read by every
    Serve process when Ray starts, so each setting gets its own Ray); with `stress`, then 64
    clients for 30 s and the failure drill."""
    import ray
    from ray import serve

    from coattn_dist.model import read_config
    from coattn_dist.runtime import SERVE_FAST_PATH, init_ray
    from coattn_dist.store.lite_server import free_port
    from serve.app import run as run_service

    dim = read_config(checkpoint).model.dim
    for name, value in SERVE_FAST_PATH.items():
        os.environ[name] = value if fast_path else "0"
    init_ray(num_cpus=2, log_to_driver=False)
    try:
        url = run_service(
            {"checkpoint": checkpoint, "milvus_uri": uri, "collection": "scale"}, port=free_port()
        )
        load(url, 4, 40)  # warm-up: replicas, connections, caches
        levels = []
        for clients, n in concurrency.items():
            milvus_ms = milvus_top50_ms(uri, dim)
            levels.append({**load(url, clients, n), "milvus_top50_p50_ms": milvus_ms})
            print(
                f"  fast path {'on' if fast_path else 'off'}, {clients} clients: {levels[-1]}",
                file=sys.stderr,
                flush=True,
            )
        stressed = {}
        if stress:
            stressed["overload"] = overload(url, seconds=30)
            print(f"  overload: {stressed['overload']}", file=sys.stderr, flush=True)
            stressed["reranker_killed"] = reranker_killed(url)
            print(f"  reranker killed: {stressed['reranker_killed']}", file=sys.stderr, flush=True)
        return levels, stressed
    finally:
        serve.shutdown()
        ray.shutdown()


def in_own_process(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` in a fresh process: each Serve setting gets a Ray of its own (here a
    second `ray.init` in a process that has run Serve times out on Ray 2.60)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with scale_collection(args, prefix="query-") as (uri, scale, checkpoint):
        print(f"  collection ready: {scale}", file=sys.stderr, flush=True)
        searcher = in_process(uri, checkpoint)
        print(f"  in-process Searcher: {searcher}", file=sys.stderr, flush=True)
        plain, _ = in_own_process(
            serve_and_load, uri, checkpoint, fast_path=False, concurrency={1: CONCURRENCY[1]}
        )
        levels, stressed = in_own_process(
            serve_and_load, uri, checkpoint, fast_path=True, concurrency=CONCURRENCY, stress=True
        )
        cost = reranker_cost(uri, checkpoint)
        # measured again after the service: one run of 60 queries moves by a third on 2 CPUs
        searcher_after = in_process(uri, checkpoint)
        print(f"  in-process Searcher, after: {searcher_after}", file=sys.stderr, flush=True)
    result = {
        "backend": args.backend,
        "rows": args.rows,
        "index": scale["index"],
        "retrieve_top50_segments_ms": scale["search_top50_with_segments"],
        "levels": levels,
        "without_fast_path": plain,
        "searcher": searcher,
        "searcher_after": searcher_after,
        **stressed,
        "reranker": cost,
        "date": str(date.today()),
        "checkpoint": checkpoint.replace(f"{REPO}/", ""),
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
    }
    (args.workdir / f"query-{args.backend}-{args.rows}.json").write_text(
        json.dumps(result, indent=1)
    )


def render(workdir: Path) -> str:
    runs = sorted(
        (json.loads(p.read_text()) for p in workdir.glob("query-*.json")),
        key=lambda r: (r["rows"], r["backend"]),
    )
    lines = [
        "| backend | rows | index | clients | QPS | p50 / p95 / p99 ms | encode / retrieve / "
        "rerank p50 ms | Milvus alone p50 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        for level in r["levels"]:
            lat, st = level["latency_ms"], level["stages_p50_ms"]
            lines.append(
                f"| {r['backend']} | {r['rows']:,} | {r['index']} | {level['clients']} | "
                f"{level['qps']} | {lat['p50']} / {lat['p95']} / {lat['p99']} | "
                f"{st['encode']} / {st['retrieve']} / {st['rerank']} | "
                f"{level.get('milvus_top50_p50_ms', '')} | "
                f"{level['errors']}/{level['requests']} |"
            )
    lines += [
        "",
        "Reranker alone, ms per query (p50 / p99), one torch thread, real candidates:",
        "",
        "| run | " + " | ".join(CASCADES) + " |",
        "| --- |" + " --- |" * len(CASCADES),
    ]
    for r in runs:
        for depth in DEPTHS:
            cells = [
                f"{r['reranker'][f'{c}@{depth}']['p50']} / {r['reranker'][f'{c}@{depth}']['p99']}"
                for c in CASCADES
            ]
            lines.append(
                f"| {r['backend']} {r['rows']:,}, depth {depth} | " + " | ".join(cells) + " |"
            )
        batched = [r["reranker"].get(f"{c}@50x{BATCH}") for c in CASCADES]
        if all(batched):  # runs before the batched forward pass have no such cell
            lines.append(
                f"| {r['backend']} {r['rows']:,}, depth 50, {BATCH} queries per call, "
                "p50 per query | " + " | ".join(str(b["per_query_ms"]) for b in batched) + " |"
            )
    for r in runs:
        if "without_fast_path" in r:  # runs before the fast path have no such cell
            on, off = (
                r["levels"][0]["latency_ms"]["p50"],
                r["without_fast_path"][0]["latency_ms"]["p50"],
            )
            lines += [
                "",
                f"{r['backend']} {r['rows']:,}, one client, p50: {on} ms with Serve's fast "
                f"path, {off} ms without ({off / on:.2f}x)",
            ]
    for r in runs:
        if "searcher" in r:  # runs before the query-service work have no such cell
            one, eight = r["levels"][0], next(v for v in r["levels"] if v["clients"] == 8)
            service = one["latency_ms"]["p50"]
            alones = [r[k]["p50"] for k in ("searcher", "searcher_after") if k in r]
            alone = statistics.mean(alones)  # runs before 2026-12-03 measured it once
            answered = eight["qps"] * (1 - eight["errors"] / eight["requests"])  # 503s excluded
            lines += [
                "",
                f"{r['backend']} {r['rows']:,}, one client, p50: service {service} ms, in-process "
                f"Searcher {' and '.join(map(str, alones))} ms"
                + (" before and after the service" if len(alones) > 1 else "")
                + f" ({service / alone:.2f}x"
                + (" their mean" if len(alones) > 1 else "")
                + f"; Searcher stages "
                f"{r['searcher']['stages_p50_ms']}); answered QPS at 8 clients {answered:.1f} = "
                f"{answered / one['qps']:.2f}x QPS at 1 ({eight['errors']} of "
                f"{eight['requests']} shed with 503)",
            ]
        shed = r.get("overload")
        if shed:
            p99 = shed["answered_ms"]["p99"] if shed["answered_ms"] else None
            lines += [
                "",
                f"{r['backend']} {r['rows']:,}, overload, {shed['clients']} clients for "
                f"{shed['seconds']:.0f} s: statuses {shed['statuses']}; answered "
                f"{shed['answered_qps']}/s, p50 / p99 {shed['answered_ms']['p50']} / {p99} ms "
                f"({p99 / r['levels'][0]['latency_ms']['p99']:.2f}x the one-client p99); "
                f"refused p50 {(shed['refused_ms'] or {}).get('p50')} ms; right after: health "
                f"{shed['health_after']!r}, one client p50 {shed['one_client_after_ms']['p50']} ms",
            ]
        drill = r.get("reranker_killed")
        if drill:
            lines += [
                "",
                f"{r['backend']} {r['rows']:,}, every reranker replica killed under "
                f"{drill['clients']} clients: requests sent before the kill "
                f"{drill['before_kill']}, after it {drill['after_kill']}; first degraded answer "
                f"{drill['first_degraded_s']} s after the kill (p50 {drill['degraded_p50_ms']} "
                f"ms), full answers again from {drill['full_again_s']} s (replicas running after "
                f"the overload {drill.get('after_overload')}, killed {drill.get('settled_s')} s "
                f"later, at the end {drill.get('at_end')})",
            ]
    notes = [
        f"{r['backend']} {r['rows']:,}: {r['date']}, {r['machine']}, checkpoint "
        f"{r['checkpoint']}, Milvus top-50 with features alone p50 "
        f"{r['retrieve_top50_segments_ms']['p50_ms']} ms"
        for r in runs
    ]
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


if __name__ == "__main__":
    scale_main(__doc__, run, render, MARKER)
