"""The mel scale and a numpy STFT: the part of :mod:`waveloom.audio.spectral` that needs no
torch.

:mod:`waveloom.audio.spectral` builds its mel filterbank from here (one definition), and the
spectrogram plots (:mod:`waveloom.audio.plots`) analyse with :func:`stft_numpy`, so
``waveloom generate`` on a packed model plots its samples without importing torch (~1.5 s of
a short clip's command). :func:`stft_numpy` is :func:`waveloom.audio.spectral.stft` (centred,
zero-padded, periodic Hann) in numpy; ``tests/test_spectral.py`` checks them equal.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def hz_to_mel(f_hz):
    """Slaney mel scale (as in Auditory Toolbox / librosa's default): linear to 1 kHz, then log.

    Below 1 kHz, ``mel = f / (200/3)``; above, 27 mels per factor 6.4 in frequency. Works on
    floats and numpy arrays.
    """
    f = np.asarray(f_hz, dtype=np.float64)
    f_sp, brk = 200.0 / 3.0, 1000.0
    logstep = math.log(6.4) / 27.0
    lin = f / f_sp
    log = brk / f_sp + np.log(np.maximum(f, 1e-10) / brk) / logstep
    return np.where(f >= brk, log, lin)


def mel_to_hz(mels):
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    f_sp, brk = 200.0 / 3.0, 1000.0
    logstep = math.log(6.4) / 27.0
    min_log_mel = brk / f_sp
    return np.where(m >= min_log_mel, brk * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=32)
def _mel_filterbank_np(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    fft_hz = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_hz[None] - lo) / (centre - lo)
    falling = (hi - fft_hz[None]) / (hi - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney area normalisation: every triangle has unit area in Hz, so wide high bands do not
    # dominate the energy and a flat spectrum gives a flat mel spectrum.
    return weights * (2.0 / (hi - lo))


def mel_filterbank_numpy(sr: int, n_fft: int, n_mels: int = 80, fmin: float = 0.0,
                         fmax: float | None = None) -> np.ndarray:
    """:func:`waveloom.audio.spectral.mel_filterbank` as float32 numpy [n_mels, n_fft//2+1]."""
    fmax = sr / 2.0 if fmax is None else float(fmax)
    return _mel_filterbank_np(int(sr), int(n_fft), int(n_mels), float(fmin),
                              fmax).astype(np.float32)


def stft_numpy(x: np.ndarray, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Centred STFT of ``x`` [T] with a periodic Hann window: complex ``[n_fft // 2 + 1,
    1 + T // hop]`` (as :func:`waveloom.audio.spectral.stft` with its defaults)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"stft_numpy needs audio of shape [T] with T > 0, got {x.shape}")
    padded = np.pad(x, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    return np.fft.rfft(frames * window, axis=-1).T
