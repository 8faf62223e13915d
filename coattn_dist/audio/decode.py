"""Bytes or URI -> mono float32 waveform at a chosen rate.

soundfile (libsndfile) decodes because torchaudio.load needs FFmpeg. libsndfile hands back the
readable prefix of some damaged files without complaint, so results are checked here and every
failure becomes exactly one `AudioError`: a bulk job records its kind instead of crashing or
indexing half a clip.
"""

import functools
import io
import struct
from fractions import Fraction

import numpy as np
import soundfile as sf

from coattn_dist.audio.errors import (
    BadChannelsError,
    BadRateError,
    EmptyFileError,
    NonFiniteAudioError,
    NotAudioError,
    TooLargeError,
    TooLongError,
    TruncatedAudioError,
    UnreadableError,
    ZeroSamplesError,
)
from coattn_dist.audio.limits import DEFAULT_LIMITS, DecodeLimits
from coattn_dist.audio.paths import open_uri

_SIGNATURES = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"ID3")
_WAV_SIZE_UNKNOWN = 0xFFFFFFFF  # written by streaming encoders that cannot seek back
_OGG_END_OF_STREAM = 0x04
# torchaudio's sinc kernel is (target/gcd) x (orig/gcd): 44101 -> 16000 Hz would take ~3 GB.
_MAX_RATE_TERM = 1000
_BLOCK_FRAMES = 1 << 18  # 6 s at 44.1 kHz: most clips in one read; memory stays the mono result
_UNKNOWN_FRAMES = 2**63 - 1  # libsndfile's frame count for a stream that does not say (FLAC: 0)


def load(
    uri: str,
    sample_rate: int,
    storage_options: dict | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> np.ndarray:
    """Read a local path or fsspec URI (s3://, gs://, file://, memory://, ...) and decode it."""
    return decode(read_limited(uri, storage_options or {}, limits), uri, sample_rate, limits)


def read_limited(uri: str, storage_options: dict, limits: DecodeLimits = DEFAULT_LIMITS) -> bytes:
    """The file's bytes (``UnreadableError``, or ``TooLargeError`` past ``limits.max_bytes``)."""
    try:
        data = read_capped(uri, storage_options, limits)
    except Exception as e:  # each backend has its own: OSError, botocore, aiohttp, ImportError
        raise UnreadableError(uri, f"cannot read: {type(e).__name__}: {e}") from e
    check_size(data, uri, limits)
    return data


def read_capped(uri: str, storage_options: dict, limits: DecodeLimits) -> bytes:
    """At most one byte past ``limits.max_bytes`` of the file, whatever its size claims to be (a
    size from a listing or a HEAD can be stale, the read itself cannot); `check_size` then says
    whether it was over. Raises what the backend raises: callers classify it."""
    with open_uri(uri, storage_options) as f:
        return f.read(limits.max_bytes + 1)


def check_size(data: bytes, uri: str, limits: DecodeLimits) -> None:
    if len(data) > limits.max_bytes:
        raise TooLargeError(uri, f"file is over the {limits.max_bytes}-byte cap (max_bytes)")


def decode(
    data: bytes, uri: str, sample_rate: int, limits: DecodeLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """Decode WAV/FLAC/OGG/MP3 bytes to a 1-D float32 mono array at `sample_rate`.

    `uri` only names the file in errors. Raises an `AudioError` subclass for every bad input,
    including a header that asks for more than ``limits`` allow (``audio.limits``).

    Truncation detected (measured with libsndfile 1.2 by cutting real files at every offset):
    - WAV: the data chunk declares more bytes than the file holds (libsndfile would silently
      return the prefix, so the RIFF chunks are walked here).
    - Ogg: the file does not end with a complete page flagged end-of-stream (Ogg stores no
      total length; libsndfile takes it from the last page present).
    - FLAC: the decoder loses sync or fails to seek at the cut, or decodes fewer frames than
      STREAMINFO declares.
    - MP3 with a Xing/Info/VBRI header (LAME, soundfile): fewer frames than the header declares.
    - Any format cut inside its header: its signature is known but libsndfile cannot open it.
    Not detected: MP3 without such a header, whose length libsndfile estimates from the file
    size and the first frame's bitrate, so a cut one reads as a shorter stream; its estimate is
    not held against it either (complete variable-bitrate files decode up to 20 % short of it). A body that fails to decode mid-stream (a
    FLAC CRC error) is reported as truncated: libsndfile cannot tell a cut from corruption.
    """
    if not data:
        raise EmptyFileError(uri, "file is empty (0 bytes)")
    check_size(data, uri, limits)
    if _container_is_truncated(data):
        raise TruncatedAudioError(uri, "file ends before its container says it does")
    mono, file_rate = _read_mono(data, uri, limits)
    if not np.isfinite(mono).all():
        raise NonFiniteAudioError(uri, "samples contain NaN or Inf")
    return _resample(mono, file_rate, sample_rate)


def _read_mono(data: bytes, uri: str, limits: DecodeLimits) -> tuple[np.ndarray, int]:
    """Down-mixed float32 samples and their rate; raises on anything short of complete, and on a
    header or a stream that asks for more than ``limits``."""
    try:
        f = sf.SoundFile(io.BytesIO(data))
    except sf.SoundFileError as e:
        if "channel count is zero" in str(e).lower():
            raise BadChannelsError(uri, "the header declares 0 channels") from e
        if data.startswith(_SIGNATURES) or _is_mpeg_sync(data):
            raise TruncatedAudioError(uri, f"audio header is incomplete: {e}") from e
        raise NotAudioError(uri, f"not a recognised audio format: {e}") from e
    with f:
        rate = f.samplerate
        declared = 0 if f.frames == _UNKNOWN_FRAMES else f.frames  # unknown: the cap still holds
        if f.format == "MP3" and not _mp3_declares_length(data):
            declared = 0  # libsndfile's guess from the file size, not a length to hold it to
        _check_header(f.channels, rate, declared, uri, limits)
        max_frames = int(limits.max_seconds * rate)
        blocks, total = [], 0
        try:
            while block := len(chunk := f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)):
                total += block
                if total > max_frames:  # the header undersold it (or declared nothing)
                    raise TooLongError(uri, _too_long(limits))
                blocks.append(chunk.mean(axis=1))
        except sf.SoundFileError as e:
            raise TruncatedAudioError(uri, f"decoding stopped early: {e}") from e
    if total < declared:
        raise TruncatedAudioError(uri, f"decoded {total} of {declared} declared frames")
    if total == 0:
        raise ZeroSamplesError(uri, "audio stream has no frames")
    return np.concatenate(blocks), rate


def _check_header(channels: int, rate: int, frames: int, uri: str, limits: DecodeLimits) -> None:
    if not 1 <= channels <= limits.max_channels:
        raise BadChannelsError(
            uri, f"{channels} channels, outside 1-{limits.max_channels} (max_channels)"
        )
    if not limits.min_rate <= rate <= limits.max_rate:
        raise BadRateError(
            uri, f"sample rate {rate} Hz, outside {limits.min_rate}-{limits.max_rate} Hz"
        )
    if frames > limits.max_seconds * rate:
        raise TooLongError(uri, f"header declares {frames / rate:.0f} s; " + _too_long(limits))


def _too_long(limits: DecodeLimits) -> str:
    return f"longer than the {limits.max_seconds:g} s cap (max_seconds)"


def _is_mpeg_sync(data: bytes) -> bool:
    """MP3 without an ID3 tag starts with an 11-bit frame sync."""
    return len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0


def _mp3_declares_length(data: bytes) -> bool:
    """True when the first MPEG frame (after any ID3v2 tag) is a Xing, Info or VBRI header,
    the only place an MP3 states its length."""
    start = 0
    if data[:3] == b"ID3" and len(data) >= 10:  # tag size: four 7-bit bytes, + 10 for the header
        start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
    first_frame = data[start : start + 200]
    return any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI"))


def _container_is_truncated(data: bytes) -> bool:
    """The checks libsndfile skips: a WAV data chunk or an Ogg stream cut short."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return _wav_is_truncated(data)
    if data[:4] == b"OggS":
        return _ogg_is_truncated(data)
    return False


def _wav_is_truncated(data: bytes) -> bool:
    """True when the file ends before its data chunk does (or before that chunk starts)."""
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = struct.unpack_from("<4sI", data, pos)
        if chunk == b"data":
            return size != _WAV_SIZE_UNKNOWN and size > len(data) - pos - 8
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    return True


def _ogg_is_truncated(data: bytes) -> bool:
    """True unless the pages run complete up to one flagged end-of-stream."""
    pos, flags = 0, 0
    while data.startswith(b"OggS", pos):
        if pos + 27 > len(data):
            return True
        n_segments, flags = data[pos + 26], data[pos + 5]
        pos += 27 + n_segments + sum(data[pos + 27 : pos + 27 + n_segments])
    return pos > len(data) or not flags & _OGG_END_OF_STREAM


def _resample(mono: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    if orig_rate == target_rate:
        return mono
    import torch  # here, not at the top: a decode task whose clips are at the rate never loads it

    return _resampler(orig_rate, target_rate)(torch.from_numpy(mono)).numpy()


@functools.lru_cache(maxsize=32)
def _resampler(orig_rate: int, target_rate: int):
    """torchaudio's Resample, built once per rate pair: building costs ~3x applying it to a 5 s
    clip.

    Common rates are exact. Off-grid ones (44101 Hz) use the nearest ratio with a denominator
    up to `_MAX_RATE_TERM`, shifting time and pitch by < 0.1 % (4e-6 for 44101 -> 16000 Hz).
    """
    import torchaudio

    ratio = Fraction(target_rate, orig_rate).limit_denominator(_MAX_RATE_TERM)
    return torchaudio.transforms.Resample(ratio.denominator, ratio.numerator)
