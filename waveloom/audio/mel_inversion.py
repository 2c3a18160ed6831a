"""Audio back from a log mel without a neural vocoder: the baseline a vocoder must beat.

A mel keeps ``n_mels`` band energies of the ``n_fft // 2 + 1`` STFT bins and no phase, so two
things are lost and both are estimated here:

1. **Magnitude.** The linear magnitude ``S >= 0`` whose mel ``fb @ S`` is closest to the given
   one in least squares (non-negative least squares, as librosa's ``mel_to_stft`` solves it),
   by Lee & Seung's multiplicative updates ``S <- S * (fb^T m) / (fb^T fb S)``: each step keeps
   ``S`` non-negative and does not increase ``|fb S - m|^2``, with no step size to tune. It
   starts from the flat spread ``fb^T m / colsum(fb)`` (every band's energy shared among its
   bins).
2. **Phase.** Fast Griffin-Lim (:func:`waveloom.audio.spectral.griffin_lim`) on that
   magnitude.

The log mel must be :func:`waveloom.audio.spectral.mel_spectrogram`'s (magnitude, natural log,
floor ``eps``): floored bands come back as (near) silence.
"""

from __future__ import annotations

import torch
from torch import Tensor

from waveloom.audio.spectral import griffin_lim, mel_filterbank


def mel_to_magnitude(log_mel: Tensor, sr: int, n_fft: int, *, fmin: float = 0.0,
                     fmax: float | None = None, n_iter: int = 200, eps: float = 1e-5
                     ) -> Tensor:
    """Log mel [..., n_mels, frames] -> non-negative STFT magnitude [..., n_fft // 2 + 1,
    frames] whose mel best matches it (see the module docstring)."""
    fb = mel_filterbank(sr, n_fft, log_mel.shape[-2], fmin, fmax).to(log_mel.device).double()
    target = torch.exp(log_mel.double())
    target = torch.where(log_mel.double() <= torch.log(torch.tensor(eps)) + 1e-6,
                         torch.zeros_like(target), target)
    fb_t = fb.transpose(0, 1)
    numerator = torch.matmul(fb_t, target)  # fb^T m, fixed
    gram = torch.matmul(fb_t, fb)  # fb^T fb  [bins, bins]
    mag = numerator / fb.sum(0).clamp_min(1e-12)[:, None]
    for _ in range(n_iter):
        mag = mag * numerator / torch.matmul(gram, mag).clamp_min(1e-12)
    return mag.float()


def griffin_lim_from_mel(log_mel: Tensor, sr: int, n_fft: int, hop: int, *, fmin: float = 0.0,
                         fmax: float | None = None, n_iter: int = 100, length: int | None = None,
                         seed: int | None = 0) -> Tensor:
    """Log mel [..., n_mels, frames] -> audio [..., length or (frames - 1) x hop]: NNLS
    magnitude, then ``n_iter`` iterations of fast Griffin-Lim (momentum 0.99) from a seeded
    random phase."""
    mag = mel_to_magnitude(log_mel, sr, n_fft, fmin=fmin, fmax=fmax)
    return griffin_lim(mag, n_iter=n_iter, n_fft=n_fft, hop=hop, length=length, seed=seed,
                       progress=False)
