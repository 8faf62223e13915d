"""`coattn search`: one query against an indexed collection, both stages, results and timings.
The query is words, an indexed clip (`--like CLIP_ID`: more like this one) or a sound file
(`--audio FILE`, a path or URI; decoded as the index job decodes, nothing stored)."""

from __future__ import annotations

import argparse
import json
import sys

from coattn_dist.audio import AudioError, read_limited
from coattn_dist.checkpoints import resolve_checkpoint
from coattn_dist.query.answer import Answer
from coattn_dist.query.encode import RUNTIMES
from coattn_dist.query.search import Searcher
from coattn_dist.query.sound import UPLOAD_LIMITS
from coattn_dist.store import StoreUnavailable
from jobs.options import STORAGE_HELP, storage_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "query", nargs="?", help='free text, e.g. "a dog barks while rain falls on a roof"'
    )
    p.add_argument(
        "--like", metavar="CLIP_ID", help="instead of words: clips like this indexed one"
    )
    p.add_argument("--audio", metavar="FILE", help="instead of words: clips like this sound file")
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
        help="stage-1 candidates the second stage rescores (0: stage 1 only)",
    )
    p.add_argument(
        "--query-encoder",
        choices=RUNTIMES,
        default="onnx",
        help="what encodes the words on a CPU: onnx (ranks as torch does), onnx-int8 (faster, "
        "may swap near-ties) or torch",
    )
    p.add_argument("--storage-options", type=storage_options, default={}, help=STORAGE_HELP)


def _answer(searcher: Searcher, args: argparse.Namespace) -> Answer:
    if args.like is not None:
        return searcher.like(args.like, k=args.k, rerank_depth=args.rerank)
    if args.audio is not None:
        data = read_limited(args.audio, args.storage_options, UPLOAD_LIMITS)
        return searcher.search_sound(data, args.audio, k=args.k, rerank_depth=args.rerank)
    return searcher.search(args.query, k=args.k, rerank_depth=args.rerank)


def run(args: argparse.Namespace) -> int:
    given = [
        flag
        for flag, v in (("QUERY", args.query), ("--like", args.like), ("--audio", args.audio))
        if v is not None
    ]
    if len(given) != 1:
        print(
            "coattn search: give one query: words, --like CLIP_ID or --audio FILE"
            + (f" (got {' and '.join(given)})" if given else ""),
            file=sys.stderr,
        )
        return 2
    try:
        searcher = Searcher.open(
            resolve_checkpoint(args.checkpoint),
            args.milvus_uri,
            args.collection,
            args.storage_options,
            query_encoder=args.query_encoder,
        )
        try:
            answer = _answer(searcher, args)
        finally:
            searcher.close()
    except AudioError as error:
        print(f"coattn search: {error.kind}: {error}", file=sys.stderr)
        return 2
    except KeyError as error:  # an id the collection does not hold
        print(f"coattn search: {error.args[0]}", file=sys.stderr)
        return 2
    except (ValueError, StoreUnavailable) as error:
        print(f"coattn search: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    print(repr(args.query) if args.query is not None else json.dumps(answer.query))
    for rank, r in enumerate(answer.results, 1):
        print(f"  {rank:>2}. {r.score:6.3f}  (stage 1 {r.stage1_score:6.3f})  {r.uri}  {r.label}")
    print(json.dumps(answer.to_dict()), flush=True)
    return 0
