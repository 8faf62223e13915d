"""`coattn search`: one query against an indexed collection, both stages, results and timings."""

from __future__ import annotations

import argparse
import json
import sys

from coattn_dist.checkpoints import resolve_checkpoint
from coattn_dist.query.search import Searcher
from coattn_dist.store import StoreUnavailable
from jobs.options import STORAGE_HELP, storage_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help='free text, e.g. "a dog barks while rain falls on a roof"')
    p.add_argument(
        "--checkpoint", help="checkpoint folder or URI (default: the shipped general one)"
    )
    p.add_argument(
        "--milvus-uri", required=True, help="Milvus Lite path (./milvus.db) or http://host:19530"
    )
    p.add_argument("--collection", required=True)
    p.add_argument("-k", type=int, default=10, help="results to return")
    p.add_argument(
        "--rerank",
        type=int,
        default=50,
        help="stage-1 candidates the co-attention cascade rescores (0: stage 1 only)",
    )
    p.add_argument("--storage-options", type=storage_options, default={}, help=STORAGE_HELP)


def run(args: argparse.Namespace) -> int:
    try:
        searcher = Searcher.open(
            resolve_checkpoint(args.checkpoint),
            args.milvus_uri,
            args.collection,
            args.storage_options,
        )
        try:
            answer = searcher.search(args.query, k=args.k, rerank_depth=args.rerank)
        finally:
            searcher.close()
    except (ValueError, StoreUnavailable) as error:
        print(f"coattn search: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    print(f"{args.query!r}")
    for rank, r in enumerate(answer.results, 1):
        print(f"  {rank:>2}. {r.score:6.3f}  (stage 1 {r.stage1_score:6.3f})  {r.uri}  {r.label}")
    print(json.dumps(answer.to_dict()), flush=True)
    return 0
