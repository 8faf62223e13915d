"""Files that lie in their headers, made here from real encodes: the hostile half of the corpus
that the decoder and the index job are tested against."""

import io
import struct

import numpy as np
import soundfile as sf

FLAC_TOTAL_SAMPLES_AT = 8 + 13  # 'fLaC', the block header, then STREAMINFO byte 13 (36 bits)


def noise(seconds: float, rate: int = 22050, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((round(seconds * rate), channels))).astype(np.float32)


def encoded(samples: np.ndarray, rate: int = 22050, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def wav_with(rate: int | None = None, channels: int | None = None, seconds: float = 0.5) -> bytes:
    """A real WAV whose fmt chunk then claims another rate or channel count."""
    data = bytearray(encoded(noise(seconds)))
    if rate is not None:
        data[24:28] = struct.pack("<I", rate)
        data[28:32] = struct.pack("<I", rate * 2)
    if channels is not None:
        data[22:24] = struct.pack("<H", channels)
    return bytes(data)


def flac_claiming(total_samples: int, seconds: float = 1.0) -> bytes:
    """A real FLAC whose STREAMINFO claims ``total_samples`` (0 means "unknown")."""
    data = bytearray(encoded(noise(seconds), fmt="FLAC"))
    at = FLAC_TOTAL_SAMPLES_AT
    data[at] = (data[at] & 0xF0) | (total_samples >> 32) & 0x0F
    data[at + 1 : at + 5] = struct.pack(">I", total_samples & 0xFFFFFFFF)
    return bytes(data)


def silence_flac(seconds: float, rate: int = 8000) -> bytes:
    """Digital silence: FLAC compresses it ~1,000x, a decode bomb in miniature."""
    return encoded(np.zeros((round(seconds * rate), 1), np.float32), rate, "FLAC")
