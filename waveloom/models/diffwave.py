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

``model.source_filter`` (class mode, an addition: :mod:`waveloom.models.diffwave_source`)
denoises a note's spectral envelope at the STFT frame rate instead of its samples, and a pulse
train at the labelled pitch carries the pitch (docs/diffwave.md: why, and what it measures).

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
from waveloom.models.diffusion import Diffusion, check_prediction
from waveloom.models.diffwave_source import EnvelopeTarget
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
    # The source-filter mode (class mode; waveloom.models.diffwave_source): denoise a note's
    # [2 x envelope_bands, frames] spectral envelope (STFT n_fft / hop) instead of samples;
    # a pulse train at the labelled pitch (up to ``harmonics`` partials) carries the pitch.
    source_filter: bool = False
    n_fft: int = 1024
    hop: int = 256
    envelope_bands: int = 64
    harmonics: int = 80
    log_floor: float = 1e-6
    vibrato_cents: float = 0.0  # source-filter mode: > 0 adds an f0-bend channel of this range
    prediction: str = "eps"  # eps (the paper) | v | x0 | edm (waveloom.models.diffusion)
    sigma_data: float = 0.5  # edm: the clean data's standard deviation

    def validate(self) -> None:
        super().validate()
        require_positive(self, "residual_channels", "layers", "cycle", "diffusion_steps")
        check_prediction(self.prediction)
        require_positive(self, "sigma_data")
        for key in ("pitch_excitation", "note_clock"):
            if getattr(self, key) and self.conditioning != "class":
                raise ConfigError(f"model.{key}=true needs model.conditioning=class (it "
                                  f"reads the note's pitch and onset), not "
                                  f"{self.conditioning!r}")
        if self.source_filter:
            self._validate_source_filter()
        if self.excitation_phase not in EXCITATION_PHASES:
            raise ConfigError(f"model.excitation_phase={self.excitation_phase!r}: use one of "
                              f"{', '.join(EXCITATION_PHASES)}")
        NoiseSchedule(self.diffusion_steps, self.beta_start, self.beta_end)  # checks the range
        if any(not 0 < b < 1 for b in self.fast_betas):
            raise ConfigError(f"model.fast_betas={list(self.fast_betas)}: each must be in (0, 1)")

    def _validate_source_filter(self) -> None:
        require_positive(self, "n_fft", "hop", "envelope_bands", "harmonics", "log_floor")
        if not 0 <= self.vibrato_cents <= 1200:
            raise ConfigError(f"model.vibrato_cents={self.vibrato_cents}: use 0 (a steady f0) "
                              f"or a range in cents up to 1200")
        if self.conditioning != "class" or not self.pitch_conditioning:
            raise ConfigError("model.source_filter=true plays the labelled pitch: it needs "
                              "model.conditioning=class with pitch_conditioning=true")
        if self.pitch_excitation:
            raise ConfigError("model.source_filter=true: the source carries the pitch; set "
                              "model.pitch_excitation=false")
        if self.hop > self.n_fft // 2 or self.envelope_bands < 2:
            raise ConfigError(f"model.hop={self.hop} must be at most n_fft / 2 = "
                              f"{self.n_fft // 2}, and envelope_bands at least 2")


class DiffWave(LabelOrMelModel, Diffusion):
    """A denoiser of waveforms ``[B, T]``, or in source-filter mode of envelope frames ``[B,
    channels, F]``; see the module docstring."""

    config_class: ClassVar[type[ModelConfig]] = DiffWaveConfig
    config: DiffWaveConfig

    def __init__(self, config: DiffWaveConfig) -> None:
        super().__init__(config)
        c = config
        self.schedule = NoiseSchedule(c.diffusion_steps, c.beta_start, c.beta_end)
        self.prediction = c.prediction  # type: ignore[misc]  (the base's default, per config)
        self.sigma_data = c.sigma_data
        self.conditioner = LabelOrMelConditioning(c)
        clocks = (EXCITATION_CHANNELS if c.pitch_excitation else 0) + (
            NOTE_CLOCK_CHANNELS if c.note_clock else 0)
        self.source = EnvelopeTarget(c) if c.source_filter else None
        self.net = DiffWaveNet(c.residual_channels, c.layers, c.cycle, self.conditioner.channels,
                               local_channels=clocks,
                               in_channels=self.source.channels if self.source else 1)

    def fast_betas(self) -> tuple[float, ...] | None:
        return tuple(self.config.fast_betas) or None

    def clean_target(self, batch: dict[str, Any]) -> Tensor:
        """The audio, or in source-filter mode its envelope frames ``[B, 2 x bands, F]``."""
        if self.source is None:
            return super().clean_target(batch)
        return self.source.clean(batch["audio"], batch["pitch"])

    def noise_shape(self, n: int, length: int) -> tuple[int, ...]:
        if self.source is None:
            return super().noise_shape(n, length)
        return (n, self.source.channels, self.source.frames(length))

    def to_audio(self, x: Tensor, length: int, labels: dict[str, Any] | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Source-filter mode: the envelope played at ``labels['pitch']``, its noise source
        seeded from ``generator`` (drawn on the CPU, so a seed gives one note on any device)."""
        if self.source is None:
            return super().to_audio(x, length, labels, generator)
        seed = None
        if generator is not None:
            seed = torch.Generator().manual_seed(int(torch.randint(
                2 ** 62, (1,), generator=generator, device=generator.device)))
        return self.source.audio(x, (labels or {}).get("pitch"), length, seed)

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
        if self.source is not None:  # the clocks at the envelope's frame centres
            return note_clock(self.source.frame_times(start, batch, length), c.sample_rate)
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
