"""The no-network mel inverse (NNLS magnitude + fast Griffin-Lim), a vocoder's baseline."""

from __future__ import annotations

import math

import torch

from waveloom.audio.mel_features import MelFeatures
from waveloom.audio.mel_inversion import mel_to_magnitude
from waveloom.audio.spectral import mel_spectrogram, multiscale_spectral_distance

SR = 16000


def _tone(seconds: float = 1.0, f0: float = 220.0) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    wave = sum(0.3 / k * torch.sin(2 * math.pi * k * f0 * t) for k in (1, 2, 3))
    return (wave * torch.exp(-2 * t))[None].float()


def test_nnls_magnitude_is_non_negative_and_reproduces_the_mel():
    x = _tone()
    log_mel = mel_spectrogram(x, SR)
    mag = mel_to_magnitude(log_mel, SR, 1024)
    assert mag.shape == (1, 513, log_mel.shape[-1])
    assert (mag >= 0).all()
    again = mel_spectrogram(x, SR, log=False)
    from waveloom.audio.spectral import mel_filterbank

    fitted = mel_filterbank(SR, 1024, 80) @ mag
    assert (fitted - again).norm() / again.norm() < 0.01


def test_griffin_lim_from_mel_resynthesises_close_to_the_original():
    """Closer (multi-scale spectral distance) than the same mel's best flat-phase guess
    and than silence: the baseline is a real inverse, not a placeholder."""
    x = _tone()
    features = MelFeatures(SR)
    y = features.griffin_lim(features(x))
    assert y.shape == (1, (features(x).shape[-1] - 1) * 256)
    ref = x[:, : y.shape[-1]]
    d_gl = float(multiscale_spectral_distance(y, ref).mean())
    d_noise = float(multiscale_spectral_distance(0.1 * torch.randn_like(ref), ref).mean())
    assert d_gl < 0.5 * d_noise
    assert torch.equal(y, features.griffin_lim(features(x)))  # seeded phase
