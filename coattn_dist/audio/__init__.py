from coattn_dist.audio.decode import decode, load, read_limited
from coattn_dist.audio.errors import (
    AudioError,
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

__all__ = [
    "DEFAULT_LIMITS",
    "AudioError",
    "BadChannelsError",
    "BadRateError",
    "DecodeLimits",
    "EmptyFileError",
    "NonFiniteAudioError",
    "NotAudioError",
    "TooLargeError",
    "TooLongError",
    "TruncatedAudioError",
    "UnreadableError",
    "ZeroSamplesError",
    "decode",
    "load",
    "read_limited",
]
