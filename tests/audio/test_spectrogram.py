"""The page's spectrogram pictures: a PNG, low frequencies at the bottom, long clips squeezed to
a fixed width."""

import io

import numpy as np
from matplotlib.image import imread

from coattn_dist.audio.spectrogram import MELS, RATE, WIDTH, spectrogram_png


def picture(wave: np.ndarray) -> np.ndarray:
    png = spectrogram_png(wave)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return imread(io.BytesIO(png))  # (rows, columns, RGBA), row 0 at the top


def tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def brightest_row(image: np.ndarray) -> int:
    return int(image[..., :3].sum(axis=2).mean(axis=1).argmax())


def test_a_low_tone_is_drawn_low_and_a_high_one_high():
    low, high = picture(tone(200, 2.0)), picture(tone(6000, 2.0))
    assert low.shape[0] == high.shape[0] == MELS
    assert brightest_row(low) > 0.8 * MELS > 0.2 * MELS > brightest_row(high)


def test_long_clips_are_squeezed_to_the_width_and_cut_at_thirty_seconds():
    short, long = picture(tone(440, 1.0)), picture(tone(440, 120.0))
    assert short.shape[1] == 1 + RATE // 160  # one column per 10 ms hop
    assert long.shape[1] == WIDTH
