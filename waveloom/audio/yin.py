"""YIN pitch estimation in numpy, vectorised over frames (no librosa, numba or scipy import).

Why here rather than ``librosa.yin``: importing librosa (and numba and scipy.signal with it)
costs seconds, several times more than tracking a minute of audio; ``waveloom transfer`` with
``--f0-method yin`` should start fast.

The algorithm (de Cheveigne & Kawahara 2002), per frame ``x`` of ``L`` samples:

1. difference function ``d(k) = sum_{m=0}^{L-1-k} (x[m] - x[m+k])^2`` for lags
   ``k = 0..max_period``, from the autocorrelation (one zero-padded real FFT per frame) and the
   running energy: ``d(k) = E[0, L-k) + E[k, L) - 2 r(k)``;
2. cumulative mean normalised difference ``d'(k) = d(k) k / sum_{j=1}^{k} d(j)``;
3. absolute threshold: the smallest lag in ``[sr / fmax, sr / fmin]`` that is a local minimum
   of ``d'`` below ``threshold``; if there is none, the global minimum in that range;
4. parabolic interpolation of ``d'`` around that lag (no shift at the ends of the range, or
   when the vertex falls more than a lag away).

Frames are centred (``frame_length // 2`` zeros on each side), frame ``i`` at sample
``i * hop``, as librosa does, so the two agree within a few cents on voiced frames
(tests/test_ddsp_features.py).
"""

from __future__ import annotations

import numpy as np

CHUNK = 512  # frames per FFT batch: memory stays ~ CHUNK * 2 * frame_length complex values


def _cmnd(frames: np.ndarray, max_period: int) -> np.ndarray:
    """``d'`` ``[n, max_period + 1]`` of ``frames [n, L]`` (float64)."""
    length = frames.shape[1]
    n_fft = 1 << int(np.ceil(np.log2(length + max_period + 1)))  # no circular wrap-around
    spec = np.fft.rfft(frames, n=n_fft, axis=1)
    acf = np.fft.irfft(spec.real**2 + spec.imag**2, n=n_fft, axis=1)[:, : max_period + 1]
    energy = np.zeros((frames.shape[0], length + 1))
    np.cumsum(frames**2, axis=1, out=energy[:, 1:])  # energy[:, j] = sum of x[:j]^2
    lags = np.arange(max_period + 1)
    diff = energy[:, length - lags] + energy[:, -1:] - energy[:, lags] - 2.0 * acf
    diff = np.maximum(diff, 0.0)  # rounding can leave tiny negatives
    diff[:, 0] = 0.0
    running = np.cumsum(diff[:, 1:], axis=1)
    out = np.ones_like(diff)
    out[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(running, np.finfo(np.float64).tiny)
    return out


def _pick_period(cmnd: np.ndarray, min_period: int, threshold: float) -> np.ndarray:
    """Fractional period (lags) per row of ``cmnd``, searched from ``min_period`` on."""
    d = cmnd[:, min_period:]
    width = d.shape[1]
    trough = np.zeros(d.shape, dtype=bool)
    trough[:, 0] = d[:, 0] < d[:, 1]
    trough[:, 1:-1] = (d[:, 1:-1] < d[:, :-2]) & (d[:, 1:-1] <= d[:, 2:])
    below = trough & (d < threshold)
    idx = np.where(below.any(axis=1), below.argmax(axis=1), d.argmin(axis=1))
    rows = np.arange(d.shape[0])
    inner = (idx > 0) & (idx < width - 1)
    left = d[rows, np.clip(idx - 1, 0, width - 1)]
    mid = d[rows, idx]
    right = d[rows, np.clip(idx + 1, 0, width - 1)]
    curve = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curve != 0.0, 0.5 * (left - right) / curve, 0.0)
    shift = np.where(inner & (np.abs(shift) <= 1.0), shift, 0.0)
    return min_period + idx + shift


def yin(audio: np.ndarray, sample_rate: int, hop: int, fmin: float, fmax: float,
        frame_length: int = 2048, threshold: float = 0.1) -> np.ndarray:
    """f0 in Hz (float64 ``[1 + len(audio) // hop]``) of mono ``audio [T]``; frame ``i``
    centred on sample ``i * hop``. Every frame gets an estimate (silence included: gate it by
    level)."""
    x = np.asarray(audio, dtype=np.float64)
    half = frame_length // 2
    padded = np.pad(x, (half, half))
    count = 1 + (len(padded) - frame_length) // hop
    min_period = max(1, int(np.floor(sample_rate / fmax)))
    max_period = min(int(np.ceil(sample_rate / fmin)), frame_length - 1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop][:count]
    periods = np.empty(count)
    for start in range(0, count, CHUNK):
        cmnd = _cmnd(np.ascontiguousarray(windows[start : start + CHUNK]), max_period)
        periods[start : start + CHUNK] = _pick_period(cmnd, min_period, threshold)
    return sample_rate / periods


def yin_window(window: np.ndarray, sample_rate: int, fmin: float, fmax: float,
               threshold: float = 0.1) -> float:
    """f0 in Hz of one frame, the whole of ``window`` (its length is the frame length): what
    :func:`yin` gives the frame centred on the window's middle, for a live input that cannot
    look past its newest sample."""
    x = np.asarray(window, dtype=np.float64)[None]
    min_period = max(1, int(np.floor(sample_rate / fmax)))
    max_period = min(int(np.ceil(sample_rate / fmin)), x.shape[1] - 1)
    return float(sample_rate / _pick_period(_cmnd(x, max_period), min_period, threshold)[0])
