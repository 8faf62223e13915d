"""Audio encoding, the hot path of indexing and feature caching: our torch front end + batched CNN
against aisfx's own pipeline (librosa log-mel, one clip at a time), same clips, same weights.

    .venv/bin/python bench/encode_audio.py [--clips 24] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from coattn_dist.audio import load
from coattn_dist.encoders.aisfx import AisfxEncoder

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "esc50" / "audio"


def package_pipeline(encoder: AisfxEncoder, paths: list[Path]) -> None:
    """What aisfx's README does: librosa spectrogram per file, block it, run the CNN per file."""
    from aisfx.preprocessing import blocking, spectrogram_normalize
    from aisfx.spectrogram.spectrogram_librosa import compute_spectrogram

    for p in paths:
        spec = spectrogram_normalize(
            compute_spectrogram(str(p), 44100.0, 2048, 1024, 96, 0.0, 22050.0).T
        )
        blocks = torch.tensor(blocking(spec, 100, encoder.hop_frames, True), dtype=torch.float32)
        with torch.inference_mode():
            encoder.cnn(blocks)


def ours(encoder: AisfxEncoder, paths: list[Path], batch: int) -> None:
    for i in range(0, len(paths), batch):
        encoder([load(str(p), encoder.sample_rate) for p in paths[i : i + batch]])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = sorted(SAMPLE.glob("*.flac"))[: args.clips]
    encoder = AisfxEncoder()
    ours(encoder, paths[:2], 2)  # warm up both paths
    package_pipeline(encoder, paths[:1])
    times = {}
    for name, fn in [
        ("aisfx pipeline (librosa, per clip)", lambda: package_pipeline(encoder, paths)),
        (
            f"coattn AisfxEncoder (torch, batch {args.batch})",
            lambda: ours(encoder, paths, args.batch),
        ),
    ]:
        start = time.perf_counter()
        fn()
        times[name] = time.perf_counter() - start
    base = next(iter(times.values()))
    print(
        f"| encoder path ({len(paths)} clips of 5 s, {args.threads} threads) | clips/s | speed-up |"
    )
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {len(paths) / t:.2f} | {base / t:.2f}x |")


if __name__ == "__main__":
    main()
