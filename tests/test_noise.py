"""Noise mixing hits the requested SNR; text perturbations look like real typing slips."""

import numpy as np
import pytest

from coattn_dist.audio import load
from coattn_dist.noise import fit_length, mix_at_snr, perturb_text, pink, snr_db, synthetic, typo


@pytest.mark.parametrize("kind", ["white", "pink", "real"])
@pytest.mark.parametrize("target", [20.0, 10.0, 5.0, 0.0, -5.0])
def test_mix_hits_the_requested_snr(sample_dir, kind, target):
    rng = np.random.default_rng(0)
    clip = load(str(sample_dir / "audio" / "4-102844-A-49.flac"), 44100)
    if kind == "real":
        noise = fit_length(
            load(str(sample_dir / "audio" / "4-161127-A-10.flac"), 44100), len(clip), rng
        )
    else:
        noise = synthetic(kind, len(clip), rng)
    mixed = mix_at_snr(clip, noise, target)
    assert mixed.dtype == np.float32 and mixed.shape == clip.shape
    assert abs(snr_db(clip, mixed) - target) < 0.1


def test_pink_noise_has_a_falling_spectrum():
    x = pink(2**16, np.random.default_rng(1))
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    low, high = spectrum[10:100].mean(), spectrum[10000:20000].mean()
    assert low > 50 * high  # 1/f: ~two decades of frequency apart


def test_silence_stays_silent():
    silent = np.zeros(1000, dtype=np.float32)
    assert not mix_at_snr(silent, np.ones(1000, dtype=np.float32), 10).any()


def test_unknown_noise_is_refused():
    with pytest.raises(ValueError, match="brown"):
        synthetic("brown", 10, np.random.default_rng(0))


def test_short_noise_is_looped_and_long_noise_windowed():
    rng = np.random.default_rng(0)
    assert len(fit_length(np.arange(3.0), 10, rng)) == 10
    window = fit_length(np.arange(100.0), 10, rng)
    assert len(window) == 10 and np.all(np.diff(window) == 1)


def test_perturbed_text_keeps_most_words_and_changes_some():
    rng = np.random.default_rng(0)
    text = "a dog barks loudly while heavy rain falls on the metal roof"
    outs = [perturb_text(text, rng) for _ in range(50)]
    assert sum(o != text for o in outs) > 40
    assert all(1 <= len(o.split()) <= len(text.split()) for o in outs)
    assert perturb_text("rain", rng, typo_rate=0, drop_rate=1.0) == "rain"  # never drops every word


def test_typo_is_one_edit():
    rng = np.random.default_rng(3)
    for _ in range(100):
        out = typo("barking", rng)
        assert (
            abs(len(out) - 7) <= 1
            and out != ""
            and sum(a != b for a, b in zip(out, "barking")) <= 7
        )
