"""Indexing, wired: one streaming Ray Data graph, read -> decode -> embed -> write.

The stages overlap: CPU tasks read and decode the next blocks while the actor pool embeds the
current ones and write tasks upsert the ones before. Ray Data's streaming executor keeps only a
bounded window of blocks in flight, so memory does not grow with the collection; what the driver
holds is the listing (a few hundred bytes per clip) and the failure rows. On one small machine
the same stages run in this process instead (`pipeline.local`, `choose_layout`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import ray

from coattn_dist.audio import DEFAULT_LIMITS, DecodeLimits
from coattn_dist.model import RetrievalModel
from coattn_dist.pipeline.decode import decode_audio
from coattn_dist.pipeline.embed import ClipEmbedder, encoder_sample_rate
from coattn_dist.pipeline.local import stream_local
from coattn_dist.pipeline.reader import drop_indexed, prune_gone, read_bytes, screen
from coattn_dist.pipeline.writer import MilvusSink, store_batch, write_failures
from coattn_dist.progress import Progress
from coattn_dist.store import ClipStore
from coattn_dist.store.fingerprint import record_fingerprint
from coattn_dist.store.lite_server import milvus_lite_server
from coattn_dist.store.milvus import TOKEN_ENV
from coattn_dist.store.roots import record_roots, roots_of

# Logical CPUs of the light stages: on a 2-CPU machine an actor pool that takes every CPU leaves
# none for the read tasks and the job deadlocks (PLATFORM.md), so nothing here asks for a whole one.
EMBED_CPUS, TASK_CPUS = 0.5, 0.25
# Clips per embedding call. On a CPU the CNN's activations for 4 clips (12 blocks) stay in cache:
# 16 clips per call cost 25-35 % more per clip (measured, 1 and 2 threads). A GPU wants more.
CPU_BATCH, GPU_BATCH = 4, 16
# torch threads per embed actor on CPUs (`--embed-threads`); the layout measured in BENCHMARKS.md
CPU_THREADS = 1
# Where the job runs (`choose_layout`): "ray" (the Ray Data graph, any cluster), "local" (one
# process, `pipeline.local`), or "auto": local on a machine of at most LOCAL_MAX_CPUS CPUs, no GPU
# and no cluster, where it measured faster than Ray end to end and in the steady state
# (BENCHMARKS.md, 2 CPUs); Ray everywhere else.
LAYOUTS = ("auto", "ray", "local")
LOCAL_MAX_CPUS = 2
# How long the embed pool may take to start before the job fails with Ray's "not enough resources"
# error: long enough for an autoscaler to bring up GPU nodes, short of hanging forever.
ACTOR_START_TIMEOUT_S = 900


@dataclass
class IndexSummary:
    indexed: int
    skipped: int  # already in the collection before this run
    failed: int
    seconds: float
    clips_per_s: float  # clips processed (indexed + failed) per second of the whole run
    collection: str
    failures: str  # path of the failures table
    nodes: dict[str, int]  # clips embedded per Ray node id: where the work ran
    changed: int = 0  # indexed again: the file changed since (its size or version did)
    pruned: int = 0  # removed: their file is gone from the source (with prune=True)
    # seconds from the start to the first clip stored: the job's fixed cost (planning, workers
    # importing their libraries, models loading) plus one batch; None when nothing was stored
    startup_s: float | None = None


class IndexingStopped(Exception):
    """A permanent error stopped the job; `summary` counts what was written before it."""

    def __init__(self, message: str, summary: IndexSummary):
        super().__init__(message)
        self.summary = summary


class Tally:
    """What reached the collection, by clip: the driver's progress, counts and failures table.

    Write tasks report after each committed upsert; Ray may retry a task that already reported,
    so rows are counted by id, not by report. Failure rows are kept here as they arrive, so the
    table is written when a run stops as well as when it ends. An actor (`RemoteTally`) in the
    Ray layout, a plain object in the local one.
    """

    def __init__(self):
        self.indexed: set[str] = set()
        self.failed: dict[tuple[str, str], dict] = {}
        self.node_of: dict[str, str] = {}
        self.first_stored: float | None = None  # wall clock: the driver may be on another node

    def add(self, indexed: list[str], failures: list[dict], nodes: dict[str, str]) -> None:
        if indexed and self.first_stored is None:
            self.first_stored = time.time()
        self.indexed.update(indexed)
        self.failed.update(((f["clip_id"], f["uri"]), f) for f in failures)
        self.node_of.update(nodes)

    def totals(self) -> tuple[int, int]:
        return len(self.indexed), len(self.failed)

    def started(self) -> float | None:
        return self.first_stored

    def placement(self) -> dict[str, int]:
        return dict(Counter(self.node_of.values()))

    def failures(self) -> list[dict]:
        return list(self.failed.values())


RemoteTally = ray.remote(num_cpus=0)(Tally)


def _asker(tally) -> Callable:
    """``ask(method, *args)``: a tally's answer, from its actor or from the object itself."""
    if isinstance(tally, Tally):
        return lambda method, *args: getattr(tally, method)(*args)
    return lambda method, *args: ray.get(getattr(tally, method).remote(*args))


def choose_layout(layout: str = "auto") -> str:
    """ "ray" or "local" for `layout` (one of LAYOUTS); see LAYOUTS for what "auto" picks."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if layout != "auto":
        return layout
    import torch

    cluster = bool(os.environ.get("RAY_ADDRESS")) or (ray.is_initialized() and len(ray.nodes()) > 1)
    small = len(os.sched_getaffinity(0)) <= LOCAL_MAX_CPUS
    return "local" if small and not cluster and not torch.cuda.is_available() else "ray"


@contextlib.contextmanager
def served(milvus_uri: str) -> Iterator[str]:
    """A Milvus Lite `.db` path is locked by the one process that opens it, and the job writes
    from several: for the job's duration the path is served by Milvus Lite's own server."""
    if not milvus_uri.endswith(".db"):
        yield milvus_uri
        return
    with milvus_lite_server(milvus_uri) as uri:
        yield uri


def embed_pool(
    num_workers: int | None, batch_size: int | None, threads: int | None = None
) -> tuple[int, int, dict]:
    """(actors, clips per call, resources of each actor): one GPU apiece when the cluster has
    GPUs; else one actor per `threads` CPUs (default `CPU_THREADS`), each running that many torch
    threads."""
    resources = ray.cluster_resources()
    if resources.get("GPU", 0) >= 1:
        return num_workers or int(resources["GPU"]), batch_size or GPU_BATCH, {"num_gpus": 1}
    threads = threads or CPU_THREADS
    return (
        num_workers or max(1, int(resources.get("CPU", 1)) // threads),
        batch_size or CPU_BATCH,
        {"num_cpus": EMBED_CPUS},
    )


def build_dataset(
    todo: pa.Table,
    sample_rate: int,
    batch_size: int | None,
    num_workers: int | None,
    storage_options: dict | None,
    encoder_class: type,
    encoder_kwargs: dict,
    limits: DecodeLimits = DEFAULT_LIMITS,
    threads: int | None = None,
) -> ray.data.Dataset:
    """read -> decode (CPU tasks) -> `encoder_class` (an actor pool) over `todo` (clip_id, uri)."""
    size, batch_size, resources = embed_pool(num_workers, batch_size, threads)
    if "num_gpus" not in resources:
        encoder_kwargs = {**encoder_kwargs, "threads": threads or CPU_THREADS}
    blocks = [todo.slice(i, batch_size) for i in range(0, todo.num_rows, batch_size)]
    size = min(size, len(blocks))  # an actor loads a model: none without a block to embed
    dataset = (
        ray.data.from_arrow(blocks)
        .map_batches(
            read_bytes,
            fn_kwargs={"storage_options": storage_options, "limits": limits},
            batch_format="numpy",
            num_cpus=TASK_CPUS,
        )
        .map_batches(
            decode_audio,
            fn_kwargs={"sample_rate": sample_rate, "limits": limits},
            batch_format="numpy",
            num_cpus=TASK_CPUS,
        )
        .map_batches(
            encoder_class,
            compute=ray.data.ActorPoolStrategy(size=size),
            fn_constructor_kwargs=encoder_kwargs,
            batch_size=batch_size,
            batch_format="numpy",
            **resources,
        )
    )
    # Blocks go to whichever actors are up: without this wait, the first actor to load its model
    # takes every block of a short job while the others (on other nodes) are still starting.
    dataset.context.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S
    return dataset


def run_index(
    listing: pa.Table,
    checkpoint: str,
    milvus_uri: str,
    collection: str,
    failures_path: str,
    *,
    batch_size: int | None = None,
    num_workers: int | None = None,
    num_writers: int = 2,
    storage_options: dict | None = None,
    store_options: dict | None = None,
    progress_every_s: float = 5.0,
    limits: DecodeLimits = DEFAULT_LIMITS,
    roots: list[str] | None = None,
    prune: bool = False,
    reindex: bool = False,
    embed_threads: int | None = None,
    layout: str = "auto",
    precision: str = "auto",
) -> IndexSummary:
    """Index every clip of `listing` (clip_id, uri, label, size, version) that the collection
    lacks or holds from an older version of its file.

    `roots`: the folders or prefixes the listing came from, recorded with the collection as the
    only places the service may stream audio from (default: the folders of the listed files).
    `prune`: also remove the rows under those roots whose file the listing no longer has.
    `reindex`: drop the collection first: every clip embedded again, with this checkpoint. Without
    it, a collection indexed with another checkpoint is refused (`store.fingerprint`).
    `embed_threads`: torch threads per embed actor on CPUs (`embed_pool`).
    `layout`: "ray", "local" or "auto" (`choose_layout`); the Ray layout needs Ray initialised.
    `precision`: the audio CNN's, "auto", "fp32" or "bf16" (`encoders.aisfx.AisfxEncoder`).

    Raises `IndexingStopped` on a permanent error (Milvus or the object store unavailable after
    retries, a collection of another dimension); whatever was written before stays written.
    """
    start, began, skipped, changed, pruned = time.monotonic(), time.time(), 0, 0, 0
    # the write tasks run in Ray workers, which may not share the driver's environment
    store_options = {"token": os.environ.get(TOKEN_ENV, ""), **(store_options or {})}
    layout = choose_layout(layout)
    tally = Tally() if layout == "local" else RemoteTally.remote()
    ask = _asker(tally)

    def summary() -> IndexSummary:
        (indexed, failed), nodes, first = ask("totals"), ask("placement"), ask("started")
        seconds = time.monotonic() - start
        return IndexSummary(
            indexed,
            skipped,
            failed,
            round(seconds, 2),
            round((indexed + failed) / seconds, 2),
            collection,
            failures_path,
            nodes,
            changed,
            pruned,
            None if first is None else round(first - began, 2),
        )

    stopped: Exception | None = None
    try:
        listing, rejected = screen(listing)  # malformed rows: failures, before any id lookup
        ask("add", [], rejected, {})
        model = RetrievalModel.load(checkpoint, storage_options=storage_options)
        cfg, fingerprint = model.cfg, model.fingerprint()
        roots = roots or roots_of(listing["uri"].to_pylist())
        with served(milvus_uri) as uri:
            with ClipStore(uri, collection, cfg.model.dim, **store_options) as store:
                if reindex:
                    store.drop()
                store.create_if_absent()  # a collection of another dimension fails here, at once
                record_fingerprint(store, fingerprint)  # ... and one of another checkpoint here
                record_roots(store, roots)
                todo, skipped, changed = drop_indexed(listing, store)
            if todo.num_rows and layout == "local":
                with _reporting(ask, todo.num_rows, progress_every_s):
                    _index_here(
                        todo,
                        checkpoint,
                        uri,
                        collection,
                        cfg.model.dim,
                        store_options,
                        tally,
                        batch_size=batch_size or CPU_BATCH,
                        storage_options=storage_options,
                        limits=limits,
                        precision=precision,
                    )
            elif todo.num_rows:
                sink = MilvusSink(uri, collection, cfg.model.dim, store_options, tally)
                dataset = build_dataset(
                    todo,
                    encoder_sample_rate(cfg.audio),
                    batch_size,
                    num_workers,
                    storage_options,
                    ClipEmbedder,
                    {
                        "checkpoint": checkpoint,
                        "storage_options": storage_options,
                        "precision": precision,
                    },
                    limits,
                    embed_threads,
                )
                with _reporting(ask, todo.num_rows, progress_every_s):
                    dataset.write_datasink(
                        sink, concurrency=num_writers, ray_remote_args={"num_cpus": TASK_CPUS}
                    )
            if prune:
                with ClipStore(uri, collection, cfg.model.dim, **store_options) as store:
                    pruned = prune_gone(store, listing, roots)
    except Exception as error:  # whatever stopped it, the user gets the reason and the counts
        stopped = error
    try:  # the failures so far, also when the run stopped: what to fix before the rerun
        write_failures(ask("failures"), failures_path, storage_options)
    except Exception as error:
        stopped = stopped or error
    try:
        if stopped is not None:
            raise IndexingStopped(_reason(stopped), summary()) from stopped
        return summary()
    finally:
        if layout == "ray":
            ray.kill(tally)  # the sink keeps a handle, and a long-lived driver may keep the sink


def _index_here(
    todo: pa.Table,
    checkpoint: str,
    uri: str,
    collection: str,
    dim: int,
    store_options: dict,
    tally: Tally,
    *,
    batch_size: int,
    storage_options: dict | None,
    limits: DecodeLimits,
    precision: str,
) -> None:
    """The local layout: `pipeline.local` with the Ray layout's embedder and writes."""
    embedder = ClipEmbedder(checkpoint, storage_options, device="cpu", precision=precision)
    with ClipStore(uri, collection, dim, **store_options) as store:

        def write(columns: dict) -> None:
            tally.add(*store_batch(store, columns))

        stream_local(
            todo,
            embedder,
            write,
            sample_rate=embedder.encoder.sample_rate,
            batch_size=batch_size,
            storage_options=storage_options,
            limits=limits,
            workers=len(os.sched_getaffinity(0)),
        )
        store.flush()  # sealed segments, as MilvusSink.on_write_complete


@contextlib.contextmanager
def _reporting(ask: Callable, total: int, every_s: float) -> Iterator[None]:
    """A progress line (done/total, clips/s, ETA) every `every_s` seconds while the job runs."""
    progress, stop = Progress("index", total, every_s), threading.Event()

    def watch() -> None:
        while not stop.wait(min(1.0, every_s)):
            if (done := sum(ask("totals"))) < total:  # the last line comes below
                progress(done)

    thread = threading.Thread(target=watch, name="index-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        progress(sum(ask("totals")))


def _reason(error: BaseException) -> str:
    """What the user has to fix: the task's own error without Ray's wrapping, first line only
    (Ray appends its retry advice to the message)."""
    while isinstance(error, ray.exceptions.RayError) and getattr(error, "cause", None) is not None:
        error = error.cause
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
