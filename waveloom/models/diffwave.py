"""DiffWave (Kong et al. 2021): a non-autoregressive diffusion model of waveforms.

The network (:class:`waveloom.nn.diffwave.DiffWaveNet`) predicts the noise in ``x_t``; a
sampler (:mod:`waveloom.sampling.diffusion`: DDPM, DDIM, DPM-Solver++) walks from white noise
to audio in T (or fewer) passes, each over the whole waveform at once, so its cost is
``steps x`` one network pass, independent of the autoregressive sample rate bottleneck.

Three modes (``model.conditioning``):

* ``none``: unconditional (the paper's SC09 digits model);
* ``class``: pitch and instrument labels (the shipped note models' labels), through the
  shared :class:`~waveloom.nn.conditioning.GlobalConditioning` (label dropout teaches its
  "unknown" row, so a label may be left out), broadcast over time; optionally with the
  sample-rate clocks the notes WaveNet reads (:mod:`waveloom.nn.pitch_clock`):
  ``model.pitch_excitation`` (sin/cos of the labelled pitch's phase, so the network shapes a
  timbre around a given period instead of inventing the period from an embedding) and
  ``model.note_clock`` (where in the note each sample is, from the window's ``start``);
* ``mel``: a vocoder of the log mel MelGAN and the mel WaveNet read
  (:class:`~waveloom.audio.mel_features.MelFeatures`, computed from each training window),
  upsampled to the sample rate by :class:`~waveloom.nn.conditioning.UpsampleConditioning`.

Schedule: T = 50 training steps, betas linear 1e-4 .. 0.05 (the paper's vocoder and
unconditional settings); few-step DDPM uses the paper's own 6-beta fast schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
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
from waveloom.nn.pitch_clock import (
    EXCITATION_CHANNELS,
    EXCITATION_PHASES,
    NOTE_CLOCK_CHANNELS,
    note_clock,
    pitch_excitation,
)


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
    pitch_excitation: bool = False  # class mode: sin/cos of the labelled pitch's phase
    excitation_phase: str = "random"  # random | onset (waveloom.nn.pitch_clock)
    note_clock: bool = False  # class mode: onset gate and decays from the window's start

    def validate(self) -> None:
        super().validate()
        require_positive(self, "residual_channels", "layers", "cycle", "diffusion_steps")
        for key in ("pitch_excitation", "note_clock"):
            if getattr(self, key) and self.conditioning != "class":
                raise ConfigError(f"model.{key}=true needs model.conditioning=class (it "
                                  f"reads the note's pitch and onset), not "
                                  f"{self.conditioning!r}")
        if self.excitation_phase not in EXCITATION_PHASES:
            raise ConfigError(f"model.excitation_phase={self.excitation_phase!r}: use one of "
                              f"{', '.join(EXCITATION_PHASES)}")
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
        clocks = (EXCITATION_CHANNELS if c.pitch_excitation else 0) + (
            NOTE_CLOCK_CHANNELS if c.note_clock else 0)
        self.net = DiffWaveNet(c.residual_channels, c.layers, c.cycle, self.conditioner.channels,
                               local_channels=clocks)

    def fast_betas(self) -> tuple[float, ...] | None:
        return tuple(self.config.fast_betas) or None

    def conditioning_keys(self) -> tuple[str, ...]:
        keys = self.conditioner.keys()
        if self.config.pitch_excitation and "pitch" not in keys:
            keys = keys + ("pitch",)
        return keys

    def batch_keys(self) -> tuple[str, ...]:
        """The labels, plus each window's ``start`` in its note when the note clock or an
        onset-phased excitation reads it."""
        c = self.config
        onset = c.note_clock or (c.pitch_excitation and c.excitation_phase == "onset")
        return self.conditioning_keys() + (("start",) if onset else ())

    def predict(self, x: Tensor, tau: Tensor, cond: Any) -> Tensor:
        """``cond`` is what :meth:`condition_input` gave: a tensor, or (labels, clocks)."""
        if isinstance(cond, tuple):
            return self.net(x, tau, *cond)
        return self.net(x, tau, cond)

    def condition_input(self, labels: dict[str, Any], batch: int, length: int,
                        audio: Tensor | None = None, dropout: bool = False) -> Any:
        """Class mode: label vectors ``[B, G, 1]``, or with clocks the pair (those vectors,
        clocks ``[B, Cl, length]``); mel mode: the mel of ``labels['mel']``,
        ``labels['prime']`` or the training ``audio``, upsampled to ``[B, n_mels, length]``."""
        cond = self.conditioner(labels, batch, length, audio, dropout)
        c = self.config
        if not (c.pitch_excitation or c.note_clock):
            return cond
        return cond, self._clocks(labels, batch, length, dropout)

    def _clocks(self, labels: dict[str, Any], batch: int, length: int, training: bool
                ) -> Tensor:
        """The sample-rate clocks ``[B, Cl, length]``: the excitation (``excitation_phase``
        random: its phase drawn at random in training, so only the period informs; onset: 0 at
        the note's onset, silent before; dropped with the labels' dropout rate, so a note may
        be asked for without a pitch) and the note clock of the samples' times since the
        onset (the window's ``start``; 0 when generating a note)."""
        c, device = self.config, self.net.inp.weight.device
        start = torch.as_tensor(labels.get("start", 0), device=device).reshape(-1, 1)
        times = (start + torch.arange(length, device=device)).expand(batch, -1)
        parts = []
        if c.pitch_excitation:
            exc = pitch_excitation(labels.get("pitch"), times, c.sample_rate,
                                   random_phase=training, device=device,
                                   onset_phase=c.excitation_phase == "onset")
            if training and c.cond_dropout > 0:
                keep = (torch.rand(batch, 1, 1, device=device) >= c.cond_dropout).float()
                exc = exc * keep
            parts.append(exc)
        if c.note_clock:
            parts.append(note_clock(times, c.sample_rate))
        return torch.cat(parts, dim=1)
