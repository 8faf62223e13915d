"""The main job end to end on the embedded default: the ESC-50 sample that ships with the repo.

Embeds the sample's clips and captions with the pretrained encoders, trains both stages on them,
saves the checkpoint, and answers a few free-text queries worded unlike any training caption.
Then (unless --no-serve) indexes the sample into a Milvus Lite server with `coattn index`'s job
and serves the query service and its search page on loopback until Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path

from coattn_dist.pipeline.reader import list_manifest
from coattn_dist.pipeline.runner import run_index
from coattn_dist.runtime import init_ray
from coattn_dist.servers import milvus_lite_server

from coattn_dist.config import load_config
from coattn_dist.data import clips
from coattn_dist.data.formats import read_esc50
from coattn_dist.encoders import build_audio_encoder, build_text_encoder
from coattn_dist.features import build_features, encode_texts
from coattn_dist.model import RetrievalModel
from coattn_dist.progress import Progress, log_line
from coattn_dist.ranking import score_matrix
from coattn_dist.training import seed_everything, train_reranker, train_stage1

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "esc50"
QUERIES = ["a dog barking in the distance", "heavy rain pouring down", "someone knocks on a door",
           "a baby is crying", "bells ringing from a church tower"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sample", default=str(SAMPLE), help="an ESC-50 style folder (meta/esc50.csv + audio/)")
    p.add_argument("--out", default="runs/demo", help="where the checkpoint goes")
    p.add_argument("--config", help="YAML/JSON config")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. model.cascade=stacked:2")
    p.add_argument("-k", type=int, default=3, help="results per query")
    p.add_argument("--rerank", type=int, default=20, help="stage-1 candidates the cascade rescores")
    p.add_argument("--query", action="append", help="a query to answer (repeatable); default: a few examples")
    p.add_argument("--no-serve", action="store_true", help="stop after answering: no index, no service")
    p.add_argument("--port", type=int, help="the service's port (default: serve/config.yaml's)")


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    cfg = load_config(args.config, ["train.rerank_epochs=10", *args.set])
    seed_everything(cfg.train.seed)
    table = read_esc50(str(Path(args.sample) / "meta" / "esc50.csv"), captions="all")
    audio_encoder, text_encoder = build_audio_encoder(cfg.audio), build_text_encoder(cfg.text)
    data = build_features(audio_encoder, text_encoder, table, progress=Progress("embed clips"))

    model = RetrievalModel(cfg)
    train_stage1(model, data, cfg.train, log_line("train stage1"))
    train_reranker(model, data, cfg.train, log_line("train reranker"))
    model.save(str(Path(args.out) / "checkpoint"))

    queries = args.query or QUERIES
    scores = score_matrix(model, encode_texts(text_encoder, queries), data.segments, depth=args.rerank)
    labels = dict(zip(clips(table)["clip_id"].to_pylist(), clips(table)["label"].to_pylist()))
    answers = {}
    for query, row in zip(queries, scores):
        top = row.topk(min(args.k, len(row))).indices.tolist()
        answers[query] = [Path(data.uris[c]).name for c in top]
        print(f"\n{query!r}", flush=True)
        for rank, c in enumerate(top, 1):
            print(f"  {rank}. {Path(data.uris[c]).name:<24} {labels[data.clip_ids[c]]}", flush=True)
    summary = {"clips": len(data.clip_ids), "failed": len(data.failures), "captions": len(data.texts),
               "checkpoint": str(Path(args.out) / "checkpoint"), "answers": answers,
               "seconds": round(time.monotonic() - start, 1)}
    if args.no_serve:
        print(json.dumps(summary))
        return 0
    return serve_sample(args, summary)


def serve_sample(args: argparse.Namespace, summary: dict) -> int:
    """Index the sample with the trained checkpoint and serve it until Ctrl-C (or SIGTERM)."""
    from ray import serve

    from serve.app import run as run_service

    out, esc50 = Path(args.out).resolve(), str(Path(args.sample) / "meta" / "esc50.csv")
    init_ray()
    with milvus_lite_server(out / "milvus") as milvus_uri:
        indexed = run_index(list_manifest(esc50), summary["checkpoint"], milvus_uri, "demo",
                            str(out / "failures.parquet"))
        url = run_service({"checkpoint": summary["checkpoint"], "milvus_uri": milvus_uri,
                           "collection": "demo"}, port=args.port)
        print(f"\nsearch page: {url}/   API: {url}/search?q=a+dog+barks   (Ctrl-C stops)",
              flush=True)
        print(json.dumps({**summary, "indexed": indexed.indexed + indexed.skipped, "url": url}),
              flush=True)
        # stop in order (Serve, then Milvus) on Ctrl-C or SIGTERM; SIGINT is set explicitly since a
        # process started in the background (`cmd &` in a script) inherits it ignored
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _interrupt)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping the service", flush=True)
        finally:
            serve.shutdown()
    return 0


def _interrupt(*_) -> None:
    raise KeyboardInterrupt
