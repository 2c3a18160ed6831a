"""Multi-scale spectral loss (DDSP): L1 on linear and on log STFT magnitudes, over six scales.

For each FFT size ``n`` (2048 .. 64): a periodic Hann window of ``n`` samples, hop
``n * (1 - overlap)`` (75% overlap -> ``n / 4``), centred frames (reflect padding, torch's
default), magnitude ``sqrt(max(|X|^2, eps))``; the loss at that scale is
``mean|S_pred - S_target| + log_weight * mean|ln S_pred - ln S_target|``, and the scales are
summed (DDSP sums; auraloss averages, so this is ``len(fft_sizes)`` times auraloss's
``MultiResolutionSTFTLoss`` with ``w_sc=0, w_lin_mag=1, w_log_mag=1`` and the same sizes, a fact
the tests check). The target's spectra are computed without autograd (it never needs a
gradient; batching it with the prediction would double the backward pass). Own code rather than
auraloss: see docs/ddsp.md for the timing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from waveloom.errors import ConfigError

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
EPS = 1e-8  # power floor (magnitude 1e-4): keeps the log finite on silence


def stft_magnitude(audio: Tensor, n_fft: int, hop: int) -> Tensor:
    """``[B, T]`` -> ``[B, n_fft // 2 + 1, frames]`` magnitudes (floored, see module doc)."""
    window = torch.hann_window(n_fft, periodic=True, dtype=audio.dtype, device=audio.device)
    spec = torch.stft(audio, n_fft, hop_length=hop, window=window, center=True,
                      return_complex=True)
    # |X| floored at sqrt(EPS): the same values as sqrt(max(|X|^2, EPS)), in two passes not five
    return spec.abs().clamp_min(EPS**0.5)


def multiscale_spectral_loss(pred: Tensor, target: Tensor,
                             fft_sizes: Sequence[int] = FFT_SIZES, overlap: float = 0.75,
                             log_weight: float = 1.0) -> Tensor:
    """Scalar loss between ``pred [B, T]`` and ``target [B, T]`` (see the module docstring).

    Differentiable in ``pred``; ``target`` is treated as a constant.
    """
    if pred.shape != target.shape or pred.ndim != 2:
        raise ConfigError(f"multiscale_spectral_loss: pred {tuple(pred.shape)} and target "
                          f"{tuple(target.shape)} must both be [B, T]")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"multiscale_spectral_loss: overlap={overlap} must be in [0, 1)")
    target = target.detach().to(pred.dtype)
    total = pred.new_zeros(())
    for n_fft in fft_sizes:
        hop = max(1, int(n_fft * (1.0 - overlap)))
        with torch.no_grad():
            t = stft_magnitude(target, int(n_fft), hop)
            log_t = torch.log(t) if log_weight else None
        p = stft_magnitude(pred, int(n_fft), hop)
        total = total + (p - t).abs().mean()
        if log_weight:
            total = total + log_weight * (torch.log(p) - log_t).abs().mean()
    return total
