"""Decoding, the CPU side of indexing: the bounded decoder (`coattn_dist.audio.decode`: header
caps, truncation checks, block-wise read and down-mix) against a plain whole-file
``soundfile.read`` + channel mean, same bytes, at the file's own rate (no resampling).

    .venv/bin/python bench/decode_audio.py [--clips 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import soundfile as sf

from coattn_dist.audio import decode

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "esc50" / "audio"


def plain(data: bytes) -> None:
    samples, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    samples.mean(axis=1)


def bounded(data: bytes) -> None:
    decode(data, "bench.flac", 44100)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    clips = [p.read_bytes() for p in sorted(SAMPLE.glob("*.flac"))[: args.clips]]
    best = {}
    for _ in range(args.rounds):  # interleaved rounds, best of each: load spikes hit both
        for name, fn in (
            ("plain soundfile.read + mean", plain),
            ("coattn decode (bounded)", bounded),
        ):
            start = time.perf_counter()
            for data in clips:
                fn(data)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    base = next(iter(best.values()))
    print(f"| decoder ({len(clips)} FLAC clips of 5 s at 44.1 kHz, 1 core) | ms per clip | ratio |")
    print("|---|---|---|")
    for name, t in best.items():
        print(f"| {name} | {t / len(clips) * 1000:.2f} | {base / t:.2f}x |")


if __name__ == "__main__":
    main()
