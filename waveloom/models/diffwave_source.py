"""DiffWave's source-filter mode (``model.source_filter``): denoise a note's envelope, not its
samples.

Trained on the CPU, DiffWave over samples never became a generator: from a quarter of the
signal power gone on, its estimate of a note was no better than silence (docs/diffwave.md,
session 17). What it had to learn there was both the period (a pitch) and the timbre, at
16,000 values a second. In this mode the diffusion runs over a note's coarse spectral
envelope instead, ``[2 x bands, F]`` at the STFT's frame rate (64 bands, 62.5 frames a
second: ~8,000 values a second of which most are smooth), and the pitch comes from a source,
as in GANSynth's source-filter output (the same synthesiser, :class:`waveloom.nn.
envelope_synth.SourceFilterSynth`):

::

    training: note audio [B, T] + its MIDI pitch
       --fit_envelope (waveloom.nn.envelope_fit)--> x0 [B, 2 x bands, F] in [-1, 1]
       (channels 0..bands-1: the partials' peak level; bands..2 bands-1: the noise floor)
    sampling: noise [n, 2 x bands, F] --DiffWaveNet over frames, any sampler--> x0
       --SourceFilterSynth at the labelled pitch (pulse train + noise, one iSTFT)--> audio

With ``model.vibrato_cents`` > 0 a last channel carries where the f0 sits in each frame, in
units of that many cents (:func:`waveloom.nn.envelope_fit.fit_cents`; clipped to +-1): the
model then learns vibrato and scoops, and the pulse train follows them, so the pitch is no
longer the label's by construction and the pitch judge measures the model too.

What the network learns is the timbre and its evolution (the attack, the decay, the brightness
falling with it); the pitch is on the label by construction, so a pitch judge measures the
synthesiser, and the timbre judge (``benchmarks/note_timbre.py``) measures the model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from waveloom.audio.tuning import midi_hz
from waveloom.errors import ConfigError
from waveloom.models.specgan import log_range
from waveloom.nn.envelope_fit import fit_note
from waveloom.nn.envelope_synth import SourceFilterSynth


class EnvelopeTarget(nn.Module):
    """The source-filter mode's two ends: audio -> envelope frames (the clean target) and
    envelope frames -> audio (after sampling). ``c`` is a :class:`~waveloom.models.diffwave.
    DiffWaveConfig` with ``source_filter`` on."""

    def __init__(self, c: Any) -> None:
        super().__init__()
        centre, scale = log_range(c.n_fft, c.log_floor)
        self.synth = SourceFilterSynth(c.sample_rate, c.n_fft, c.hop, c.envelope_bands,
                                       c.harmonics, centre, scale)
        self.hop, self.bands = c.hop, c.envelope_bands
        self.vibrato_cents = c.vibrato_cents  # 0: a steady f0; else the bend channel's range
        self.channels = 2 * c.envelope_bands + (1 if c.vibrato_cents else 0)

    def frames(self, length: int) -> int:
        """Envelope frames that cover ``length`` samples."""
        return -(-int(length) // self.hop)

    def frame_times(self, start: Tensor, batch: int, length: int) -> Tensor:
        """Each frame's centre in samples since the note's onset ``[B, F]`` (the STFT is
        centred: frame ``f`` sits at ``start + f hop``)."""
        steps = torch.arange(self.frames(length), device=start.device) * self.hop
        return (start.reshape(-1, 1) + steps).expand(batch, -1)

    def clean(self, audio: Tensor, pitch: Any) -> Tensor:
        """Training audio ``[B, T]`` and its MIDI pitches -> envelope frames ``[B, channels,
        ceil(T / hop)]`` (the audio padded with silence to whole frames): the partials' levels,
        the noise floor's, and with ``vibrato_cents`` the f0's bend per frame in units of
        that many cents (clipped to +-1)."""
        frames = self.frames(audio.shape[-1])
        padded = nn.functional.pad(audio.float(), (0, frames * self.hop - audio.shape[-1]))
        with torch.no_grad():
            env, cents = fit_note(padded, self.f0(pitch, audio.shape[0], audio.device),
                                  self.synth, frames, bent=bool(self.vibrato_cents))
        rows = [env.flatten(1, 2)]
        if self.vibrato_cents:
            rows.append((cents / self.vibrato_cents).clamp(-1.0, 1.0)[:, None])
        return torch.cat(rows, 1)

    def f0(self, pitch: Any, batch: int, device: torch.device) -> Tensor:
        """MIDI pitch labels (int, or ``[B]``) -> f0 ``[B]`` Hz; a missing pitch is an error,
        since the source needs one."""
        p = None if pitch is None else torch.as_tensor(pitch, device=device).reshape(-1)
        if p is None or bool((p < 0).any()):  # -1: the pitch left out
            raise ConfigError("a source-filter DiffWave plays the labelled pitch: give --pitch")
        return midi_hz(p.double().expand(batch)).float()

    def audio(self, x: Tensor, pitch: Any, length: int, generator: torch.Generator | None
              ) -> Tensor:
        """Sampled envelope frames ``[n, 2 x bands, F]`` -> audio ``[n, length]`` at the
        labelled pitch (``generator`` seeds the noise source, so a seed gives one note)."""
        x = x.clamp(-1.0, 1.0)
        envelope = x[:, : 2 * self.bands].reshape(x.shape[0], 2, self.bands, x.shape[-1])
        cents = x[:, 2 * self.bands] * self.vibrato_cents if self.vibrato_cents else None
        out = self.synth(envelope, self.f0(pitch, x.shape[0], x.device), generator, cents)
        return out[:, :length]
