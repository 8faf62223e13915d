"""Indexing on one small machine: the Ray graph's stages (read -> decode -> embed -> write) in one
process, overlapped by threads instead of Ray workers.

On two cores Ray's fixed cost (worker processes importing torch, the raylet, the streaming
executor, object transfers) loses to a plain loop (BENCHMARKS.md). Here each of `workers` threads
reads, decodes and embeds a batch with one torch thread, as a Ray actor would, and one writer
thread upserts finished batches. libsndfile, torch and gRPC release the GIL, so a core is never
idle while another thread decodes, and no torch thread waits at a barrier for one that was
preempted (what a multi-threaded embed loses when decode runs beside it). Same stage functions,
same failure rows, same resume as the Ray job.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import torch

from coattn_dist.audio import DecodeLimits
from coattn_dist.pipeline.decode import decode_audio
from coattn_dist.pipeline.reader import read_bytes


def _batches(todo: pa.Table, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    for i in range(0, todo.num_rows, batch_size):
        table = todo.slice(i, batch_size)
        yield {name: np.array(table[name].to_pylist(), dtype=object) for name in table.column_names}


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads are per process: set for the run, given back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def stream_local(
    todo: pa.Table,
    embed: Callable[[dict], dict],
    write: Callable[[dict], None],
    *,
    sample_rate: int,
    batch_size: int,
    storage_options: dict | None,
    limits: DecodeLimits,
    workers: int,
) -> None:
    """Every row of `todo` (clip_id, uri, ...) read, decoded, `embed`-ed and `write`-n, in
    batches, in order. At most two batches per worker are in flight, and one write: a failed
    upsert stops the run at the next batch, with every earlier batch stored."""

    def work(batch: dict) -> dict:
        read = read_bytes(batch, storage_options, limits=limits)
        return embed(decode_audio(read, sample_rate, limits))

    with (
        _torch_threads(1),
        ThreadPoolExecutor(workers, "index-embed") as pool,
        ThreadPoolExecutor(1, "index-write") as writer,
    ):
        pending: deque[Future] = deque()
        writing: Future | None = None
        for batch in _batches(todo, batch_size):
            pending.append(pool.submit(work, batch))
            if len(pending) > 2 * workers:
                writing = _write_next(pending, writing, writer, write)
        while pending:
            writing = _write_next(pending, writing, writer, write)
        if writing is not None:
            writing.result()


def _write_next(pending: deque, writing: Future | None, writer, write) -> Future:
    embedded = pending.popleft().result()
    if writing is not None:
        writing.result()
    return writer.submit(write, embedded)
