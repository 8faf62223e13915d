"""The main job end to end on the embedded default: the ESC-50 sample that ships with the repo.

Indexes the sample's clips into a Milvus Lite server with `coattn index`'s job, using the shipped
general checkpoint (or --checkpoint), answers a few free-text queries worded unlike any caption
with `coattn search`'s searcher, then (unless --no-serve) serves the query service and its search
page on loopback until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path

from coattn_dist.checkpoints import resolve_checkpoint
from coattn_dist.pipeline.reader import list_manifest
from coattn_dist.pipeline.runner import run_index
from coattn_dist.query.search import Searcher
from coattn_dist.runtime import init_ray
from coattn_dist.store.lite_server import milvus_lite_server

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "esc50"
QUERIES = [
    "a dog barking in the distance",
    "heavy rain pouring down",
    "someone knocks on a door",
    "a baby is crying",
    "bells ringing from a church tower",
]
COLLECTION = "demo"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sample", default=str(SAMPLE), help="an ESC-50 style folder (meta/ + audio/)")
    p.add_argument("--out", default="runs/demo", help="where the Milvus data and failures go")
    p.add_argument(
        "--checkpoint", help="checkpoint folder or URI (default: the shipped general one)"
    )
    p.add_argument("-k", type=int, default=3, help="results per query")
    p.add_argument("--rerank", type=int, default=20, help="stage-1 candidates the cascade rescores")
    p.add_argument("--query", action="append", help="a query to answer (repeatable)")
    p.add_argument("--no-serve", action="store_true", help="stop after answering: no service")
    p.add_argument("--port", type=int, help="the service's port (default: serve/config.yaml's)")


def answer(searcher: Searcher, queries: list[str], k: int, rerank: int) -> dict[str, list[str]]:
    """Print each query's top clips with their labels; return the file names. All queries go
    through the searcher as one batch: one encode, one Milvus search, one rerank pass."""
    answers = {}
    for query, answer in zip(queries, searcher.search_batch(queries, k=k, rerank_depth=rerank)):
        results = answer.results
        answers[query] = [Path(r.uri).name for r in results]
        print(f"\n{query!r}", flush=True)
        for rank, r in enumerate(results, 1):
            print(f"  {rank}. {Path(r.uri).name:<24} {r.label or ''}", flush=True)
    return answers


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    checkpoint = resolve_checkpoint(args.checkpoint)
    out = Path(args.out).resolve()
    init_ray()
    with milvus_lite_server(out / "milvus") as milvus_uri:
        indexed = run_index(
            list_manifest(str(Path(args.sample) / "meta" / "esc50.csv")),
            checkpoint,
            milvus_uri,
            COLLECTION,
            str(out / "failures.parquet"),
        )
        searcher = Searcher.open(checkpoint, milvus_uri, COLLECTION)
        try:
            answers = answer(searcher, args.query or QUERIES, args.k, args.rerank)
        finally:
            searcher.close()
        summary = {
            "clips": indexed.indexed + indexed.skipped,
            "failed": indexed.failed,
            "checkpoint": checkpoint,
            "answers": answers,
            "seconds": round(time.monotonic() - start, 1),
        }
        if args.no_serve:
            print(json.dumps(summary), flush=True)
            return 0
        return serve_sample(args, summary, milvus_uri)


def serve_sample(args: argparse.Namespace, summary: dict, milvus_uri: str) -> int:
    """Serve the indexed sample until Ctrl-C (or SIGTERM)."""
    from ray import serve

    from serve.app import run as run_service

    url = run_service(
        {"checkpoint": summary["checkpoint"], "milvus_uri": milvus_uri, "collection": COLLECTION},
        port=args.port,
    )
    # stop in order (Serve, then Milvus) on Ctrl-C or SIGTERM; SIGINT is set explicitly since a
    # process started in the background (`cmd &` in a script) inherits it ignored; and before the
    # URL is out, since whoever reads it may stop the demo at once
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        print(
            f"\nsearch page: {url}/   API: {url}/search?q=a+dog+barks   (Ctrl-C stops)", flush=True
        )
        print(json.dumps({**summary, "url": url}), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping the service", flush=True)
    finally:
        serve.shutdown()
    return 0


def _interrupt(*_) -> None:
    raise KeyboardInterrupt
