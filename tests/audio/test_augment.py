"""Recording-condition augmentation: reproducible per clip and version, a changed but recognisable
sound, silence kept silent, short events placed in longer recordings."""

import dataclasses

import numpy as np
import pytest

from coattn_dist.audio import load
from coattn_dist.audio.augment import (
    RECORDING,
    Conditions,
    augment,
    bed_draw,
    is_bed,
    recording,
    seed_of,
)
from coattn_dist.config import TrainConfig
from coattn_dist.noise import power

RATE = 44100


@pytest.fixture(scope="module")
def dog(sample_dir) -> np.ndarray:
    return load(str(sample_dir / "audio" / "4-182395-A-0.flac"), RATE)


def test_a_version_is_the_same_every_time_and_versions_differ(dog):
    first, again = augment(dog, RATE, 0), augment(dog, RATE, 0)
    assert first.dtype == np.float32 and np.array_equal(first, again)
    other = augment(dog, RATE, 1)
    assert len(other) != len(first) or not np.allclose(other, first)


def test_speed_scales_the_length_within_its_range(dog):
    cond = Conditions()
    for version in range(6):
        out = augment(dog, RATE, version)
        assert np.isfinite(out).all() and power(out) > 0
        ratio = len(dog) / len(out)  # played `speed` times faster: shorter by that factor
        assert cond.speed[0] - 0.01 <= ratio <= cond.speed[1] + 0.01


def test_everything_switched_off_but_speed_1_changes_nothing(dog):
    off = Conditions(
        speed=(1.0, 1.0), p_highpass=0, p_lowpass=0, eq_gain_db=(0, 0), p_reverb=0, p_noise=0
    )
    np.testing.assert_allclose(augment(dog, RATE, 3, off), dog, atol=1e-4)


def test_noise_alone_is_mixed_at_an_snr_within_range(dog):
    noise_only = Conditions(
        speed=(1.0, 1.0), p_highpass=0, p_lowpass=0, eq_gain_db=(0, 0), p_reverb=0, p_noise=1.0
    )
    for version in range(4):
        out = augment(dog, RATE, version, noise_only)
        snr = 10 * np.log10(power(dog) / power(out - dog))
        assert noise_only.snr_db[0] - 0.1 <= snr <= noise_only.snr_db[1] + 0.1


def test_silence_stays_silent():
    assert not augment(np.zeros(RATE, np.float32), RATE, 0).any()


def test_other_ranges_name_another_cache():
    assert Conditions().key == Conditions().key
    assert Conditions().key != Conditions(p_noise=0.5).key


OFF = Conditions(
    speed=(1.0, 1.0), p_highpass=0, p_lowpass=0, eq_gain_db=(0, 0), p_reverb=0, p_noise=0
)


def test_a_placed_event_occurs_at_its_onsets_in_a_recording_of_the_drawn_length():
    event = np.sin(np.arange(RATE // 4) / 5).astype(np.float32)  # a quarter-second tone
    placed = dataclasses.replace(OFF, p_place=1.0, repeats=(2, 2))
    for version in range(4):
        out = augment(event, RATE, version, placed)
        assert placed.place_s[0] * RATE <= len(out) <= placed.place_s[1] * RATE
        sounding = np.abs(out) > 1e-6
        # two onsets, each the event's length; they may overlap, never more than that is heard
        assert len(event) - 10 <= sounding.sum() <= 2 * len(event)
        assert np.abs(out).max() <= 2 * np.abs(event).max() + 1e-6


def test_an_event_as_long_as_the_recording_is_not_placed(dog):
    long = dataclasses.replace(OFF, p_place=1.0, place_s=(1.0, 2.0))
    np.testing.assert_allclose(augment(dog, RATE, 0, long), dog, atol=1e-4)  # dog lasts 5 s


def test_placement_off_draws_exactly_what_recording_conditions_draw(dog):
    assert recording(TrainConfig()) == RECORDING
    assert np.array_equal(augment(dog, RATE, 2, recording(TrainConfig())), augment(dog, RATE, 2))
    assert recording(TrainConfig(audio_place=0.5)).key != RECORDING.key


def test_a_bed_is_long_and_steady():
    rng = np.random.default_rng(0)
    steady = rng.standard_normal(5 * RATE).astype(np.float32)
    assert is_bed(steady, RATE)
    assert not is_bed(steady[: 3 * RATE], RATE)  # shorter than the recordings it would fill
    burst = steady.copy()
    burst[RATE:] *= 0.01  # one second of sound, then 40 dB quieter
    assert not is_bed(burst, RATE)


def test_a_bed_is_the_noise_floor_at_an_snr_within_range(dog):
    rain = np.sin(np.arange(6 * RATE) / 3.0).astype(np.float32)  # a bed unlike any synthetic noise
    bed_only = dataclasses.replace(OFF, p_noise=1.0, p_bed=1.0, bed_snr_db=(20, 25))
    for version in range(3):
        out = augment(dog, RATE, version, bed_only, [rain])
        floor = out - dog
        snr = 10 * np.log10(power(dog) / power(floor))
        assert 20 - 0.1 <= snr <= 25 + 0.1  # the beds' own range, not the synthetic floors'
        spectrum = np.abs(np.fft.rfft(floor))  # the bed's one frequency, not a broadband noise
        assert spectrum.argmax() == round(len(floor) / (6 * np.pi))
    without = dataclasses.replace(OFF, p_noise=1.0)  # p_bed 0: synthetic, beds or not
    assert np.array_equal(augment(dog, RATE, 0, without, [rain]), augment(dog, RATE, 0, without))


def test_the_bed_behind_a_version_is_known_without_rendering_it(dog):
    """bed_draw is what augment mixes in: a caption can name the bed of a cached version."""
    rain = np.sin(np.arange(6 * RATE) / 3.0).astype(np.float32)
    hum = np.sin(np.arange(6 * RATE) / 9.0).astype(np.float32)
    half = dataclasses.replace(OFF, p_noise=1.0, p_bed=0.5, bed_snr_db=(20, 25))
    drawn = []
    for version in range(12):
        bed = bed_draw(seed_of(dog, version), half, 2)
        floor = augment(dog, RATE, version, half, [rain, hum]) - dog
        peak = np.abs(np.fft.rfft(floor)).argmax()
        if bed is None:  # a synthetic floor: broadband, neither bed's one frequency
            assert peak not in (round(len(floor) / (6 * np.pi)), round(len(floor) / (18 * np.pi)))
        else:
            assert peak == round(len(floor) / ((6, 18)[bed] * np.pi))
        drawn.append(bed)
    assert None in drawn and {0, 1} <= set(drawn)  # half the floors are beds, both beds heard
    assert bed_draw(seed_of(dog, 0), half, 0) is None  # no beds to draw from
    assert bed_draw(seed_of(dog, 0), OFF, 2) is None  # p_bed 0: never


def test_training_config_sets_how_loud_the_beds_are():
    quiet = recording(TrainConfig(audio_bed=1.0, audio_bed_min_snr_db=15))
    assert quiet.p_bed == 1.0 and quiet.bed_snr_db == (15.0, 30.0)
    assert (
        quiet.key != recording(TrainConfig(audio_bed=1.0)).key
    )  # other beds' loudness, other features
