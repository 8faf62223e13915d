"""The query encoder, one thread: ONNX Runtime (`query.onnx_encode`, the service's CPU path)
against the torch path it replaced, on the shipped checkpoint and 1,000 varied captions.

    .venv/bin/python bench/query_encoder.py --write BENCHMARKS.md

Both encoders run in one process, one query per call (what one client costs the service), in
alternating rounds so that drift in machine load hits both alike. Agreement is measured on the
same 1,000 queries: the worst cosine of a query's stage-1 vector and of any of its token features,
and whether the top 10 of the ESC-50 sample's clips is identical for every ESC-50 caption.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MARKER = "query_encoder"


def ms_per_query(encoder, queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        start = time.perf_counter()
        encoder([q])
        out.append((time.perf_counter() - start) * 1e3)
    return out


def top10_identical(model, slow, fast) -> tuple[int, int]:
    """(captions whose top 10 agree, captions) over the ESC-50 sample's clips."""
    from coattn_dist.data.formats import read_esc50
    from coattn_dist.data.table import queries
    from coattn_dist.encoders import build_audio_encoder
    from coattn_dist.features import build_features
    from coattn_dist.query.embed import embed_clips

    table = read_esc50(str(REPO / "samples" / "esc50" / "meta" / "esc50.csv"), captions="all")
    features = build_features(build_audio_encoder(model.cfg.audio), slow.text_encoder, table)
    clips = embed_clips(model, features.segments)
    texts, _ = queries(table)
    tops = [torch.topk(torch.from_numpy(e(texts)[1]) @ clips.T, 10).indices for e in (slow, fast)]
    return int((tops[0] == tops[1]).all(dim=1).sum()), len(texts)


def run(rounds: int) -> dict:
    from coattn_dist.checkpoints import resolve_checkpoint
    from coattn_dist.model import RetrievalModel
    from coattn_dist.query.encode import QueryEncoder
    from coattn_dist.query.onnx_encode import cosines
    from tests.harness.queries import varied_queries

    torch.set_num_threads(1)
    model = RetrievalModel.load(resolve_checkpoint(None))
    slow = QueryEncoder.for_model(model, runtime="torch")
    start = time.perf_counter()
    fast = QueryEncoder.for_model(model)  # exports on first use, then loads the cached graph
    build_s = time.perf_counter() - start
    texts = varied_queries()
    worst_vector, worst_token = 1.0, 1.0
    for i in range(0, len(texts), 100):
        (wt, wv), (t, v) = slow(texts[i : i + 100]), fast(texts[i : i + 100])
        worst_vector = min(worst_vector, float(cosines(v, wv).min()))
        worst_token = min(worst_token, min(float(cosines(a, b).min()) for a, b in zip(t, wt)))
    same, captions = top10_identical(model, slow, fast)
    times = {"torch": [], "onnx": []}
    for r in range(rounds):  # alternating, each round over a different slice of the queries
        chunk = texts[r * 100 : (r + 1) * 100]
        for name, encoder in (("torch", slow), ("onnx", fast)):
            times[name] += ms_per_query(encoder, chunk)
    p50 = {n: round(statistics.median(ms), 2) for n, ms in times.items()}
    return {
        "p50_ms": p50,
        "mean_ms": {n: round(statistics.fmean(ms), 2) for n, ms in times.items()},
        "speedup_p50": round(p50["torch"] / p50["onnx"], 2),
        "queries_timed": len(times["onnx"]),
        "worst_vector_cosine": round(worst_vector, 6),
        "worst_token_cosine": round(worst_token, 6),
        "esc50_top10_identical": f"{same}/{captions}",
        "onnx_ready_s": round(build_s, 1),
        "date": str(date.today()),
    }


def render(r: dict) -> str:
    return "\n".join(
        [
            "| encoder | p50 ms per query | mean ms |",
            "| --- | --- | --- |",
            f"| torch (MiniLM + stage 1, eager) | {r['p50_ms']['torch']} | {r['mean_ms']['torch']} |",
            f"| ONNX Runtime, one graph | {r['p50_ms']['onnx']} | {r['mean_ms']['onnx']} |",
            "",
            f"ONNX {r['speedup_p50']}x faster at the median ({r['queries_timed']} queries each, "
            f"one thread, alternating rounds). Agreement on 1,000 captions: worst vector cosine "
            f"{r['worst_vector_cosine']}, worst token cosine {r['worst_token_cosine']}; ESC-50 "
            f"sample top 10 identical for {r['esc50_top10_identical']} captions. Ready in "
            f"{r['onnx_ready_s']} s (export on first use, then the cached graph). {r['date']}.",
        ]
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10, help="alternating rounds of 100 queries")
    p.add_argument("--write", type=Path, help="put the table into this Markdown file's section")
    args = p.parse_args()
    result = run(args.rounds)
    print(json.dumps(result, indent=1), file=sys.stderr)
    text = render(result)
    print(text)
    if args.write:
        sys.path.insert(0, str(REPO / "bench"))
        from index_throughput import write_section

        write_section(args.write, MARKER, text)
