"""DiffWave (Kong et al. 2021): a non-autoregressive diffusion model of waveforms.

The network (:class:`waveloom.nn.diffwave.DiffWaveNet`) predicts the noise in ``x_t``; a
sampler (:mod:`waveloom.sampling.diffusion`: DDPM, DDIM, DPM-Solver++) walks from white noise
to audio in T (or fewer) passes, each over the whole waveform at once, so its cost is
``steps x`` one network pass, independent of the autoregressive sample rate bottleneck.

Three modes (``model.conditioning``):

* ``none``: unconditional (the paper's SC09 digits model);
* ``class``: pitch and instrument labels (the shipped note models' labels), through the
  shared :class:`~waveloom.nn.conditioning.GlobalConditioning` (label dropout teaches its
  "unknown" row, so a label may be left out), broadcast over time;
* ``mel``: a vocoder of the log mel MelGAN and the mel WaveNet read
  (:class:`~waveloom.audio.mel_features.MelFeatures`, computed from each training window),
  upsampled to the sample rate by :class:`~waveloom.nn.conditioning.UpsampleConditioning`.

Schedule: T = 50 training steps, betas linear 1e-4 .. 0.05 (the paper's vocoder and
unconditional settings); few-step DDPM uses the paper's own 6-beta fast schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor

from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError
from waveloom.models.diffusion import Diffusion
from waveloom.models.vocoder_conditioning import (
    LabelOrMelConditioning,
    LabelOrMelConfig,
    LabelOrMelModel,
)
from waveloom.nn.diffusion_schedule import DIFFWAVE_FAST_BETAS, NoiseSchedule
from waveloom.nn.diffwave import DiffWaveNet


@dataclass
class DiffWaveConfig(LabelOrMelConfig):
    """Hyper-parameters; the defaults are the paper's 30-layer, 64-channel model (the
    conditioning fields are :class:`LabelOrMelConfig`'s)."""

    residual_channels: int = 64
    layers: int = 30
    cycle: int = 10  # dilations 1, 2, ..., 2^(cycle-1), repeated
    diffusion_steps: int = 50
    beta_start: float = 1e-4
    beta_end: float = 0.05
    fast_betas: tuple[float, ...] = field(default_factory=lambda: DIFFWAVE_FAST_BETAS)

    def validate(self) -> None:
        super().validate()
        require_positive(self, "residual_channels", "layers", "cycle", "diffusion_steps")
        NoiseSchedule(self.diffusion_steps, self.beta_start, self.beta_end)  # checks the range
        if any(not 0 < b < 1 for b in self.fast_betas):
            raise ConfigError(f"model.fast_betas={list(self.fast_betas)}: each must be in (0, 1)")


class DiffWave(LabelOrMelModel, Diffusion):
    """eps_theta(x_t, t, c) over waveforms ``[B, T]``; see the module docstring."""

    config_class: ClassVar[type[ModelConfig]] = DiffWaveConfig
    config: DiffWaveConfig

    def __init__(self, config: DiffWaveConfig) -> None:
        super().__init__(config)
        c = config
        self.schedule = NoiseSchedule(c.diffusion_steps, c.beta_start, c.beta_end)
        self.conditioner = LabelOrMelConditioning(c)
        self.net = DiffWaveNet(c.residual_channels, c.layers, c.cycle, self.conditioner.channels)

    def fast_betas(self) -> tuple[float, ...] | None:
        return tuple(self.config.fast_betas) or None

    def predict(self, x: Tensor, tau: Tensor, cond: Any) -> Tensor:
        return self.net(x, tau, cond)

    def condition_input(self, labels: dict[str, Any], batch: int, length: int,
                        audio: Tensor | None = None, dropout: bool = False) -> Tensor | None:
        """Class mode: label vectors ``[B, G, 1]``; mel mode: the mel of ``labels['mel']``,
        ``labels['prime']`` or the training ``audio``, upsampled to ``[B, n_mels, length]``."""
        return self.conditioner(labels, batch, length, audio, dropout)
