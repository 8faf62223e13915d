"""What a file may ask of a decoder before it is read: bytes, duration, sample rate, channels.

A header is a claim, not a measurement: a 40-byte FLAC can declare 2^36 frames (256 GiB of
float32), a WAV at 1 Hz asks for a 44,100x upsampling, and silence compresses 1,000-4,000x. The
header is checked against these caps before any sample is read, and decoding then runs block by
block, stopping at the duration cap whatever the header said, so one file can never take a
worker's memory. Each refusal has its own failure kind (``errors``), so a user sees why.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 512 * 2**20  # encoded size; a read stops one byte past it
    max_seconds: float = 3600.0  # decoded duration (one hour is 635 MB of mono float32 at 44.1 kHz)
    min_rate: int = 8000  # Hz; telephone audio is the lowest rate worth embedding
    max_rate: int = 192000  # Hz; studio masters
    max_channels: int = 32  # ambisonics and film stems stay under it

    def __post_init__(self):
        if self.max_bytes < 1 or self.max_seconds <= 0 or not 0 < self.min_rate <= self.max_rate:
            raise ValueError(f"decode limits must be positive and min_rate <= max_rate: {self}")
        if self.max_channels < 1:
            raise ValueError(f"max_channels must be at least 1, not {self.max_channels}")


DEFAULT_LIMITS = DecodeLimits()
