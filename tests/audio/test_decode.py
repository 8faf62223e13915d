import io
import itertools
import pickle
import shutil
from pathlib import Path

import fsspec
import numpy as np
import pytest
import soundfile as sf

from coattn_dist.audio import (
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
    decode,
    load,
)
from coattn_dist.audio.decode import _mp3_declares_length

SR = 16000
ESC50_CLIP = Path(__file__).resolve().parents[2] / "samples/esc50/audio/4-102844-A-49.flac"
FORMATS = {  # extension -> soundfile subtype
    "wav": "PCM_16",
    "flac": "PCM_16",
    "ogg": "VORBIS",
    "mp3": "MPEG_LAYER_III",
}


def sine(freq: float, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def encode(samples: np.ndarray, rate: int, ext: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=ext.upper(), subtype=subtype or FORMATS[ext])
    return buf.getvalue()


def peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return np.fft.rfftfreq(len(signal), 1 / rate)[spectrum.argmax()]


@pytest.fixture
def esc50_clip(tmp_path: Path) -> Path:
    return Path(shutil.copy(ESC50_CLIP, tmp_path))


def test_real_clip_is_mono_float32_at_target_rate(esc50_clip: Path):
    audio = load(str(esc50_clip), SR)

    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 5 * SR) <= 2
    assert np.abs(audio).max() > 0.01


def test_native_rate_returns_the_samples_unchanged(esc50_clip: Path):
    expected, rate = sf.read(esc50_clip, dtype="float32")

    np.testing.assert_array_equal(load(str(esc50_clip), rate), expected)


SHAPES = [  # MP3 holds at most two channels
    (ext, rate, channels, seconds)
    for ext, rate, channels, seconds in itertools.product(
        FORMATS, [8000, 22050, 48000], [1, 2, 6], [0.05, 0.7]
    )
    if not (ext == "mp3" and channels > 2)
]


@pytest.mark.parametrize("ext, rate, channels, seconds", SHAPES)
def test_any_format_rate_channels_and_length(tmp_path, ext, rate, channels, seconds):
    path = tmp_path / f"clip.{ext}"
    path.write_bytes(encode(sine(440, seconds, rate, channels), rate, ext))

    audio = load(str(path), SR)

    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - round(seconds * SR)) <= 2


def test_sixty_second_stereo_clip(tmp_path: Path):
    path = tmp_path / "long.wav"
    path.write_bytes(encode(sine(440, 60, 48000, channels=2), 48000, "wav"))

    audio = load(str(path), SR)

    assert abs(len(audio) - 60 * SR) <= 2
    assert peak_hz(audio, SR) == pytest.approx(440, abs=1)


def test_opposite_channels_cancel():
    left = sine(440, 1, SR)
    data = encode(np.hstack([left, -left]), SR, "wav", "FLOAT")

    assert np.abs(decode(data, "cancel.wav", SR)).max() < 1e-6


def test_identical_channels_give_that_channel():
    wave = sine(440, 1, SR)
    data = encode(np.repeat(wave, 6, axis=1), SR, "wav", "FLOAT")

    np.testing.assert_allclose(decode(data, "same.wav", SR), wave[:, 0], atol=1e-6)


def test_downmix_is_the_channel_mean():
    channels = np.hstack([sine(f, 1, SR) for f in (220, 440, 880)])
    data = encode(channels, SR, "wav", "FLOAT")

    np.testing.assert_allclose(decode(data, "mix.wav", SR), channels.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 44101, 48000])
def test_resampling_keeps_a_sines_frequency(rate: int):
    data = encode(sine(1000, 2, rate), rate, "wav", "FLOAT")

    audio = decode(data, "sine.wav", SR)

    assert abs(len(audio) - 2 * SR) <= 2
    assert peak_hz(audio, SR) == pytest.approx(1000, abs=1)


def test_fsspec_uris_match_the_local_path(esc50_clip: Path):
    memory, folder = fsspec.filesystem("memory"), f"/{esc50_clip.parent.name}"  # unique per test
    memory.pipe(f"{folder}/clip.flac", esc50_clip.read_bytes())
    try:
        from_memory = load(f"memory:/{folder}/clip.flac", 44100)
    finally:
        memory.rm(folder, recursive=True)
    local = load(str(esc50_clip), 44100)

    np.testing.assert_array_equal(from_memory, local)
    np.testing.assert_array_equal(load(esc50_clip.as_uri(), 44100), local)


def nan_wav() -> bytes:
    samples = sine(440, 0.5, SR)
    samples[100] = np.nan
    return encode(samples, SR, "wav", "FLOAT")


def inf_wav() -> bytes:
    samples = sine(440, 0.5, SR, channels=2)
    samples[100, 1] = np.inf
    return encode(samples, SR, "wav", "FLOAT")


JPEG_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


BAD_FILES = [  # (file name, bytes, expected error)
    ("empty.wav", lambda: b"", EmptyFileError),
    ("cut.wav", lambda: half(encode(sine(440, 1, SR), SR, "wav")), TruncatedAudioError),
    ("cut.flac", lambda: half(encode(sine(440, 1, SR), SR, "flac")), TruncatedAudioError),
    ("cut.ogg", lambda: half(encode(sine(440, 1, SR), SR, "ogg")), TruncatedAudioError),
    ("cut.mp3", lambda: half(encode(sine(440, 1, SR), SR, "mp3")), TruncatedAudioError),
    ("notes.wav", lambda: b"a dog barks while rain falls\n" * 40, NotAudioError),
    ("photo.flac", lambda: JPEG_HEADER + bytes(range(256)) * 8, NotAudioError),
    ("noise.flac", lambda: np.random.default_rng(0).bytes(4096), NotAudioError),
    ("silent.wav", lambda: encode(np.zeros((0, 1), np.float32), SR, "wav"), ZeroSamplesError),
    ("nan.wav", nan_wav, NonFiniteAudioError),
    ("inf.wav", inf_wav, NonFiniteAudioError),
]


@pytest.mark.parametrize("name, make, error", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_raises_its_typed_error(tmp_path: Path, name, make, error):
    path = tmp_path / name
    path.write_bytes(make())

    with pytest.raises(error) as raised:
        load(str(path), SR)

    assert raised.value.uri == str(path)
    assert name in str(raised.value)


def mp3_frame_bytes(header: bytes) -> int:
    """Length of the MPEG-2 layer III frame that starts with `header` (soundfile's 16 kHz MP3s)."""
    kbps = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160][header[2] >> 4]
    rate = [22050, 24000, 16000][(header[2] >> 2) & 3]
    return 72 * kbps * 1000 // rate + ((header[2] >> 1) & 1)


def test_mp3_length_is_held_only_where_the_file_states_it():
    """libsndfile guesses an MP3's length from its size unless a Xing/Info/VBRI frame states it;
    complete variable-bitrate files decode short of the guess, so only a stated length counts."""
    rng = np.random.default_rng(0)
    stated = encode((0.3 * rng.standard_normal((SR, 1))).astype(np.float32), SR, "mp3")
    assert _mp3_declares_length(stated)
    unstated = stated[mp3_frame_bytes(stated) :]  # the Xing frame removed: audio frames only
    assert unstated[:2] == stated[:2] and not _mp3_declares_length(unstated)
    id3 = b"ID3\x03\x00\x00\x00\x00\x00\x20" + bytes(32)  # a tag of 32 bytes before the audio
    assert _mp3_declares_length(id3 + stated)
    assert not _mp3_declares_length(id3 + unstated)
    assert len(decode(id3 + unstated, "unstated.mp3", SR)) > 0
    with pytest.raises(TruncatedAudioError):  # a stated length still catches a cut
        decode(half(stated), "cut.mp3", SR)


def test_missing_path_is_unreadable(tmp_path: Path):
    with pytest.raises(UnreadableError) as raised:
        load(str(tmp_path / "missing.wav"), SR)

    assert raised.value.kind == "unreadable"
    assert "missing.wav" in str(raised.value)


def test_real_clip_cut_short_is_truncated(esc50_clip: Path):
    esc50_clip.write_bytes(esc50_clip.read_bytes()[:-1000])

    with pytest.raises(TruncatedAudioError, match=esc50_clip.name):
        load(str(esc50_clip), SR)


@pytest.mark.parametrize("ext", FORMATS)
def test_a_cut_anywhere_is_truncated(ext: str):
    data = encode(sine(440, 1.5, 22050, channels=2), 22050, ext)

    for cut in np.linspace(4, len(data) - 1, 40).astype(int):
        with pytest.raises(TruncatedAudioError):
            decode(data[:cut], f"cut-at-{cut}.{ext}", SR)


def test_error_kinds_are_stable():
    assert {e: e.kind for e in AudioError.__subclasses__()} == {
        EmptyFileError: "empty",
        TruncatedAudioError: "truncated",
        NotAudioError: "not_audio",
        ZeroSamplesError: "zero_samples",
        NonFiniteAudioError: "non_finite",
        UnreadableError: "unreadable",
        TooLargeError: "too_large",
        TooLongError: "too_long",
        BadRateError: "bad_rate",
        BadChannelsError: "bad_channels",
    }


def test_errors_survive_pickling():
    error = pickle.loads(pickle.dumps(TruncatedAudioError("s3://b/x.wav", "cut short")))

    assert (error.uri, error.kind) == ("s3://b/x.wav", "truncated")
    assert str(error) == "s3://b/x.wav: cut short"
