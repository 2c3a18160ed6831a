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

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from waveloom.audio.mel_features import MelFeatures
from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.diffusion import Diffusion
from waveloom.nn.conditioning import GlobalConditioning, UpsampleConditioning
from waveloom.nn.diffusion_schedule import DIFFWAVE_FAST_BETAS, NoiseSchedule
from waveloom.nn.diffwave import DiffWaveNet

MODES = ("none", "class", "mel")


@dataclass
class DiffWaveConfig(ModelConfig):
    """Hyper-parameters; the defaults are the paper's 30-layer, 64-channel model."""

    residual_channels: int = 64
    layers: int = 30
    cycle: int = 10  # dilations 1, 2, ..., 2^(cycle-1), repeated
    diffusion_steps: int = 50
    beta_start: float = 1e-4
    beta_end: float = 0.05
    fast_betas: tuple[float, ...] = field(default_factory=lambda: DIFFWAVE_FAST_BETAS)
    conditioning: str = "none"  # none | class | mel
    pitch_conditioning: bool = True  # class mode
    instrument_conditioning: bool = True  # class mode
    num_instruments: int = 16
    cond_dim: int = 32
    cond_dropout: float = 0.1
    n_mels: int = 80  # mel mode: MelGAN's analysis
    mel_hop: int = 256
    mel_n_fft: int = 1024
    upsample_factors: tuple[int, ...] = (16, 16)
    sample_rate: int = 16000

    def validate(self) -> None:
        require_positive(self, "residual_channels", "layers", "cycle", "diffusion_steps",
                         "num_instruments", "cond_dim", "n_mels", "mel_hop", "sample_rate")
        if self.conditioning not in MODES:
            raise ConfigError(f"model.conditioning={self.conditioning!r}: use one of "
                              f"{', '.join(MODES)}")
        NoiseSchedule(self.diffusion_steps, self.beta_start, self.beta_end)  # checks the range
        if any(not 0 < b < 1 for b in self.fast_betas):
            raise ConfigError(f"model.fast_betas={list(self.fast_betas)}: each must be in (0, 1)")
        if self.conditioning == "mel" and math.prod(self.upsample_factors) != self.mel_hop:
            raise ConfigError(f"model.upsample_factors={list(self.upsample_factors)} multiply "
                              f"to {math.prod(self.upsample_factors)}, not model.mel_hop="
                              f"{self.mel_hop}")
        if self.conditioning == "class" and not (self.pitch_conditioning
                                                 or self.instrument_conditioning):
            raise ConfigError("model.conditioning=class needs pitch_conditioning and/or "
                              "instrument_conditioning")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"model.cond_dropout={self.cond_dropout} must be in [0, 1)")


class DiffWave(Diffusion):
    """eps_theta(x_t, t, c) over waveforms ``[B, T]``; see the module docstring."""

    config_class: ClassVar[type[ModelConfig]] = DiffWaveConfig
    config: DiffWaveConfig

    def __init__(self, config: DiffWaveConfig) -> None:
        super().__init__(config)
        c = config
        self.schedule = NoiseSchedule(c.diffusion_steps, c.beta_start, c.beta_end)
        self.labels = None
        self.upsample = None
        cond_channels = 0
        if c.conditioning == "class":
            self.labels = GlobalConditioning(c.cond_dim, c.num_instruments,
                                             pitch=c.pitch_conditioning,
                                             instrument=c.instrument_conditioning,
                                             dropout=c.cond_dropout)
            cond_channels = self.labels.out_dim
        elif c.conditioning == "mel":
            self.upsample = UpsampleConditioning(c.n_mels, c.upsample_factors)
            cond_channels = c.n_mels
        self.net = DiffWaveNet(c.residual_channels, c.layers, c.cycle, cond_channels)

    @property
    def mel_features(self) -> MelFeatures | None:
        c = self.config
        if c.conditioning != "mel":
            return None
        return MelFeatures(c.sample_rate, c.mel_n_fft, c.mel_hop, c.n_mels)

    def vocode_request(self, mel: Any) -> tuple[int, int, dict[str, Any]]:
        """Log mel [n, M, F] (or [M, F]) -> the request ``waveloom.sampling.sample.vocode``
        samples (see :meth:`MelFeatures.request`); refused without a mel input."""
        if self.mel_features is None:
            raise ConfigError(f"model.conditioning={self.config.conditioning!r}: only "
                              "conditioning=mel vocodes")
        return self.mel_features.request(mel, self.upsample.layers[0].weight.device)

    def conditioning_keys(self) -> tuple[str, ...]:
        return self.labels.keys() if self.labels is not None else ()

    def fast_betas(self) -> tuple[float, ...] | None:
        return tuple(self.config.fast_betas) or None

    def predict(self, x: Tensor, tau: Tensor, cond: Any) -> Tensor:
        return self.net(x, tau, cond)

    def condition_input(self, labels: dict[str, Any], batch: int, length: int,
                        audio: Tensor | None = None, dropout: bool = False) -> Tensor | None:
        """Class mode: label vectors ``[B, G, 1]``; mel mode: the mel of ``audio`` (training)
        or ``labels['mel']`` (sampling), upsampled to ``[B, n_mels, length]``."""
        if self.labels is not None:
            pitch, instrument = labels.get("pitch"), labels.get("instrument")
            problem = self.labels.check(
                None if pitch is None else torch.as_tensor(pitch),
                None if instrument is None else torch.as_tensor(instrument))
            if problem:
                raise ConfigError(problem)
            return self.labels(pitch, instrument, batch=batch, dropout=dropout)[..., None]
        if self.upsample is None:
            return None
        mel = labels.get("mel")
        if mel is None and labels.get("prime") is not None:  # generate --prime: resynthesis
            audio = torch.as_tensor(labels["prime"]).float()
        if mel is None:
            if audio is None:
                raise DataError("this DiffWave is a vocoder: give a mel (cond['mel'], "
                                f"{self.mel_features.layout()})")
            mel = self.mel_features(audio)
        mel = self.mel_features.check(mel, self.upsample.layers[0].weight.device)
        return self.upsample(mel.expand(batch, -1, -1), length)
