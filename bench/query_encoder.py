"""The query encoder, one thread: ONNX Runtime (`query.onnx_encode`, the service's CPU path)
against the torch path it replaced, on the shipped checkpoint and 1,000 varied captions.

    .venv/bin/python bench/query_encoder.py --write BENCHMARKS.md

The encoders run in one process, one query per call (what one client costs the service), in
alternating rounds so that drift in machine load hits all alike. Agreement with torch is measured
on the same 1,000 queries: the worst cosine of a query's stage-1 vector and of any of its token
features, and for how many ESC-50 captions the top 10 of the ESC-50 sample's clips is identical
(and the same ten in any order).
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


def top10_agreement(model, reference, encoders: dict) -> dict:
    """Per encoder over the ESC-50 sample's clips and captions: captions whose top 10 is identical
    to the reference's, the same ten in any order, captions, and stage 1's mAP@10."""
    from coattn_dist.data.formats import read_esc50
    from coattn_dist.encoders import build_audio_encoder
    from coattn_dist.features import build_features
    from coattn_dist.metrics import map_at_k
    from coattn_dist.query.embed import embed_clips

    table = read_esc50(str(REPO / "samples" / "esc50" / "meta" / "esc50.csv"), captions="all")
    features = build_features(build_audio_encoder(model.cfg.audio), reference.text_encoder, table)
    clips = embed_clips(model, features.segments)

    def scores(encoder):
        return torch.from_numpy(encoder(features.texts)[1]) @ clips.T

    ref = scores(reference)
    want = torch.topk(ref, 10).indices
    out = {"torch": {"map@10": round(map_at_k(ref, features.relevant), 4)}}
    for name, encoder in encoders.items():
        got = scores(encoder)
        top = torch.topk(got, 10).indices
        out[name] = {
            "identical": int((top == want).all(dim=1).sum()),
            "same_ten": sum(set(a.tolist()) == set(b.tolist()) for a, b in zip(top, want)),
            "captions": len(features.texts),
            "map@10": round(map_at_k(got, features.relevant), 4),
        }
    return out


def run(rounds: int) -> dict:
    from coattn_dist.checkpoints import resolve_checkpoint
    from coattn_dist.model import RetrievalModel
    from coattn_dist.query.encode import QueryEncoder
    from coattn_dist.query.onnx_encode import cosines
    from tests.harness.queries import varied_queries

    torch.set_num_threads(1)
    model = RetrievalModel.load(resolve_checkpoint(None))
    slow = QueryEncoder.for_model(model, runtime="torch")
    fast, ready_s = {}, {}
    for runtime in ("onnx", "onnx-int8"):  # exported (and quantised) on first use, then cached
        start = time.perf_counter()
        fast[runtime] = QueryEncoder.for_model(model, runtime=runtime)
        ready_s[runtime] = round(time.perf_counter() - start, 1)
    texts = varied_queries()
    worst = {name: {"vector": 1.0, "token": 1.0} for name in fast}
    for i in range(0, len(texts), 100):
        want_tokens, want_vectors = slow(texts[i : i + 100])
        for name, encoder in fast.items():
            tokens, vectors = encoder(texts[i : i + 100])
            w = worst[name]
            w["vector"] = min(w["vector"], float(cosines(vectors, want_vectors).min()))
            w["token"] = min(
                w["token"], min(float(cosines(a, b).min()) for a, b in zip(tokens, want_tokens))
            )
    top10 = top10_agreement(model, slow, fast)
    encoders = {"torch": slow, **fast}
    times = {name: [] for name in encoders}
    for r in range(rounds):  # alternating, each round over a different slice of the queries
        chunk = texts[r * 100 : (r + 1) * 100]
        for name, encoder in encoders.items():
            times[name] += ms_per_query(encoder, chunk)
    p50 = {n: round(statistics.median(ms), 2) for n, ms in times.items()}
    return {
        "p50_ms": p50,
        "mean_ms": {n: round(statistics.fmean(ms), 2) for n, ms in times.items()},
        "speedup_p50": {n: round(p50["torch"] / p50[n], 2) for n in fast},
        "queries_timed": len(times["torch"]),
        "worst_cosine": {n: {k: round(v, 6) for k, v in w.items()} for n, w in worst.items()},
        "esc50_top10": top10,
        "ready_s": ready_s,
        "date": str(date.today()),
    }


ROWS = {
    "torch": "torch (MiniLM + stage 1, eager)",
    "onnx": "ONNX Runtime, one graph, float32 (the default)",
    "onnx-int8": "ONNX Runtime, 8-bit weights, int8 products (`--query-encoder onnx-int8`)",
}


def render(r: dict) -> str:
    lines = [
        "| encoder | p50 ms per query | mean ms | vs torch (p50) | worst cosine: vector / token "
        "| ESC-50 sample top 10: identical / same ten | sample mAP@10 | ready s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, label in ROWS.items():
        top = r["esc50_top10"][name]
        if name == "torch":
            agree, speed, ready = "reference | reference", "1.00x", ""
        else:
            w, n = r["worst_cosine"][name], top["captions"]
            agree = f"{w['vector']} / {w['token']} | {top['identical']}/{n} / {top['same_ten']}/{n}"
            speed, ready = f"**{r['speedup_p50'][name]:.2f}x**", r["ready_s"][name]
        lines.append(
            f"| {label} | {r['p50_ms'][name]} | {r['mean_ms'][name]} | {speed} | {agree} "
            f"| {top['map@10']} | {ready} |"
        )
    lines += [
        "",
        f"{r['queries_timed']} queries each, one per call, one thread, alternating rounds; "
        "agreement on 1,000 varied captions against torch; ready: export (and quantisation) on "
        f"first use, then the cached graph. {r['date']}.",
    ]
    return "\n".join(lines)


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
