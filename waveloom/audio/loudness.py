"""A-weighted loudness per frame, in dB, for DDSP's loudness control.

Power spectrum of centred Hann frames (frame ``i`` centred on sample ``i * hop``, zero padding
at the ends, ``n_fft`` samples), weighted by the A-weighting curve of IEC 61672-1::

    R_A(f) = 12194^2 f^4 / ((f^2 + 20.6^2) sqrt((f^2 + 107.7^2)(f^2 + 737.9^2)) (f^2 + 12194^2))
    A(f)   = 20 log10 R_A(f) + 2.00 dB          (0 dB at 1 kHz)

Reference level: the weighted power is scaled (Parseval, one-sided spectrum, window energy
removed) to the frame's mean square, so **0 dB = a signal of mean square 1** (a full-scale
square wave); a full-scale 1 kHz sine reads -3.01 dB, a 1 kHz sine at -20 dBFS peak
-23.01 dB. Floor: -100 dB (digital silence reads -100, never -inf).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from waveloom.errors import ConfigError

FLOOR_DB = -100.0


def a_weighting_db(freqs_hz: np.ndarray | Tensor) -> Tensor:
    """A-weighting gain in dB at ``freqs_hz`` (IEC 61672-1 formula; -inf dB at 0 Hz)."""
    f2 = torch.as_tensor(freqs_hz, dtype=torch.float64) ** 2
    num = (12194.0**2) * f2**2
    den = ((f2 + 20.6**2) * torch.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2))
    return 20.0 * torch.log10(num / den) + 2.0


def a_weighted_loudness(audio: Tensor, sample_rate: int, hop: int, n_fft: int = 2048) -> Tensor:
    """``audio [B, T]`` -> A-weighted loudness ``[B, T // hop]`` in dB (reference above).

    Frame ``i`` is centred on sample ``i * hop``. Differentiable in ``audio``.
    """
    if audio.ndim != 2:
        raise ConfigError(f"a_weighted_loudness expects audio [B, T], got {tuple(audio.shape)}")
    if hop < 1 or n_fft < 2:
        raise ConfigError(f"a_weighted_loudness: hop={hop} and n_fft={n_fft} must be positive")
    x = audio if audio.is_floating_point() else audio.float()
    frames = x.shape[-1] // hop
    if frames == 0:
        return x.new_zeros(x.shape[0], 0)
    window = torch.hann_window(n_fft, periodic=True, dtype=x.dtype, device=x.device)
    spec = torch.stft(x, n_fft, hop_length=hop, window=window, center=True,
                      pad_mode="constant", return_complex=True)[..., :frames]  # [B, bins, F]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    gain = (10.0 ** (a_weighting_db(freqs) / 10.0)).to(x.dtype).to(x.device)  # power gain
    one_sided = torch.full_like(gain, 2.0)
    one_sided[0] = 1.0
    if n_fft % 2 == 0:
        one_sided[-1] = 1.0
    power = (spec.abs() ** 2 * (gain * one_sided)[:, None]).sum(1)
    power = power / (n_fft * (window**2).sum())  # mean square of the (weighted) frame
    return 10.0 * torch.log10(power.clamp_min(10.0 ** (FLOOR_DB / 10.0)))


__all__ = ["FLOOR_DB", "a_weighted_loudness", "a_weighting_db"]


@lru_cache(maxsize=8)
def _frame_weights(sample_rate: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """(periodic Hann window, one-sided A-weighted power gain / (n_fft sum w^2)) for one frame."""
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64).numpy()
    gain = 10.0 ** (a_weighting_db(np.fft.rfftfreq(n_fft, 1.0 / sample_rate)).numpy() / 10.0)
    gain[1 : (n_fft + 1) // 2] *= 2.0  # one-sided: every bin but DC (and Nyquist) twice
    return window, gain / (n_fft * (window**2).sum())


def window_loudness(window: np.ndarray, sample_rate: int) -> float:
    """A-weighted loudness in dB of one frame, the whole of ``window`` (n_fft = its length):
    what :func:`a_weighted_loudness` gives the frame centred on the window's middle, for a
    live input that cannot look past its newest sample."""
    x = np.asarray(window, dtype=np.float64)
    hann, gain = _frame_weights(int(sample_rate), len(x))
    spec = np.fft.rfft(x * hann)
    power = float(((spec.real**2 + spec.imag**2) * gain).sum())
    return 10.0 * np.log10(max(power, 10.0 ** (FLOOR_DB / 10.0)))
