"""Corruptions for robustness sweeps: audio mixed with noise at an exact SNR, and query text with
the slips people make when they type (typos, dropped words)."""

from __future__ import annotations

import numpy as np

SYNTHETIC = ("white", "pink")


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n).astype(np.float32)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f power: white noise shaped by 1/sqrt(f) in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n).astype(np.float32)


def synthetic(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "white":
        return white(n, rng)
    if kind == "pink":
        return pink(n, rng)
    raise ValueError(f"noise {kind!r}: expected one of {SYNTHETIC} or real noise clips")


def fit_length(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Loop a short noise clip, or take a random window of a long one."""
    if len(noise) < n:
        noise = np.tile(noise, -(-n // len(noise)))
    start = rng.integers(0, len(noise) - n + 1)
    return noise[start : start + n]


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """signal + g * noise with g chosen so that 10 log10(P_signal / P_gain·noise) == snr_db.

    A silent signal stays silent: there is no SNR to honour, and adding noise would only
    manufacture a clip that was never recorded.
    """
    ps, pn = power(signal), power(noise)
    if ps == 0.0 or pn == 0.0:
        return signal.astype(np.float32)
    gain = np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return (signal + gain * noise).astype(np.float32)


def snr_db(signal: np.ndarray, mixed: np.ndarray) -> float:
    return 10.0 * np.log10(power(signal) / power(mixed - signal))


_KEYBOARD_NEIGHBOURS = {
    "a": "qsz",
    "b": "vgn",
    "c": "xdv",
    "d": "sfe",
    "e": "wrd",
    "f": "dgr",
    "g": "fht",
    "h": "gjy",
    "i": "uok",
    "j": "hku",
    "k": "jli",
    "l": "ko",
    "m": "n",
    "n": "bm",
    "o": "ipl",
    "p": "o",
    "q": "wa",
    "r": "eft",
    "s": "adw",
    "t": "rgy",
    "u": "yij",
    "v": "cb",
    "w": "qes",
    "x": "zc",
    "y": "tuh",
    "z": "xa",
}


def typo(word: str, rng: np.random.Generator) -> str:
    """One of the four classic slips: swap, drop, double or hit a neighbouring key."""
    if len(word) < 3:
        return word
    i = int(rng.integers(0, len(word) - 1))
    kind = rng.integers(0, 4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    near = _KEYBOARD_NEIGHBOURS.get(word[i].lower())
    return word[:i] + (near[rng.integers(0, len(near))] if near else word[i]) + word[i + 1 :]


def perturb_text(
    text: str, rng: np.random.Generator, typo_rate: float = 0.15, drop_rate: float = 0.1
) -> str:
    """Typos in some words and some words dropped; never drops every word."""
    words = text.split()
    kept = [w for w in words if rng.random() >= drop_rate] or words[:1]
    return " ".join(typo(w, rng) if rng.random() < typo_rate else w for w in kept)
