"""Indexing on one small machine: the Ray graph's stages (read -> decode -> embed -> write) in one
process, overlapped by threads instead of Ray workers.

On two cores Ray's fixed cost (worker processes importing torch, the raylet, the streaming
executor, object transfers) and single-threaded actors lose to a plain loop (BENCHMARKS.md). Here
a reader thread reads and decodes the next batches while the calling thread embeds with torch on
every core, and a writer thread upserts the batch before. libsndfile, torch and gRPC release the
GIL, so the three overlap. Same stage functions, same failure rows, same resume as the Ray job.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

import numpy as np
import pyarrow as pa

from coattn_dist.audio import DecodeLimits
from coattn_dist.pipeline.decode import decode_audio
from coattn_dist.pipeline.reader import read_bytes

PREFETCH = 2  # decoded batches waiting for the embedder: enough to hide a slow read


def _batches(todo: pa.Table, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    for i in range(0, todo.num_rows, batch_size):
        table = todo.slice(i, batch_size)
        yield {name: np.array(table[name].to_pylist(), dtype=object) for name in table.column_names}


def stream_local(
    todo: pa.Table,
    embed: Callable[[dict], dict],
    write: Callable[[dict], None],
    *,
    sample_rate: int,
    batch_size: int,
    storage_options: dict | None,
    limits: DecodeLimits,
) -> None:
    """Every row of `todo` (clip_id, uri, ...) read, decoded, `embed`-ed and `write`-n, in
    batches. One write is in flight at a time, so a failed upsert stops the run at the next batch,
    with every earlier batch stored."""

    def prepare(batch: dict) -> dict:
        read = read_bytes(batch, storage_options, limits=limits)
        return decode_audio(read, sample_rate, limits)

    batches = _batches(todo, batch_size)
    with ThreadPoolExecutor(1, "index-read") as reader, ThreadPoolExecutor(1, "index-write") as w:
        ready = deque(reader.submit(prepare, b) for b in islice(batches, PREFETCH))
        writing: Future | None = None
        while ready:
            batch = ready.popleft().result()
            if (upcoming := next(batches, None)) is not None:
                ready.append(reader.submit(prepare, upcoming))
            embedded = embed(batch)
            if writing is not None:
                writing.result()
            writing = w.submit(write, embedded)
        if writing is not None:
            writing.result()
