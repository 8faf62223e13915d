"""Typed audio failures.

Bulk jobs skip a bad clip and record why; `kind` is the stable value of that record's "error
kind" column, so renaming one is a schema change. Arguments stay in `args` so the errors survive
pickling across Ray workers.
"""

from typing import ClassVar


class AudioError(Exception):
    kind: ClassVar[str] = "audio_error"

    def __init__(self, uri: str, reason: str):
        super().__init__(uri, reason)
        self.uri = uri
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.uri}: {self.reason}"


class EmptyFileError(AudioError):
    kind = "empty"


class TruncatedAudioError(AudioError):
    kind = "truncated"


class NotAudioError(AudioError):
    kind = "not_audio"


class ZeroSamplesError(AudioError):
    kind = "zero_samples"


class NonFiniteAudioError(AudioError):
    kind = "non_finite"


class UnreadableError(AudioError):
    kind = "unreadable"


class TooLargeError(AudioError):
    kind = "too_large"


class TooLongError(AudioError):
    kind = "too_long"


class BadRateError(AudioError):
    kind = "bad_rate"


class BadChannelsError(AudioError):
    kind = "bad_channels"
