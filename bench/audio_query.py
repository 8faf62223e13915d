"""Queries by sound beside queries by words, one client, same collection: in process (`Searcher`)
and through the service (`serve.app.run` on a local Ray with 2 CPUs, Serve's fast path on).

    .venv/bin/python bench/audio_query.py --backend lite --rows 2000
    .venv/bin/python bench/audio_query.py --table --write BENCHMARKS.md

The collection is `milvus_scale`'s (mixtures of real clips' stage-1 vectors with their real segment
features). Words: `query_latency.QUERIES`, k=10, rerank 50. More like this: indexed ids, k=10,
rerank 50 (the rescoring depth). Upload: the real 5-s ESC-50 clips of the repo's sample, POSTed
as multipart (`coattn search --audio` in process). The three kinds alternate request by request,
so a drift in the machine's load touches all alike. Writes WORKDIR/audio-<backend>-<rows>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from milvus_scale import scale_collection, scale_main  # noqa: E402
from query_latency import QUERIES, quantiles  # noqa: E402

MARKER = "audio_query"
SAMPLE = REPO / "samples" / "esc50" / "audio"
KINDS = ("words", "like", "upload")
N = 40  # requests per kind


def sounds() -> list[tuple[str, bytes]]:
    files = sorted(SAMPLE.glob("*.flac"))[:N]
    return [(f.name, f.read_bytes()) for f in files]


def summary(ms: list[float], stages: list[dict]) -> dict:
    names = sorted({s for t in stages for s in t if s != "total"})
    return {
        **quantiles(ms),
        "stages_p50_ms": {
            s: round(statistics.median(t.get(s, 0.0) for t in stages), 1) for s in names
        },
    }


def alternate(calls: dict, n: int = N) -> dict:
    """Each kind's `calls[kind](i)` -> timings, interleaved; ms as the caller saw it."""
    for kind in KINDS:  # warm-up
        calls[kind](0)
    ms, stages = {k: [] for k in KINDS}, {k: [] for k in KINDS}
    for i in range(n):
        for kind in KINDS:
            start = time.perf_counter()
            stages[kind].append(calls[kind](i))
            ms[kind].append((time.perf_counter() - start) * 1e3)
    return {kind: summary(ms[kind], stages[kind]) for kind in KINDS}


def in_process(uri: str, checkpoint: str, ids: list[str], files) -> dict:
    from coattn_dist.query.search import Searcher

    searcher = Searcher.open(checkpoint, uri, "scale")
    try:
        return alternate(
            {
                "words": lambda i: searcher.search(QUERIES[i % len(QUERIES)], 10, 50).timings_ms,
                "like": lambda i: searcher.like(ids[i % len(ids)], 10, 50).timings_ms,
                "upload": lambda i: (
                    searcher.search_sound(
                        files[i % len(files)][1], files[i % len(files)][0], 10, 50
                    ).timings_ms
                ),
            }
        )
    finally:
        searcher.close()


def through_service(uri: str, checkpoint: str, ids: list[str], files) -> dict:
    import ray
    import requests
    from ray import serve

    from coattn_dist.runtime import init_ray
    from coattn_dist.store.lite_server import free_port
    from serve.app import run as run_service

    init_ray(num_cpus=2, log_to_driver=False)
    try:
        url = run_service(
            {"checkpoint": checkpoint, "milvus_uri": uri, "collection": "scale"}, port=free_port()
        )
        with requests.Session() as http:

            def get(params: dict) -> dict:
                r = http.get(f"{url}/search", params={"k": 10, "rerank": 50, **params}, timeout=60)
                r.raise_for_status()
                return r.json()["timings_ms"]

            def post(i: int) -> dict:
                name, data = files[i % len(files)]
                r = http.post(
                    f"{url}/search", files={"audio": (name, data)}, data={"k": 10}, timeout=60
                )
                r.raise_for_status()
                return r.json()["timings_ms"]

            return alternate(
                {
                    "words": lambda i: get({"q": QUERIES[i % len(QUERIES)]}),
                    "like": lambda i: get({"like": ids[i % len(ids)]}),
                    "upload": post,
                }
            )
    finally:
        serve.shutdown()
        ray.shutdown()


def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from coattn_dist.model import read_config
    from coattn_dist.runtime import SERVE_FAST_PATH
    from coattn_dist.store import ClipStore

    os.environ.update(SERVE_FAST_PATH)
    files = sounds()
    with scale_collection(args, prefix="audio-") as (uri, scale, checkpoint):
        with ClipStore(uri, "scale", read_config(checkpoint).model.dim) as store:
            ids = sorted(store.all_ids())[:: max(1, args.rows // N)][:N]
        searcher = in_process(uri, checkpoint, ids, files)
        print(f"  in process: {searcher}", file=sys.stderr, flush=True)
        service = through_service(uri, checkpoint, ids, files)
        print(f"  service: {service}", file=sys.stderr, flush=True)
    result = {
        "backend": args.backend,
        "rows": args.rows,
        "index": scale["index"],
        "searcher": searcher,
        "service": service,
        "like_fusion": read_config(checkpoint).model.like_fusion,
        "date": str(date.today()),
        "checkpoint": checkpoint.replace(f"{REPO}/", ""),
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
    }
    (args.workdir / f"audio-{args.backend}-{args.rows}.json").write_text(
        json.dumps(result, indent=1)
    )


def render(workdir: Path) -> str:
    runs = sorted(
        (json.loads(p.read_text()) for p in workdir.glob("audio-*.json")),
        key=lambda r: (r["rows"], r["backend"]),
    )
    lines = [
        "| collection | query | path | p50 / p95 / p99 ms | stages p50 ms | p50 vs words |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        for path in ("searcher", "service"):
            words = r[path]["words"]["p50"]
            for kind in KINDS:
                m = r[path][kind]
                stages = ", ".join(f"{s} {v}" for s, v in m["stages_p50_ms"].items())
                lines.append(
                    f"| {r['backend']} {r['rows']:,} ({r['index']}) | {kind} | "
                    f"{'in process' if path == 'searcher' else 'service'} | "
                    f"{m['p50']} / {m['p95']} / {m['p99']} | {stages} | "
                    f"{m['p50'] / words:.2f}x |"
                )
    notes = [
        f"{r['backend']} {r['rows']:,}: {r['date']}, {r['machine']}, checkpoint "
        f"{r['checkpoint']} (like_fusion {r['like_fusion']})"
        for r in runs
    ]
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


if __name__ == "__main__":
    scale_main(__doc__, run, render, MARKER)
