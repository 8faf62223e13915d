"""Index throughput: `coattn index` against a naive single-process loop, same files, same model.

    .venv/bin/python bench/index_throughput.py [--source DIR] [--clips 200] [--repeat 3] \
        [--precision auto|fp32|bf16] [--write BENCHMARKS.md]
    python3 bench/index_throughput.py --embed-only --device cuda   # one embed actor's clips/s on a GPU

The naive loop is what one would write first: decode, embed and upsert one clip at a time, in one
process, torch on every core. The job is `run_index`, what `coattn index` runs, in its local
layout (one process, `pipeline.local`) and as the Ray Data graph, with Ray already started (on a
cluster it is; `ray.init` is timed apart). All run the audio CNN at the same `--precision`, write
to the same Milvus Lite server, into their own collections, and start from loading the
checkpoint. Runs alternate (naive, local, Ray, naive, ...) so that background load hits all alike; the table gives medians, end to
end and in the steady state (first row stored to last), which is the rate that matters at scale.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_SOURCE = REPO.parent / "shared" / "datasets" / "esc50-subset" / "audio"
MARKER = "index_throughput"


def random_checkpoint(folder: Path) -> str:
    """Throughput does not depend on the weights: an untrained model of the default shapes."""
    from coattn_dist.config import Config
    from coattn_dist.model import RetrievalModel

    torch.manual_seed(0)
    RetrievalModel(Config()).eval().save(str(folder / "checkpoint"))
    return str(folder / "checkpoint")


@dataclass
class Run:
    seconds: float  # end to end, from loading the checkpoint to the last row stored
    steady: float  # clips/s from the first row stored to the last: the rate at scale
    startup: float | None = None  # the job's `startup_s`: start to the first row stored


def naive(listing, checkpoint: str, milvus_uri: str, collection: str, precision: str) -> Run:
    """Decode -> embed -> upsert every clip, one at a time."""
    from coattn_dist.audio import load
    from coattn_dist.encoders import build_audio_encoder
    from coattn_dist.model import RetrievalModel
    from coattn_dist.query.embed import embed_clips
    from coattn_dist.store import ClipStore

    start = time.monotonic()
    model = RetrievalModel.load(checkpoint)
    encoder = build_audio_encoder(model.cfg.audio, precision=precision)
    with ClipStore(milvus_uri, collection, model.cfg.model.dim) as store:
        store.create_if_absent()
        for i, row in enumerate(listing.to_pylist()):
            (segments,) = encoder([load(row["uri"], encoder.sample_rate)])
            vector = embed_clips(model, [segments])[0].numpy()
            store.upsert([{**row, "vector": vector, "segments": segments.numpy()}])
            if i == 0:
                first = time.monotonic()
        last = time.monotonic()
        store.flush()
        assert store.count() == listing.num_rows
    return Run(time.monotonic() - start, (listing.num_rows - 1) / (last - first))


def with_job(
    listing,
    checkpoint: str,
    milvus_uri: str,
    collection: str,
    scratch: Path,
    args: argparse.Namespace,
    layout: str,
    threads: int | None = None,
) -> Run:
    """`run_index` in `layout`, with the collection's row count sampled on the side for the
    steady rate."""
    from coattn_dist.pipeline.runner import run_index
    from coattn_dist.store import ClipStore

    samples, done = [], threading.Event()

    def sample() -> None:
        with ClipStore(milvus_uri, collection, 256) as store:
            while not done.wait(0.25):
                with contextlib.suppress(Exception):  # the job creates the collection first
                    samples.append((time.monotonic(), store.count()))
            samples.append((time.monotonic(), store.count()))  # rows the last tick missed

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        summary = run_index(
            listing,
            checkpoint,
            milvus_uri,
            collection,
            str(scratch / "failures.parquet"),
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            progress_every_s=30,
            embed_threads=threads,
            layout=layout,
            precision=args.precision,
        )
    finally:
        done.set()
        sampler.join()
    (t0, n0) = next(x for x in samples if x[1] > 0)
    (t1, n1) = next(x for x in samples if x[1] == samples[-1][1])  # when the last row landed
    with ClipStore(milvus_uri, collection, 256) as store:
        counts = (summary.indexed, store.count(), n1, listing.num_rows)
        assert len(set(counts)) == 1, f"indexed / stored / last sampled / listed: {counts}"
    return Run(summary.seconds, (n1 - n0) / (t1 - t0), summary.startup_s)


def embed_only(device: str, batch_size: int, clips: int, precision: str) -> None:
    """One embed actor's work (`ClipEmbedder`) on `device`, fed decoded 5 s clips: its clips/s."""
    from coattn_dist.pipeline.embed import ClipEmbedder

    with tempfile.TemporaryDirectory() as tmp:
        embedder = ClipEmbedder(random_checkpoint(Path(tmp)), device=device, precision=precision)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(5 * 44100).astype(np.float32) * 0.1 for _ in range(batch_size)]
    batch = {
        "wave": np.fromiter(waves, dtype=object),
        "kind": np.array([""] * batch_size, dtype=object),
    }
    embedder(batch)  # warm-up: kernels, allocator
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, done = time.perf_counter(), 0
    while done < clips:
        embedder(batch)
        done += batch_size
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name() if device.startswith("cuda") else machine()
    print(
        f"| embed stage (`ClipEmbedder`, {embedder.encoder.precision}), {name} | batch "
        f"{batch_size} | {done} clips | "
        f"{seconds:.1f} s | **{done / seconds:.1f} clips/s** |"
    )


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({model}), {memory:.0f} GiB, torch {torch.__version__}"


def table(clips: int, runs: dict[str, list[Run]], init_s: float, load: str, precision: str) -> str:
    """Medians of the end-to-end times and of the steady rates, and their ratios."""
    e2e = {k: statistics.median(r.seconds for r in v) for k, v in runs.items()}
    steady = {k: statistics.median(r.steady for r in v) for k, v in runs.items()}
    listed = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    rows = [("naive loop: decode → embed → upsert, one clip at a time", "naive")] + [
        (f"`coattn index`, {layout(key)}", key) for key in runs if key != "naive"
    ]
    lines = [
        f"{clips} clips of the ESC-50 subset (5 s FLAC, 44.1 kHz), {len(runs['naive'])} "
        f"alternating runs each, medians; audio CNN in {resolved(precision)}; {machine()}; "
        f"{date.today()}; load average before / after: {load}.",
        "",
        "| pipeline | end to end: s (runs) | clips/s | vs naive | steady state: clips/s (runs) "
        "| vs naive | `startup_s` (runs) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, key in rows:
        startups = [r.startup for r in runs[key] if r.startup is not None]
        lines.append(
            f"| {label} | {e2e[key]:.1f} ({listed(r.seconds for r in runs[key])}) | "
            f"{clips / e2e[key]:.2f} | **{e2e['naive'] / e2e[key]:.2f}×** | "
            f"{steady[key]:.2f} ({listed(r.steady for r in runs[key])}) | "
            f"**{steady[key] / steady['naive']:.2f}×** | "
            + (f"{statistics.median(startups):.1f} ({listed(startups)}) |" if startups else "|")
        )
    lines += ["", f"`ray.init()` took {init_s:.1f} s more, not counted (a cluster is already up)."]
    return "\n".join(lines)


def resolved(precision: str) -> str:
    """ "auto" -> what it picks on this machine (`AisfxEncoder`)."""
    from coattn_dist.encoders.aisfx import resolve_precision

    picked = resolve_precision(precision, "cpu")
    return f"auto ({picked} on this CPU)" if precision == "auto" else picked


def layout(key: str) -> str:
    """ "ray-2" -> the pool that key names on this machine (`runner.embed_pool`)."""
    if key == "local":
        return "local layout: one process, a reading and embedding thread per CPU, a writer thread"
    threads = int(key.split("-")[1])
    actors = max(1, (os.cpu_count() or 1) // threads)
    pool = f"{actors} embed actor{'s' * (actors > 1)} × {threads} torch thread{'s' * (threads > 1)}"
    return f"Ray Data, {pool}"


def write_section(path: Path, marker: str, text: str) -> None:
    """Replace what lies between `<!-- marker -->` and `<!-- /marker -->` in the results file."""
    begin, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    doc = path.read_text()
    head, rest = doc.split(begin, 1)
    path.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}")


def main() -> None:
    from coattn_dist.encoders.aisfx import PRECISIONS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default=str(DEFAULT_SOURCE))
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--batch-size", type=int, help="default: the job's own (embed-only: 16)")
    p.add_argument("--num-workers", type=int)
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, os.cpu_count() or 1],
        help="embed layouts to compare: torch threads per actor (one actor per that many CPUs)",
    )
    p.add_argument("--checkpoint", help="default: an untrained model of the default shapes")
    p.add_argument("--write", type=Path, help="put the table into this Markdown file's section")
    p.add_argument("--embed-only", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    args = p.parse_args()
    if args.embed_only:
        embed_only(args.device, args.batch_size or 16, args.clips, args.precision)
        return

    import ray

    from coattn_dist.pipeline.reader import list_folder
    from coattn_dist.store.lite_server import milvus_lite_server

    load = f"{os.getloadavg()[0]:.1f}"
    listing = list_folder(args.source).slice(0, args.clips)
    runs: dict[str, list[Run]] = {
        "naive": [],
        "local": [],
        **{f"ray-{t}": [] for t in args.threads},
    }
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        scratch = Path(tmp)
        checkpoint = args.checkpoint or random_checkpoint(scratch)
        # Ray runs its workers at nice 15; on a machine shared with other work that alone would
        # hand them less CPU than the naive loop gets at nice 0. Same priority for both.
        os.environ.setdefault("RAY_worker_niceness", "0")
        start = time.monotonic()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        init_s = time.monotonic() - start
        with milvus_lite_server(scratch / "milvus") as uri:
            for i in range(args.repeat):
                runs["naive"].append(naive(listing, checkpoint, uri, f"naive_{i}", args.precision))
                runs["local"].append(
                    with_job(listing, checkpoint, uri, f"local_{i}", scratch, args, "local")
                )
                for t in args.threads:
                    runs[f"ray-{t}"].append(
                        with_job(listing, checkpoint, uri, f"ray_{t}_{i}", scratch, args, "ray", t)
                    )
                print(
                    f"run {i}: " + ", ".join(f"{k} {v[-1]}" for k, v in runs.items()),
                    file=sys.stderr,
                    flush=True,
                )
        ray.shutdown()
    load = f"{load} / {os.getloadavg()[0]:.1f}"
    text = table(listing.num_rows, runs, init_s, load, args.precision)
    print(text)
    if args.write:
        marker = MARKER if args.precision == "auto" else f"{MARKER}-{args.precision}"
        write_section(args.write, marker, text)


if __name__ == "__main__":
    main()
