"""Caps checked from the header before a sample is read, and held while decoding."""

import dataclasses
import tracemalloc

import numpy as np
import pytest

from coattn_dist.audio import (
    BadChannelsError,
    BadRateError,
    DecodeLimits,
    TooLargeError,
    TooLongError,
    TruncatedAudioError,
    decode,
    load,
)
from tests.audio.hostile import encoded, flac_claiming, noise, silence_flac, wav_with

SR = 16000


@pytest.mark.parametrize(
    "data, error",
    [
        (wav_with(rate=1), BadRateError),  # would be upsampled 44,100x
        (wav_with(rate=4000), BadRateError),
        (wav_with(rate=40_000_000), BadRateError),  # a ZeroDivisionError in the resampler once
        (wav_with(channels=0), BadChannelsError),
        (encoded(noise(0.05, channels=64)), BadChannelsError),
        (flac_claiming(2**36 - 1), TooLongError),  # 256 GiB of float32 asked for by 40 bytes
    ],
    ids=["1 Hz", "4 kHz", "40 MHz", "0 channels", "64 channels", "FLAC claiming 2^36 frames"],
)
def test_a_lying_header_is_refused_with_its_kind(data, error):
    with pytest.raises(error) as raised:
        decode(data, "hostile.wav", SR)
    assert raised.value.uri == "hostile.wav" and raised.value.reason


def test_caps_are_configurable_and_checked_before_decoding():
    clip = encoded(noise(3.0))
    with pytest.raises(TooLargeError, match="max_bytes"):
        decode(clip, "big.wav", SR, DecodeLimits(max_bytes=1000))
    with pytest.raises(TooLongError, match="max_seconds"):
        decode(clip, "long.wav", SR, DecodeLimits(max_seconds=1.0))
    assert len(decode(clip, "ok.wav", SR, DecodeLimits(max_seconds=3.5))) == 3 * SR
    wide = DecodeLimits(max_channels=64)
    assert decode(encoded(noise(0.05, channels=64)), "64.wav", SR, wide).ndim == 1
    with pytest.raises(ValueError):
        DecodeLimits(min_rate=48000, max_rate=8000)


def test_a_flac_of_unknown_length_is_a_failure_not_a_giant():
    """STREAMINFO's 0 ("unknown") reads as 2^63 frames: not refused as too long (the decoder
    counts against the cap as it goes instead), and libsndfile cannot finish such a stream from
    memory, which is reported as a failure of its own kind."""
    with pytest.raises(TruncatedAudioError):
        decode(flac_claiming(0, seconds=2.0), "unknown.flac", SR)


def test_a_read_never_takes_more_than_the_cap(tmp_path):
    path = tmp_path / "big.wav"
    path.write_bytes(encoded(noise(2.0)))
    tracemalloc.start()
    with pytest.raises(TooLargeError):
        load(str(path), SR, limits=DecodeLimits(max_bytes=4096))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 1024  # 4 KiB read, not the 88 KiB file


def test_decoding_a_silence_bomb_stays_within_its_output():
    """20 minutes of silence compress to a few KB; decoding holds the mono result and one block,
    never the whole file at once in several copies."""
    bomb = silence_flac(1200.0)
    assert len(bomb) < 200_000
    tracemalloc.start()
    wave = decode(bomb, "bomb.flac", 8000, DecodeLimits(max_seconds=1800))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(wave) == 1200 * 8000 and not np.any(wave)
    assert peak < 2.5 * wave.nbytes  # blocks + their concatenation, no float64 or stereo copy
    with pytest.raises(TooLongError):
        decode(bomb, "bomb.flac", 8000, dataclasses.replace(DecodeLimits(), max_seconds=600))
