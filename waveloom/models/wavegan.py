"""WaveGAN (Donahue, McAuley & Puckette 2019): a DCGAN flattened to one dimension.

::

    z [B, 100] -> dense -> [B, 16d, 16] -> transposed conv (k=25, stride 4) x5, ReLU, tanh
               -> audio [B, 16384]                     (x6 with ``length: 65536``)
    D: audio [B, 1, 16384] -> conv (k=25, stride 4, LeakyReLU 0.2, phase shuffle n=2) x5
               -> dense -> score                      trained with WGAN-GP, 5 D steps per G step

The clip length is ``16 * stride ** layers``; ``model.length`` picks it (16,384 samples is one
second at 16 kHz; the paper's longer variant adds a layer for 65,536). ``d`` is
``model.model_dim`` (64 in the paper). Phase shuffle (:class:`~waveloom.nn.gan.PhaseShuffle`)
keeps the discriminator from keying on the checkerboard phase of transposed convolutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.adversarial import Adversarial, AdversarialConfig, CriticOutput
from waveloom.models.base import Batch
from waveloom.nn.gan import PhaseShuffle, randn


@dataclass
class WaveGANConfig(AdversarialConfig):
    length: int = 16384  # samples per clip: 16 * stride ** layers
    model_dim: int = 64  # d: channels of the last generator / first discriminator layer
    kernel_size: int = 25
    stride: int = 4
    phase_shuffle: int = 2
    n_critic: int = 5
    d_lr: float = 1e-4

    @property
    def layers(self) -> int:
        return round(math.log(self.length / 16, self.stride)) if self.length > 16 else 0

    def validate(self) -> None:
        super().validate()
        require_positive(self, "model_dim", "kernel_size", "stride")
        if self.length <= 16 or 16 * self.stride**self.layers != self.length:
            raise ConfigError(
                f"model.length={self.length} must be 16 * stride**k (stride {self.stride}: "
                f"{', '.join(str(16 * self.stride**k) for k in range(1, 7))})"
            )
        if self.kernel_size < self.stride or (self.kernel_size - self.stride) % 2 != 1:
            raise ConfigError(f"model.kernel_size={self.kernel_size} must be >= stride and "
                              "kernel_size - stride odd (e.g. 25 with stride 4)")
        if self.phase_shuffle < 0:
            raise ConfigError(f"model.phase_shuffle={self.phase_shuffle} must be >= 0")


class WaveGANGenerator(nn.Module):
    def __init__(self, c: WaveGANConfig) -> None:
        super().__init__()
        n, d, k, s = c.layers, c.model_dim, c.kernel_size, c.stride
        widths = [d * 2 ** (n - 1 - i) for i in range(n)] + [1]  # 16d..d, 1 for n = 5
        self.c0 = widths[0]
        self.dense = nn.Linear(c.latent_dim, 16 * self.c0)
        pad = (k - s + 1) // 2  # output length exactly stride * input length
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(ci, co, k, stride=s, padding=pad, output_padding=1)
            for ci, co in zip(widths[:-1], widths[1:])
        )

    def forward(self, z: Tensor) -> Tensor:
        x = F.relu(self.dense(z).view(z.shape[0], self.c0, 16))
        for i, up in enumerate(self.ups):
            x = up(x)
            x = torch.tanh(x) if i == len(self.ups) - 1 else F.relu(x)
        return x  # [B, 1, length]


class WaveGANDiscriminator(nn.Module):
    def __init__(self, c: WaveGANConfig) -> None:
        super().__init__()
        n, d, k, s = c.layers, c.model_dim, c.kernel_size, c.stride
        widths = [1] + [d * 2**i for i in range(n)]
        self.convs = nn.ModuleList(
            nn.Conv1d(ci, co, k, stride=s, padding=(k - s + 1) // 2)  # length / stride
            for ci, co in zip(widths[:-1], widths[1:])
        )
        self.shuffle = PhaseShuffle(c.phase_shuffle)
        self.score = nn.Linear(widths[-1] * 16, 1)
        self.length = c.length

    def forward(self, x: Tensor, gen: torch.Generator | None = None) -> CriticOutput:
        feats = []
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
            if i < len(self.convs) - 1:
                x = self.shuffle(x, gen)
        return self.score(x.flatten(1)).squeeze(-1), feats, None


class WaveGAN(Adversarial):
    """Unconditional waveform GAN (see the module docstring)."""

    config_class: ClassVar[type[ModelConfig]] = WaveGANConfig
    config: WaveGANConfig

    def __init__(self, config: WaveGANConfig) -> None:
        super().__init__(config)
        self.generator = WaveGANGenerator(config)
        self.discriminator = WaveGANDiscriminator(config)

    def _audio(self, batch: Batch) -> Tensor:
        audio = batch["audio"]
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, T]")
        # Training windows are data.window samples: crop or pad them to the model's clip.
        x = audio[:, : self.config.length]
        return F.pad(x, (0, self.config.length - x.shape[-1]))[:, None]

    def real_sample(self, batch: Batch, gen: torch.Generator | None) -> tuple[Tensor, dict]:
        x = self._audio(batch)
        return x, {"n": x.shape[0]}

    def fake_sample(self, cond: dict[str, Any], gen: torch.Generator | None) -> Tensor:
        z = randn((cond["n"], self.latent_dim), gen, self._param_device())
        return self.generator(z)

    def critic(self, x: Tensor, cond: dict[str, Any], gen: torch.Generator | None
               ) -> list[CriticOutput]:
        return [self.discriminator(x, gen)]

    def synthesize(self, z: Tensor, cond: dict[str, Any] | None = None) -> Tensor:
        return self.generator(z.to(self._param_device()))[:, 0]
