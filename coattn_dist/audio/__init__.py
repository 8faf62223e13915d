from coattn_dist.audio.decode import decode, load
from coattn_dist.audio.errors import (
    AudioError,
    EmptyFileError,
    NonFiniteAudioError,
    NotAudioError,
    TruncatedAudioError,
    UnreadableError,
    ZeroSamplesError,
)

__all__ = [
    "AudioError",
    "EmptyFileError",
    "NonFiniteAudioError",
    "NotAudioError",
    "TruncatedAudioError",
    "UnreadableError",
    "ZeroSamplesError",
    "decode",
    "load",
]
