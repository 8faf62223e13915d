"""Audio encoding, the hot path of indexing and feature caching: our torch front end + batched CNN
against aisfx's own pipeline (librosa log-mel, one clip at a time), same clips, same weights; and
the log-mel front end alone, one STFT per clip against one padded STFT per batch
(`AisfxEncoder.spectrograms`), best of three interleaved rounds.

    .venv/bin/python bench/encode_audio.py [--clips 24] [--threads 2] [--device cuda]
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


def front_end_ms(encoder: AisfxEncoder, waves: list, batch: int, rounds: int = 3) -> dict:
    """ms per clip of the log-mel alone: per clip (the old path) and batched, interleaved."""

    def per_clip():
        for w in waves:
            encoder.frontend(torch.as_tensor(w, device=encoder.device)[None])

    def batched():
        for i in range(0, len(waves), batch):
            encoder.spectrograms(waves[i : i + batch])

    best = {"per clip": float("inf"), f"batched ({batch})": float("inf")}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, fn in zip(best, (per_clip, batched)):
                if encoder.device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                fn()
                if encoder.device.type == "cuda":
                    torch.cuda.synchronize()
                best[name] = min(best[name], (time.perf_counter() - start) * 1e3 / len(waves))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = sorted(SAMPLE.glob("*.flac"))[: args.clips]
    encoder = AisfxEncoder(device=args.device)
    waves = [load(str(p), encoder.sample_rate) for p in paths]
    front = front_end_ms(encoder, waves, args.batch)
    per_clip = front["per clip"]
    print(
        f"| log-mel front end ({len(paths)} clips of 5 s, {args.device}) | ms per clip | speed-up |"
    )
    print("|---|---|---|")
    for name, ms in front.items():
        print(f"| {name} | {ms:.2f} | {per_clip / ms:.2f}x |")
    print()
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
