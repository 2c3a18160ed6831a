"""The conditioning a non-autoregressive waveform family reads: nothing, labels or a mel.

DiffWave and WaveGlow (and any later parallel vocoder) share it: the config fields, their
checks, and :class:`LabelOrMelConditioning`, which turns a request (labels; a mel; or audio to
resynthesise, whose mel is taken) into the network's conditioning at the sample rate.

* ``none``: nothing (unconditional);
* ``class``: pitch and instrument vectors (the shared ``GlobalConditioning``, with label
  dropout so a label may be left out), ``[B, G, 1]``, broadcast over time by the network;
* ``mel``: MelGAN's log mel (so the vocoders are interchangeable), from ``labels['mel']``,
  else the mel of ``labels['prime']`` or ``labels['audio']`` (resynthesis, as MelGAN and the
  autoencoders read a request) or of the training audio, upsampled to
  ``[B, n_mels, length]`` by the shared ``UpsampleConditioning``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from waveloom.audio.mel_features import MelFeatures
from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError
from waveloom.nn.conditioning import GlobalConditioning, UpsampleConditioning

MODES = ("none", "class", "mel")


@dataclass
class LabelOrMelConfig(ModelConfig):
    """The conditioning fields (a family config subclasses this; flat ``model.*`` keys)."""

    conditioning: str = "none"  # none | class | mel
    pitch_conditioning: bool = True  # class mode
    instrument_conditioning: bool = True  # class mode
    num_instruments: int = 16
    cond_dim: int = 32
    cond_dropout: float = 0.1
    n_mels: int = 80  # mel mode: MelGAN's analysis
    mel_hop: int = 256
    mel_n_fft: int = 1024
    upsample_factors: tuple[int, ...] = field(default_factory=lambda: (16, 16))
    sample_rate: int = 16000

    def validate(self) -> None:
        require_positive(self, "num_instruments", "cond_dim", "n_mels", "mel_hop",
                         "sample_rate")
        if self.conditioning not in MODES:
            raise ConfigError(f"model.conditioning={self.conditioning!r}: use one of "
                              f"{', '.join(MODES)}")
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


class LabelOrMelConditioning(nn.Module):
    """``(labels, batch, length, audio) -> [B, C, length or 1]`` (see the module docstring);
    ``channels`` is ``C`` (0 for ``none``)."""

    def __init__(self, c: LabelOrMelConfig) -> None:
        super().__init__()
        self.mode = c.conditioning
        self.labels = self.upsample = None
        self.mel_features: MelFeatures | None = None
        self.channels = 0
        if c.conditioning == "class":
            self.labels = GlobalConditioning(c.cond_dim, c.num_instruments,
                                             pitch=c.pitch_conditioning,
                                             instrument=c.instrument_conditioning,
                                             dropout=c.cond_dropout)
            self.channels = self.labels.out_dim
        elif c.conditioning == "mel":
            self.upsample = UpsampleConditioning(c.n_mels, c.upsample_factors)
            self.mel_features = MelFeatures(c.sample_rate, c.mel_n_fft, c.mel_hop, c.n_mels)
            self.channels = c.n_mels

    def keys(self) -> tuple[str, ...]:
        return self.labels.keys() if self.labels is not None else ()

    def vocode_request(self, mel: Any) -> tuple[int, int, dict[str, Any]]:
        """Log mel [n, M, F] (or [M, F]) -> the request ``waveloom.sampling.sample.vocode``
        samples; refused without a mel input."""
        if self.mel_features is None:
            raise ConfigError(f"model.conditioning={self.mode!r}: only conditioning=mel "
                              "vocodes")
        return self.mel_features.request(mel, self.upsample.layers[0].weight.device)

    def forward(self, labels: dict[str, Any], batch: int, length: int,
                audio: Tensor | None = None, dropout: bool = False) -> Tensor | None:
        if self.labels is not None:
            return label_vectors(self.labels, labels, batch, dropout)[..., None]
        if self.upsample is None:
            return None
        mel = labels.get("mel")
        if mel is None:
            source = labels.get("prime", labels.get("audio", audio))
            if source is None:
                raise ConfigError("this model is a vocoder: give a mel (waveloom vocode) or "
                                f"audio to resynthesise ({self.mel_features.layout()})")
            mel = self.mel_features(torch.as_tensor(source).float())
        mel = self.mel_features.check(mel, self.upsample.layers[0].weight.device)
        return self.upsample(mel.expand(batch, -1, -1), length)


class LabelOrMelModel:
    """Mixin for a model whose ``self.conditioner`` is a :class:`LabelOrMelConditioning`:
    the labels it takes, its mel analysis (``vocode`` reads it) and its vocoding request."""

    conditioner: LabelOrMelConditioning

    @property
    def mel_features(self) -> MelFeatures | None:
        return self.conditioner.mel_features

    def vocode_request(self, mel: Any) -> tuple[int, int, dict[str, Any]]:
        return self.conditioner.vocode_request(mel)

    def conditioning_keys(self) -> tuple[str, ...]:
        return self.conditioner.keys()


def label_vectors(table: GlobalConditioning, labels: dict[str, Any], batch: int,
                  dropout: bool = False) -> Tensor:
    """``GlobalConditioning`` vectors ``[B, G]`` of ``labels['pitch'/'instrument']``, after
    its range check (a one-line :class:`ConfigError` for a label the model does not know)."""
    pitch, instrument = labels.get("pitch"), labels.get("instrument")
    problem = table.check(None if pitch is None else torch.as_tensor(pitch),
                          None if instrument is None else torch.as_tensor(instrument))
    if problem:
        raise ConfigError(problem)
    return table(pitch, instrument, batch=batch, dropout=dropout)
