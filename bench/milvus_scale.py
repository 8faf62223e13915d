"""The Milvus side at scale: insert rate, index build, search latency, recall@10, memory.

    .venv/bin/python bench/milvus_scale.py --backend lite --rows 100000
    .venv/bin/python bench/milvus_scale.py --backend standalone --rows 1000000 \
        --milvus-python /tmp/idx/venv-milvus/bin/python       # a venv holding `pip install milvus==2.3.5`
    .venv/bin/python bench/milvus_scale.py --table --write BENCHMARKS.md

Vectors with real structure: the stage-1 vectors of the real ESC-50 subset clips (aisfx segments
through a checkpoint's stage 1), mixed two at a time with random weights plus a little noise, the
way a clip holding two sounds lands between them. Each row also carries its base clip's real
segment features (the reranker's input, 3 x 512 float16 in the `segments` VARCHAR), so Milvus
stores, loads and returns what the service needs. Everything goes through `ClipStore`, the code
the index job and the service use. Recall@10 is against exact inner-product search in numpy on
held-out vectors from the same generator. Each run writes WORKDIR/<backend>-<rows>-<index>.json;
--table renders all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.harness: the servers a benchmark starts
SUBSET = REPO.parent / "shared" / "datasets" / "esc50-subset" / "audio"
MARKER = "milvus_scale"
QUERIES = 200


def base_features(
    workdir: Path, checkpoint: str | None
) -> tuple[np.ndarray, list[np.ndarray], str]:
    """(stage-1 vectors, segment features) of the real subset clips, computed once and cached."""
    from coattn_dist.audio import load
    from coattn_dist.checkpoints import resolve_checkpoint
    from coattn_dist.encoders import build_audio_encoder
    from coattn_dist.model import RetrievalModel
    from coattn_dist.query.embed import embed_clips

    checkpoint = resolve_checkpoint(checkpoint)
    cache = workdir / "base_features.npz"
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        # the cached vectors came through one checkpoint's stage 1: reused for that one only
        if str(data["checkpoint"]) == checkpoint:
            n = data["counts"]
            segments = np.split(data["segments"], np.cumsum(n)[:-1])
            return data["vectors"], segments, str(data["checkpoint"])
    model = RetrievalModel.load(checkpoint)
    encoder = build_audio_encoder(model.cfg.audio)
    files = sorted(SUBSET.glob("*.flac"))
    segments = []
    for i in range(0, len(files), 16):
        segments += encoder([load(str(f), encoder.sample_rate) for f in files[i : i + 16]])
    vectors = embed_clips(model, segments).numpy()
    segments = [s.numpy().astype(np.float16) for s in segments]
    np.savez(
        cache,
        vectors=vectors,
        segments=np.concatenate(segments),
        counts=[len(s) for s in segments],
        checkpoint=checkpoint,
    )
    return vectors, segments, checkpoint


class Mixtures:
    """Unit vectors between two real clips' vectors, plus noise; `rows(start, n)` is repeatable."""

    def __init__(self, vectors: np.ndarray, segments: list[np.ndarray], noise: float = 0.05):
        self.vectors, self.segments, self.noise = vectors, segments, noise

    def batch(self, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        a, b = rng.integers(len(self.vectors), size=(2, n))
        w = rng.uniform(0.5, 1.0, size=(n, 1)).astype(np.float32)
        x = w * self.vectors[a] + (1 - w) * self.vectors[b]
        x += rng.standard_normal(x.shape).astype(np.float32) * self.noise / np.sqrt(x.shape[1])
        return x / np.linalg.norm(x, axis=1, keepdims=True), a


def rss_mib(data_dir: Path) -> float:
    """Resident memory of the server processes: those started in, or naming, `data_dir`."""
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            mine = str(data_dir) in (proc / "cmdline").read_bytes().decode(
                errors="replace"
            ) or os.readlink(proc / "cwd").startswith(str(data_dir))
            if mine:
                status = (proc / "status").read_text()
                total += int(status.split("VmRSS:")[1].split()[0])
        except (OSError, IndexError):
            continue
    return total / 1024


def disk_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def wait_for_index(store, timeout_s: float) -> float:
    """Seconds until every row is indexed (a real Milvus builds after flush, in the background)."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=store.uri)
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout_s:
            name = client.list_indexes(store.collection, field_name="vector")[0]
            info = client.describe_index(store.collection, name)
            if int(info.get("pending_index_rows", 0)) == 0:
                return time.monotonic() - start
            time.sleep(2)
    finally:
        client.close()
    raise TimeoutError(f"index not built within {timeout_s} s")


def exact_top10(queries: np.ndarray, vectors: np.ndarray, chunk: int = 16) -> list[set[int]]:
    """Brute-force top-10 by inner product, a few queries at a time to bound memory."""
    out = []
    for i in range(0, len(queries), chunk):
        scores = queries[i : i + chunk] @ vectors.T
        out += [set(row.tolist()) for row in np.argpartition(-scores, 10, axis=1)[:, :10]]
    return out


def percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1e3
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 99)}


def measure(
    uri: str, data_dir: Path, rows: int, index: str, mixtures: Mixtures, chunk: int = 10_000
) -> dict:
    from coattn_dist.store import ClipStore

    result = {"rows": rows, "index": index}
    all_vectors = np.empty((rows, mixtures.vectors.shape[1]), dtype=np.float32)
    with ClipStore(uri, "scale", mixtures.vectors.shape[1], index=index, timeout_s=600) as store:
        store.create_if_absent()
        result["index"] = store.index_type
        start = time.monotonic()
        for i, first in enumerate(range(0, rows, chunk)):
            vectors, base = mixtures.batch(seed=i, n=min(chunk, rows - first))
            all_vectors[first : first + len(vectors)] = vectors
            store.upsert(
                [
                    {
                        "clip_id": f"c{first + j:09d}",
                        "vector": v,
                        "uri": f"s3://bench/{first + j}.flac",
                        "label": "",
                        "segments": mixtures.segments[b],
                    }
                    for j, (v, b) in enumerate(zip(vectors, base))
                ]
            )
            if i % 10 == 0:
                print(
                    f"  inserted {first + len(vectors):,} rows in {time.monotonic() - start:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        result["insert_s"] = round(time.monotonic() - start, 1)
        result["insert_rows_per_s"] = round(rows / result["insert_s"])
        start = time.monotonic()
        store.flush()
        result["flush_s"] = round(time.monotonic() - start, 1)
        result["index_wait_s"] = round(wait_for_index(store, timeout_s=3600), 1)
        assert store.count() == rows

        queries, _ = mixtures.batch(seed=10**6, n=QUERIES)  # held out: seeds above every insert's
        exact = exact_top10(queries, all_vectors)
        store.search(queries[0], k=10, with_segments=False)  # warm-up
        found, latency10, latency50 = [], [], []
        for q in queries:
            t = time.perf_counter()
            (hits,) = store.search(q, k=10, with_segments=False)
            latency10.append(time.perf_counter() - t)
            found.append([int(h.clip_id[1:]) for h in hits])
            t = time.perf_counter()
            (hits,) = store.search(q, k=50, with_segments=True)  # what the service retrieves
            latency50.append(time.perf_counter() - t)
            assert hits[0].segments.shape[1] == 512
        recall = np.mean([len(set(f) & e) / 10 for f, e in zip(found, exact)])
        result.update(
            recall_at_10=round(float(recall), 4),
            search_top10=percentiles(latency10),
            search_top50_with_segments=percentiles(latency50),
            server_rss_mib=round(rss_mib(data_dir)),
            disk_mib=round(disk_mib(data_dir)),
        )
    return result


def render(workdir: Path) -> str:
    runs = [json.loads(p.read_text()) for p in sorted(workdir.glob("*-*-*.json"))]
    lines = [
        "| backend | rows | index | insert rows/s | flush + index build | search top-10 p50 / p99 | "
        "top-50 + segments p50 / p99 | recall@10 | server RSS | disk |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(runs, key=lambda r: (r["backend"], r["rows"], r["index"])):
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {r['index']} | {r['insert_rows_per_s']:,} | "
            f"{r['flush_s']} + {r['index_wait_s']} s | {r['search_top10']['p50_ms']} / "
            f"{r['search_top10']['p99_ms']} ms | {r['search_top50_with_segments']['p50_ms']} / "
            f"{r['search_top50_with_segments']['p99_ms']} ms | {r['recall_at_10']} | "
            f"{r['server_rss_mib'] / 1024:.1f} GiB | {r['disk_mib'] / 1024:.1f} GiB |"
        )
    notes = {
        f"{r['backend']} {r['rows']:,}: {r['date']}, {r['machine']}, base vectors from "
        f"checkpoint {r['checkpoint'].replace(f'{REPO}/', '')}"
        for r in runs
    }
    return "\n".join(lines + [""] + [f"- {n}" for n in sorted(notes)])


def scale_main(doc: str, run, render, marker: str) -> None:
    """The command line of a scale benchmark (this one, and bench/query_latency.py): run one
    backend at one size into WORKDIR, or --table to render every run, --write into the results."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--backend", choices=["lite", "standalone"])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument(
        "--index", default="auto", help="auto (Lite: FLAT, Milvus: HNSW), FLAT, IVF_FLAT, HNSW"
    )
    p.add_argument(
        "--milvus-python", help="interpreter of a venv with `milvus==2.3.5` (standalone)"
    )
    p.add_argument(
        "--checkpoint", help="stage 1 for the base vectors (default: the shipped general one)"
    )
    p.add_argument("--workdir", type=Path, default=Path("/tmp/coattn-bench"))
    p.add_argument("--table", action="store_true", help="render every result in WORKDIR")
    p.add_argument("--write", type=Path, help="put the table into this Markdown file's section")
    args = p.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.table:
        run(args)
    text = render(args.workdir)
    print(text)
    if args.write:
        sys.path.insert(0, str(REPO / "bench"))
        from index_throughput import write_section

        write_section(args.write, marker, text)


@contextlib.contextmanager
def scale_collection(args: argparse.Namespace, prefix: str = "") -> Iterator[tuple[str, dict, str]]:
    """A fresh server of `args.backend` whose collection "scale" holds `args.rows` generated rows,
    measured while built; yields (uri, measurements, checkpoint) and removes the data after."""
    import shutil

    from coattn_dist.store.lite_server import milvus_lite_server
    from tests.harness.servers import milvus_standalone

    vectors, segments, checkpoint = base_features(args.workdir, args.checkpoint)
    data_dir = args.workdir / f"{prefix}{args.backend}-{args.rows}-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = (
        milvus_lite_server(data_dir)
        if args.backend == "lite"
        else milvus_standalone(data_dir, python=args.milvus_python)
    )
    try:
        with server as uri:
            result = measure(uri, data_dir, args.rows, args.index, Mixtures(vectors, segments))
            yield uri, {**result, "base_clips": len(vectors)}, checkpoint
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    with scale_collection(args) as (_, result, checkpoint):
        pass
    result.update(
        backend=args.backend,
        date=str(date.today()),
        checkpoint=checkpoint,
        machine=f"{os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
    )
    name = f"{args.backend}-{args.rows}-{result['index']}.json"
    (args.workdir / name).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    scale_main(__doc__, run, render, MARKER)
