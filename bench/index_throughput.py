"""Index throughput: the Ray job against a naive single-process loop, same files, same model.

    .venv/bin/python bench/index_throughput.py [--source DIR] [--clips 40,200] [--repeat R] [--write BENCHMARKS.md]
    python3 bench/index_throughput.py --embed-only --device cuda   # one embed actor's clips/s on a GPU

The naive loop is what one would write first: decode, embed and upsert one clip at a time, in one
process, torch on every core. The Ray job is `run_index`, what `coattn index` runs, with Ray
already started (on a cluster it is; `ray.init` is timed apart). Both write to the same Milvus
Lite server, into their own collections, and start from loading the checkpoint. Runs alternate
(naive, Ray, naive, ...) so that background load hits both alike; the table gives medians. Two
sizes separate the fixed start-up cost from the steady-state rate that matters at scale.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
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


def naive(listing, checkpoint: str, milvus_uri: str, collection: str) -> float:
    """Seconds to decode -> embed -> upsert every clip, one at a time."""
    from coattn_dist.audio import load
    from coattn_dist.encoders import build_audio_encoder
    from coattn_dist.model import RetrievalModel
    from coattn_dist.ranking import embed_clips
    from coattn_dist.store import ClipStore

    start = time.monotonic()
    model = RetrievalModel.load(checkpoint)
    encoder = build_audio_encoder(model.cfg.audio)
    with ClipStore(milvus_uri, collection, model.cfg.model.dim) as store:
        store.create_if_absent()
        for row in listing.to_pylist():
            (segments,) = encoder([load(row["uri"], encoder.sample_rate)])
            vector = embed_clips(model, [segments])[0].numpy()
            store.upsert([{**row, "vector": vector, "segments": segments.numpy()}])
        store.flush()
        assert store.count() == listing.num_rows
    return time.monotonic() - start


def with_ray(listing, checkpoint: str, milvus_uri: str, collection: str, scratch: Path,
             batch_size: int, num_workers: int | None) -> float:
    from coattn_dist.pipeline.runner import run_index
    from coattn_dist.store import ClipStore

    summary = run_index(listing, checkpoint, milvus_uri, collection, str(scratch / "failures.parquet"),
                        batch_size=batch_size, num_workers=num_workers, progress_every_s=30)
    with ClipStore(milvus_uri, collection, 256) as store:
        assert summary.indexed == store.count() == listing.num_rows
    return summary.seconds


def embed_only(device: str, batch_size: int, clips: int) -> None:
    """One embed actor's work (`ClipEmbedder`) on `device`, fed decoded 5 s clips: its clips/s."""
    from coattn_dist.pipeline.embed import ClipEmbedder

    with tempfile.TemporaryDirectory() as tmp:
        embedder = ClipEmbedder(random_checkpoint(Path(tmp)), device=device)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(5 * 44100).astype(np.float32) * 0.1 for _ in range(batch_size)]
    batch = {"wave": np.fromiter(waves, dtype=object), "kind": np.array([""] * batch_size, dtype=object)}
    embedder(batch)  # warm-up: kernels, allocator
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, done = time.perf_counter(), 0
    while done < clips:
        embedder(batch)
        done += batch_size
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name() if device.startswith("cuda") else machine()
    print(f"| embed stage (`ClipEmbedder`), {name} | batch {batch_size} | {done} clips | "
          f"{seconds:.1f} s | **{done / seconds:.1f} clips/s** |")


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({model}), {memory:.0f} GiB, torch {torch.__version__}"


def table(times: dict[int, dict[str, list[float]]], init_s: float, load: str) -> str:
    """Medians per size, and the steady-state rate from the two largest sizes."""
    med = {n: {k: statistics.median(v) for k, v in runs.items()} for n, runs in times.items()}
    runs = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    sizes = sorted(times)
    lines = [f"{', '.join(map(str, sizes))} clips of the ESC-50 subset (5 s FLAC, 44.1 kHz), "
             f"{len(times[sizes[0]]['naive'])} run(s) each, medians; {machine()}; {date.today()}; "
             f"load average before / after: {load}.", "",
             "| clips | naive loop: s (runs) | naive clips/s | `coattn index`: s (runs) | "
             "`coattn index` clips/s | speed-up |",
             "| --- | --- | --- | --- | --- | --- |"]
    for n in sizes:
        t = med[n]
        lines.append(f"| {n} | {t['naive']:.1f} ({runs(times[n]['naive'])}) | {n / t['naive']:.2f} | "
                     f"{t['ray']:.1f} ({runs(times[n]['ray'])}) | {n / t['ray']:.2f} | "
                     f"{t['naive'] / t['ray']:.2f}× |")
    if len(sizes) >= 2:
        small, large = sizes[-2], sizes[-1]
        rate = {k: (large - small) / (med[large][k] - med[small][k]) for k in ("naive", "ray")}
        fixed = {k: med[large][k] - large / rate[k] for k in rate}
        lines.append(f"| steady state ({small}→{large}) | start-up {fixed['naive']:.1f} s | "
                     f"{rate['naive']:.2f} | start-up {fixed['ray']:.1f} s | {rate['ray']:.2f} | "
                     f"**{rate['ray'] / rate['naive']:.2f}×** |")
    lines += ["", f"`ray.init()` took {init_s:.1f} s more, not counted (a cluster is already up)."]
    return "\n".join(lines)


def write_section(path: Path, marker: str, text: str) -> None:
    """Replace what lies between `<!-- marker -->` and `<!-- /marker -->` in the results file."""
    begin, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    doc = path.read_text()
    head, rest = doc.split(begin, 1)
    path.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default=str(DEFAULT_SOURCE))
    p.add_argument("--clips", default="40,200", help="sizes, comma-separated (clips per embed-only run)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--batch-size", type=int, help="default: the job's own (embed-only: 16)")
    p.add_argument("--num-workers", type=int)
    p.add_argument("--checkpoint", help="default: an untrained model of the default shapes")
    p.add_argument("--write", type=Path, help="put the table into this Markdown file's section")
    p.add_argument("--embed-only", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    if args.embed_only:
        embed_only(args.device, args.batch_size or 16, int(args.clips.split(",")[-1]))
        return

    import ray

    from coattn_dist.pipeline.reader import list_folder
    from coattn_dist.servers import milvus_lite_server

    sizes = sorted(int(n) for n in args.clips.split(","))
    load = f"{os.getloadavg()[0]:.1f}"
    listing = list_folder(args.source)
    times = {n: {"naive": [], "ray": []} for n in sizes}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        scratch = Path(tmp)
        checkpoint = args.checkpoint or random_checkpoint(scratch)
        start = time.monotonic()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        init_s = time.monotonic() - start
        with milvus_lite_server(scratch / "milvus") as uri:
            for run in range(args.repeat):
                for n in sizes:
                    clips = listing.slice(0, n)
                    times[n]["naive"].append(naive(clips, checkpoint, uri, f"naive_{run}_{n}"))
                    times[n]["ray"].append(with_ray(clips, checkpoint, uri, f"ray_{run}_{n}", scratch,
                                                    args.batch_size, args.num_workers))
                    print(f"run {run}, {n} clips: naive {times[n]['naive'][-1]:.1f} s, "
                          f"ray {times[n]['ray'][-1]:.1f} s", file=sys.stderr, flush=True)
        ray.shutdown()
    text = table(times, init_s, f"{load} / {os.getloadavg()[0]:.1f}")
    print(text)
    if args.write:
        write_section(args.write, MARKER, text)


if __name__ == "__main__":
    main()
