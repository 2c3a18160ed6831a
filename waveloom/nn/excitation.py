"""A pitch excitation at the sample rate: what lets a frame-rate vocoder hold a steady pitch.

A convolutional vocoder with total stride ``hop`` is shift-equivariant by whole frames, so a
constant mel (a steady note) can only give an output that repeats every ``hop`` samples:
harmonics of ``sample_rate / hop`` (62.5 Hz at 16 kHz, hop 256), never the note's own
(docs/melgan.md measures it). Neural source-filter vocoders (NSF, Wang et al. 2019; NSF-HiFiGAN,
SiFi-GAN) break that symmetry with a source that carries the pitch: sines at the tracked f0.

:func:`harmonic_excitation` gives ``K`` channels, ``sin(2 pi k phi(n))`` for ``k = 1..K``, where
``phi`` is the fundamental's phase in cycles, f0 blended linearly between frame centres and
accumulated exactly (:func:`waveloom.nn.ddsp.harmonic.interval_cycles`, the DDSP synthesiser's
own phase). A channel is zero where its harmonic would reach Nyquist, and all are zero on
unvoiced frames (f0 = 0). :func:`fitted_phase` finds the starting phase that locks the
fundamental to a given waveform (a decoder's training target).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from waveloom.nn.ddsp.harmonic import interval_cycles

#: Amplitude of each sine (NSF's 0.1): the source guides the pitch without swamping what the
#: network makes of the mel (at 1.0 a 220 Hz tone trained alone started 4x further off).
SINE_AMPLITUDE = 0.1


def _phase_and_ceiling(f0_hz: Tensor, sample_rate: int, hop: int, phase0: Tensor | None
                       ) -> tuple[Tensor, Tensor]:
    """The fundamental's phase in cycles at every sample ``[B, F, hop]`` and each frame
    interval's highest f0 ``[B, F]`` (what decides which harmonics stay below Nyquist)."""
    f0 = f0_hz.float()
    following = torch.cat([f0[:, 1:], f0[:, -1:]], dim=1)
    cycles, _ = interval_cycles(f0, following, sample_rate, hop, phase0)
    return cycles, torch.maximum(f0, following)


def harmonic_excitation(f0_hz: Tensor, sample_rate: int, hop: int, harmonics: int,
                        phase0: Tensor | None = None) -> Tensor:
    """f0 per frame ``[B, F]`` (Hz, 0 = unvoiced; frame ``i`` at sample ``i * hop``) ->
    excitation ``[B, harmonics, F * hop]``, each sine of amplitude :data:`SINE_AMPLITUDE`.
    ``phase0`` ``[B]`` (radians): the starting phase (0 by default; training draws it)."""
    cycles, top = _phase_and_ceiling(f0_hz, sample_rate, hop, phase0)
    k = torch.arange(1, harmonics + 1, dtype=cycles.dtype, device=cycles.device)
    sines = torch.sin(2 * math.pi * k[None, :, None, None] * cycles[:, None])  # [B, K, F, hop]
    keep = (k[None, :, None] * top[:, None] < sample_rate / 2) & (top[:, None] > 0)
    sines = sines * (SINE_AMPLITUDE * keep[..., None].to(sines.dtype))
    return sines.reshape(f0_hz.shape[0], harmonics, -1)


def pulse_train(f0_hz: Tensor, sample_rate: int, hop: int, harmonics: int,
                phase0: Tensor | None = None) -> Tensor:
    """The sum of :func:`harmonic_excitation`'s channels, ``[B, F * hop]``: a band-limited pulse
    train with a line at every harmonic of f0 below Nyquist (up to ``harmonics``), each of
    amplitude :data:`SINE_AMPLITUDE`. Summed one harmonic at a time, so memory stays at one
    channel's ``[B, F * hop]`` even for the ~100 harmonics of a low note at 16 kHz."""
    cycles, top = _phase_and_ceiling(f0_hz, sample_rate, hop, phase0)
    top = top[..., None]
    out = torch.zeros_like(cycles)
    for k in range(1, harmonics + 1):
        keep = ((k * top < sample_rate / 2) & (top > 0)).to(cycles.dtype)
        if not bool(keep.any()):
            break
        out = out + torch.sin((2 * math.pi * k) * cycles) * keep
    return (SINE_AMPLITUDE * out).reshape(f0_hz.shape[0], -1)


def fitted_phase(f0_hz: Tensor, audio: Tensor, sample_rate: int, hop: int) -> Tensor:
    """The starting phase ``[B]`` (radians) that puts the fundamental of
    :func:`harmonic_excitation` in phase with ``audio`` ``[B, T]``: the least-squares fit
    ``audio ~ a sin(2 pi phi) + b cos(2 pi phi)`` over the voiced samples, ``atan2(b, a)``.

    Why: a source at a random phase tells a WaveNet only the period, which its per-sample
    local input can use only through its deeper layers, and a CPU translator run learnt to
    ignore it (docs/translator.md). A source locked to the target's own fundamental says
    where in the period the next sample falls, so the decoder learns to follow it sample by
    sample; sampling then hands it a source at any phase and the output locks to that.
    """
    cycles, top = _phase_and_ceiling(f0_hz, sample_rate, hop, None)
    angle = (2 * math.pi * cycles).reshape(f0_hz.shape[0], -1)[:, : audio.shape[-1]]
    voiced = (top > 0).repeat_interleave(hop, dim=1)[:, : angle.shape[-1]].to(angle.dtype)
    x = audio[:, : angle.shape[-1]].float() * voiced
    a, b = (x * torch.sin(angle)).sum(-1), (x * torch.cos(angle)).sum(-1)
    return torch.atan2(b, a)
