"""SpecGAN (Donahue et al. 2019, sec. 4): WaveGAN's spectrogram twin.

A 2-D DCGAN on normalised log-magnitude spectrograms, inverted to audio by Griffin-Lim::

    audio [B, 16384] -> log |STFT| (n_fft 256, hop 128), Nyquist bin and last frame dropped
          -> [B, 1, 128 bins, 128 frames], mapped to [-1, 1]
    G: z -> dense 4x4 -> transposed 5x5 stride-2 convs x5 -> tanh [B, 1, 128, 128]
    D: strided 5x5 convs x5 -> score; WGAN-GP, 5 D steps per G step
    audio = Griffin-Lim(exp(unnormalise(G(z))))  (model.griffin_lim_iters, fast variant)

The paper normalised each frequency bin by its mean and deviation over the data and clipped at
3 deviations; here a fixed affine map (log floor ``log_floor`` -> -1, the log of a full-scale
sine's peak -> +1) needs no data statistics and is saved with the config. The stacks are the
shared :class:`~waveloom.nn.gan.Upsample2dGenerator` / :class:`~waveloom.nn.gan.
Conv2dDiscriminator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from waveloom.audio.spectral import griffin_lim, log_magnitude, stft
from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.adversarial import Adversarial, AdversarialConfig, CriticOutput
from waveloom.models.base import Batch
from waveloom.nn.gan import Conv2dDiscriminator, Upsample2dGenerator, randn


@dataclass
class SpecGANConfig(AdversarialConfig):
    n_fft: int = 256
    hop: int = 128
    frames: int = 128  # clip length = frames * hop samples
    layers: int = 5  # doublings of the generator (bins and frames divisible by 2**layers)
    model_dim: int = 64
    log_floor: float = 1e-5
    griffin_lim_iters: int = 16
    n_critic: int = 5
    d_lr: float = 1e-4

    @property
    def bins(self) -> int:
        return self.n_fft // 2

    @property
    def length(self) -> int:
        return self.frames * self.hop

    def validate(self) -> None:
        super().validate()
        require_positive(self, "n_fft", "hop", "frames", "layers", "model_dim", "griffin_lim_iters")
        if self.bins % 2**self.layers or self.frames % 2**self.layers:
            raise ConfigError(
                f"model.n_fft/2={self.bins} and model.frames={self.frames} must be divisible by "
                f"2**model.layers={2**self.layers}"
            )
        if not self.log_floor > 0:
            raise ConfigError(f"model.log_floor={self.log_floor} must be > 0")


def log_range(n_fft: int, floor: float) -> tuple[float, float]:
    """(centre, half-width) mapping natural-log magnitudes in [log floor, log(n_fft/4) + 1] to
    [-1, 1]: ``n_fft / 4`` is a full-scale sine's peak under a Hann window (spectral.py's
    convention), with one nat of headroom for chords."""
    lo, hi = math.log(floor), math.log(n_fft / 4.0) + 1.0
    return (lo + hi) / 2.0, (hi - lo) / 2.0


class SpecGAN(Adversarial):
    """Unconditional log-magnitude spectrogram GAN with Griffin-Lim phase."""

    config_class: ClassVar[type[ModelConfig]] = SpecGANConfig
    config: SpecGANConfig

    def __init__(self, config: SpecGANConfig) -> None:
        super().__init__(config)
        c = config
        self.generator = Upsample2dGenerator(c.latent_dim, 1, c.bins, c.frames, c.layers,
                                             c.model_dim)
        self.discriminator = Conv2dDiscriminator(1, c.bins, c.frames, c.layers, c.model_dim)
        self.centre, self.scale = log_range(c.n_fft, c.log_floor)

    def image(self, audio: Tensor) -> Tensor:
        """Audio [B, T] -> normalised log magnitudes [B, 1, bins, frames] in [-1, 1] (the clip's
        first ``frames * hop`` samples, silence-padded)."""
        c = self.config
        if audio.dim() != 2:
            raise DataError(f"audio has shape {tuple(audio.shape)}; expected [B, T]")
        x = F.pad(audio[:, : c.length], (0, max(0, c.length - audio.shape[-1])))
        logmag = log_magnitude(stft(x, c.n_fft, c.hop), c.log_floor)[:, : c.bins, : c.frames]
        return ((logmag - self.centre) / self.scale).clamp(-1.0, 1.0)[:, None]

    def real_sample(self, batch: Batch, gen: torch.Generator | None) -> tuple[Tensor, dict]:
        x = self.image(batch["audio"].to(self._param_device()))
        return x, {"n": x.shape[0]}

    def fake_sample(self, cond: dict[str, Any], gen: torch.Generator | None) -> Tensor:
        return self.generator(randn((cond["n"], self.latent_dim), gen, self._param_device()))

    def critic(self, x: Tensor, cond: dict[str, Any], gen: torch.Generator | None
               ) -> list[CriticOutput]:
        return [self.discriminator(x)]

    def synthesize(self, z: Tensor, cond: dict[str, Any] | None = None) -> Tensor:
        c = self.config
        image = self.generator(z.to(self._param_device()))[:, 0].float()
        mag = (image * self.scale + self.centre).exp()
        # Restore the dropped Nyquist bin (silent) and one trailing silent frame, so the
        # inverse covers frames * hop samples.
        mag = F.pad(mag, (0, 1, 0, 1), value=c.log_floor)
        audio = griffin_lim(mag, c.griffin_lim_iters, hop=c.hop, length=c.length, seed=0,
                            progress=False)
        return audio.clamp(-1.0, 1.0)
