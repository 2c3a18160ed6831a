"""The log-mel layout vocoders read, in one place for every family that reads it.

A mel is only useful across models if they agree on it exactly: the MelGAN vocoder, a
mel-conditioned WaveNet, and any model that predicts mels must all mean the same thing by
"``[80, frames]`` log mel". :class:`MelFeatures` holds those settings, computes the features
from audio (:func:`waveloom.audio.spectral.mel_spectrogram`: STFT magnitude, natural log,
floor 1e-5, centred frames ``1 + T // hop``), and checks a user's array against them with a
one-line error that names the layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from waveloom.audio.spectral import mel_spectrogram
from waveloom.errors import ConfigError


@dataclass(frozen=True)
class MelFeatures:
    """Settings of a log-mel analysis; ``fmax`` 0 means ``sample_rate / 2``."""

    sample_rate: int
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 0.0

    def __call__(self, audio: Tensor) -> Tensor:
        """Audio [B, T] (or [T]) -> log mel [B, n_mels, 1 + T // hop]."""
        return mel_spectrogram(audio.float(), self.sample_rate, self.n_fft, self.hop,
                               self.n_mels, self.fmin, self.fmax or None)

    def layout(self) -> str:
        """The expected layout in words, for error messages and help texts."""
        return (f"[{self.n_mels}, frames] log mel (waveloom.audio.spectral.mel_spectrogram with "
                f"sr={self.sample_rate}, n_fft={self.n_fft}, hop={self.hop}, "
                f"n_mels={self.n_mels})")

    def check(self, mel: Any, device: torch.device | str | None = None) -> Tensor:
        """A mel array -> float tensor [n, n_mels, frames] on ``device``, or a one-line
        :class:`ConfigError` naming the expected layout."""
        m = torch.as_tensor(np.asarray(mel) if not isinstance(mel, Tensor) else mel)
        shape = tuple(m.shape)
        if m.dim() == 2:
            m = m[None]
        if (m.dim() != 3 or m.shape[1] != self.n_mels or m.shape[2] == 0
                or not m.is_floating_point()):
            raise ConfigError(f"mel has shape {shape} ({m.dtype}); expected {self.layout()}")
        if not torch.isfinite(m).all():
            raise ConfigError("mel holds NaN or infinite values")
        return m.float().to(device) if device is not None else m.float()

    def request(self, mel: Any, device: torch.device | str | None = None
                ) -> tuple[int, int, dict[str, Tensor]]:
        """A mel array -> ``(n, (F - 1) x hop, {'mel': [n, M, F]})``: the sampling request
        that vocodes it (the length MelGAN gives), for any mel-conditioned sampler."""
        m = self.check(mel, device)
        return m.shape[0], self.samples(m.shape[-1]), {"mel": m}

    def griffin_lim(self, mel: Any, n_iter: int = 100, seed: int = 0) -> Tensor:
        """Log mel [n, n_mels, F] -> audio [n, (F - 1) x hop] by NNLS + fast Griffin-Lim
        (:mod:`waveloom.audio.mel_inversion`): the no-network baseline of a vocoder."""
        from waveloom.audio.mel_inversion import griffin_lim_from_mel

        m = self.check(mel)
        return griffin_lim_from_mel(m, self.sample_rate, self.n_fft, self.hop, fmin=self.fmin,
                                    fmax=self.fmax or None, n_iter=n_iter,
                                    length=self.samples(m.shape[-1]), seed=seed)

    def samples(self, frames: int) -> int:
        """Length of the audio a centred mel of ``frames`` frames was computed from, rounded
        down to whole hops (at least one hop)."""
        return max(1, frames - 1) * self.hop
