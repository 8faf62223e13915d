"""The main job end to end on the embedded default: the ESC-50 sample that ships with the repo.

Embeds the sample's clips and captions with the pretrained encoders, trains both stages on them,
saves the checkpoint, and answers a few free-text queries worded unlike any training caption.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

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
    print(json.dumps(summary))
    return 0

