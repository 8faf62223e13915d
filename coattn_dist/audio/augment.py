"""Recording conditions for training audio: the corpus is clean game sound effects, what users
search is recorded in rooms and outdoors, through other microphones, over a noise floor. Each
augmented version of a clip is one draw of speed (pitch and tempo together), microphone and room
colouring, reverberation and a noise floor, seeded by the clip and the version, so a version's
features are computed once and cached like the clip's own (`features.with_variants`). A version
may also place the event, once or a few times, in a longer recording: a game effect is one short
event, a field recording (ESC-50's are 5 s) holds it among seconds of background, and that
background may be another real recording (a bed: rain, wind, a crowd) rather than a synthetic
noise floor."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio.functional as AF

from coattn_dist.config import TrainConfig
from coattn_dist.noise import fit_length, mix_at_snr, pink, white


@dataclass(frozen=True)
class Conditions:
    """The ranges one augmented version draws from (each effect applied with probability `p_*`)."""

    speed: tuple[float, float] = (0.9, 1.1)  # resampling factor: pitch and tempo together
    p_highpass: float = 0.5
    highpass_hz: tuple[float, float] = (60.0, 600.0)
    p_lowpass: float = 0.5
    lowpass_hz: tuple[float, float] = (2500.0, 12000.0)
    eq_hz: tuple[float, float] = (150.0, 8000.0)  # one peaking band, its centre log-uniform here
    eq_gain_db: tuple[float, float] = (-8.0, 8.0)
    p_reverb: float = 0.5
    rt60_s: tuple[float, float] = (0.2, 1.0)
    wet: tuple[float, float] = (0.1, 0.5)
    p_noise: float = 0.7
    snr_db: tuple[float, float] = (5.0, 30.0)
    p_pink: float = 0.7  # of the noise floors: pink, else white
    p_place: float = 0.0  # chance the event is placed in a longer recording (before the floor)
    place_s: tuple[float, float] = (4.0, 6.0)  # that recording's length
    repeats: tuple[int, int] = (1, 3)  # times the event occurs in it (at random onsets)
    p_bed: float = 0.0  # of the noise floors: a real recording behind the event (`is_bed`)
    bed_snr_db: tuple[float, float] = (5.0, 30.0)  # the event over its bed
    bed_s: float = 4.0  # a bed lasts at least this long ...
    bed_spread_db: float = 10.0  # ... and its 0.5 s windows' levels stay within this range

    @property
    def key(self) -> str:
        """Names the cache of features under these conditions: other ranges, other features."""
        return f"{zlib.crc32(repr(self).encode()):08x}"


RECORDING = Conditions()  # what training draws from (`train.audio_aug`)


def recording(train: TrainConfig) -> Conditions:
    """The conditions a training config's versions are drawn from: events placed in longer
    recordings at chance `audio_place`, real recordings as noise floors at chance `audio_bed`,
    the event `audio_bed_min_snr_db` to 30 dB over them. The one place config becomes conditions."""
    snr = (float(train.audio_bed_min_snr_db), RECORDING.bed_snr_db[1])
    return dataclasses.replace(
        RECORDING, p_place=train.audio_place, p_bed=train.audio_bed, bed_snr_db=snr
    )


def is_bed(wave: np.ndarray, sample_rate: int, cond: Conditions = RECORDING) -> bool:
    """A recording that can stand behind another sound: long and steady, like rain, wind, a river
    or a crowd, not an explosion or a lone bark."""
    window = sample_rate // 2
    if len(wave) < cond.bed_s * sample_rate:
        return False
    frames = wave[: len(wave) // window * window].reshape(-1, window).astype(np.float64)
    level = 10 * np.log10(np.mean(np.square(frames), axis=1) + 1e-10)
    return level.max() - level.min() <= cond.bed_spread_db


def seed_of(wave: np.ndarray, version: int) -> int:
    """The clip's own bytes pick its draw: the same clip and version, the same augmentation."""
    return zlib.crc32(np.ascontiguousarray(wave, dtype=np.float32).tobytes(), version)


def augment(
    wave: np.ndarray,
    sample_rate: int,
    version: int,
    cond: Conditions = RECORDING,
    beds: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """One recording-conditions version of a mono float32 wave (same rate, length scaled by the
    speed draw); `beds` are the real recordings a noise floor may be drawn from."""
    rng = np.random.default_rng(seed_of(wave, version))
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    speed = rng.uniform(*cond.speed)
    # played `speed` times faster: read as if recorded at sample_rate * speed (rounded to 100 Hz
    # so that the sinc kernel stays small)
    x = AF.resample(x, round(sample_rate * speed / 100), sample_rate // 100)
    if rng.random() < cond.p_highpass:
        x = AF.highpass_biquad(x, sample_rate, rng.uniform(*cond.highpass_hz))
    if rng.random() < cond.p_lowpass:
        x = AF.lowpass_biquad(x, sample_rate, rng.uniform(*cond.lowpass_hz))
    centre = float(np.exp(rng.uniform(*np.log(cond.eq_hz))))
    x = AF.equalizer_biquad(x, sample_rate, centre, rng.uniform(*cond.eq_gain_db), Q=1.0)
    if rng.random() < cond.p_reverb:
        x = _reverberate(x, sample_rate, rng.uniform(*cond.rt60_s), rng.uniform(*cond.wet), rng)
    out = x.numpy().astype(np.float32)
    if cond.p_place and rng.random() < cond.p_place:  # no draw at 0: RECORDING's draws unchanged
        out = _place(out, sample_rate, cond, rng)
    bed = bed_draw(seed_of(wave, version), cond, len(beds))
    if bed is not None:
        noise = fit_length(beds[bed], len(out), rng)
        out = mix_at_snr(out, noise, rng.uniform(*cond.bed_snr_db))
    elif rng.random() < _synthetic_floor(cond, bool(beds)):
        noise = (pink if rng.random() < cond.p_pink else white)(len(out), rng)
        out = mix_at_snr(out, noise, rng.uniform(*cond.snr_db))
    return out


def bed_draw(seed: int, cond: Conditions, n_beds: int) -> int | None:
    """Which of `n_beds` beds lies behind a version (at chance p_noise * p_bed), or None. It has
    its own random stream, so which bed a version holds is known without rendering the version
    (a caption can name it), and the other draws do not depend on it."""
    if not n_beds or not cond.p_bed:
        return None
    rng = np.random.default_rng([seed, 1])
    return int(rng.integers(n_beds)) if rng.random() < cond.p_noise * cond.p_bed else None


def _synthetic_floor(cond: Conditions, has_beds: bool) -> float:
    """Chance of a synthetic floor once no bed was drawn: floors stay at p_noise in all, a share
    p_bed of them beds (exactly p_noise without beds, so RECORDING's draws are unchanged)."""
    p_bed = cond.p_bed if has_beds else 0.0
    return cond.p_noise * (1 - p_bed) / (1 - cond.p_noise * p_bed)


def _place(
    event: np.ndarray, sample_rate: int, cond: Conditions, rng: np.random.Generator
) -> np.ndarray:
    """The event at 1..n random onsets (each at 0.5-1x its level) in a recording of a drawn
    length; an event already that long is a recording of its own and stays as it is."""
    n = int(rng.uniform(*cond.place_s) * sample_rate)
    if len(event) >= n:
        return event
    out = np.zeros(n, dtype=np.float32)
    for _ in range(rng.integers(cond.repeats[0], cond.repeats[1] + 1)):
        start = int(rng.integers(0, n - len(event) + 1))
        out[start : start + len(event)] += rng.uniform(0.5, 1.0) * event
    return out


def _reverberate(
    x: torch.Tensor, sample_rate: int, rt60: float, wet: float, rng: np.random.Generator
) -> torch.Tensor:
    """A room as exponentially decaying noise (60 dB down after `rt60` s), mixed in at `wet`;
    the tail is cut at the clip's length, as a recording of the same duration would be."""
    n = int(rt60 * sample_rate)
    t = torch.arange(n, dtype=torch.float32) / sample_rate
    ir = torch.from_numpy(rng.standard_normal(n).astype(np.float32)) * torch.exp(-6.9 * t / rt60)
    ir = ir / ir.norm().clamp_min(1e-12)
    room = AF.fftconvolve(x, ir)[: len(x)]
    scale = x.norm() / room.norm().clamp_min(1e-12)
    return (1 - wet) * x + wet * room * scale
