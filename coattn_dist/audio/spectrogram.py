"""A clip as a small picture: a log-mel spectrogram rendered to PNG, for the search page (people
look at a sound before they play it). Drawn from the first `SECONDS` at 16 kHz: enough to tell a
bark from rain, cheap enough to draw per result."""

from __future__ import annotations

import functools
import io

import matplotlib
import numpy as np
import torch
import torchaudio

matplotlib.use("Agg")
from matplotlib.image import imsave  # noqa: E402

RATE = 16000
SECONDS = 30.0
N_FFT, HOP, MELS = 512, 160, 64  # 10 ms columns, 64 rows up to 8 kHz
WIDTH = 240  # px at most: longer clips are averaged down
RANGE_DB = 80.0  # what lies below the loudest cell by more than this is drawn black


@functools.cache
def _mel() -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(RATE, n_fft=N_FFT, hop_length=HOP, n_mels=MELS)


@torch.no_grad()
def spectrogram_png(wave: np.ndarray) -> bytes:
    """PNG bytes of a mono waveform at `RATE` (low frequencies at the bottom, magma colours)."""
    clip = torch.as_tensor(wave[: int(SECONDS * RATE)], dtype=torch.float32)
    power = _mel()(clip)  # (MELS, frames)
    frames = power.shape[1]
    if frames > WIDTH:  # average columns down to WIDTH
        power = torch.stack([c.mean(dim=1) for c in power.tensor_split(WIDTH, dim=1)], dim=1)
    db = 10 * torch.log10(power.clamp(min=1e-10))
    shade = ((db - db.max() + RANGE_DB) / RANGE_DB).clamp(0, 1).numpy()
    buf = io.BytesIO()
    imsave(buf, shade, cmap="magma", origin="lower", format="png")
    return buf.getvalue()
