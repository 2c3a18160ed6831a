"""Sample-rate clocks that tell an autoregressive decoder *which* period and *where* in a note.

Two signals, shared by every WaveNet-style decoder that is told a note's pitch (the WaveNet
family and the NSynth autoencoder's decoder):

- :func:`pitch_excitation`: sin / cos of the labelled pitch's phase (a neural-source-filter
  clock, Wang et al. 2019). A decoder that must invent a period from a pitch embedding drifts
  to octave and fifth errors; one handed the period only shapes a timbre around it.
- :func:`note_clock`: a gate that opens at the note's onset and ``exp(-t / tau)`` for a few
  time scales, so a receptive field of tens of milliseconds knows where in the note it is.

And :func:`noisy_history`, the training-time noise on the decoder's *input* history that makes
it rely on these clocks instead of copying the period from a perfect teacher-forced past
(measured on the WaveNet: without it, turning the excitation off changed test NLL by 0.001
bits, and sampled notes drifted off pitch).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from waveloom.audio.tuning import midi_hz

EXCITATION_CHANNELS = 2  # sin and cos of the pitch phase
#: Where the excitation's phase comes from: drawn at random in training (only the period
#: informs) or 0 at the note's onset (where in the period each sample falls, which a rendered
#: note whose waveform starts the same way every time makes predictable).
EXCITATION_PHASES = ("random", "onset")
NOTE_CLOCK_TAUS = (0.02, 0.2, 2.0)  # seconds: attack, decay, sustain/release time scales
NOTE_CLOCK_CHANNELS = 1 + len(NOTE_CLOCK_TAUS)  # a note-on gate and one decay per time scale


def note_clock(times: Tensor, sample_rate: int) -> Tensor:
    """Samples since the note's onset ``[n, L]`` -> ``[n, NOTE_CLOCK_CHANNELS, L]``: a gate (1
    from the onset on) and ``exp(-t / tau)`` per time scale (0 before the onset)."""
    t = times.double()
    on = (t >= 0).float()
    taus = torch.tensor(NOTE_CLOCK_TAUS, device=t.device, dtype=torch.float64) * sample_rate
    # float64, rounded once: the torch-free twin (waveloom.sampling.clock_signals) then
    # computes the same float32 features as the model was trained on
    decays = torch.exp(-t.clamp(min=0)[:, None, :] / taus[None, :, None]).float() * on[:, None]
    return torch.cat([on[:, None], decays], dim=1)


def pitch_excitation(pitch: Any, times: Tensor, sample_rate: int, *, random_phase: bool,
                     onset_phase: bool, device: torch.device) -> Tensor:
    """sin / cos of each example's pitch phase: ``[n, 2, L]`` (zeros where the pitch is unknown).

    ``pitch`` is MIDI ``[n]`` (or a scalar); -1 or None means unknown and gives silence, which
    is also what label dropout shows the network. ``times`` ``[n, L]`` are the samples' times:
    since the note's onset when ``onset_phase`` (silent before it), any running count
    otherwise, whose phase is drawn at random when ``random_phase`` (training, so that only the
    period informs) and starts at 0 otherwise. The phase is accumulated in float64 and wrapped
    before the sine, so it stays exact over minutes of audio.
    """
    n, length = times.shape
    if pitch is None:
        return torch.zeros(n, EXCITATION_CHANNELS, length, device=device)
    p = torch.as_tensor(pitch, device=device).reshape(-1).double().expand(n)
    known = (p >= 0).float()[:, None]
    hz = midi_hz(p)
    t = times.to(device)
    cycles = hz[:, None] * t.double() / sample_rate
    if onset_phase:
        known = known * (t >= 0).float()
    elif random_phase:
        cycles = cycles + torch.rand(n, 1, device=device).double()
    # the fraction keeps the phase exact (x - floor(x): ONNX has no frac; equal for x >= 0,
    # and negative times are silenced by `known`)
    # sin / cos in float64, rounded once (as note_clock: the torch-free twin agrees bit for bit)
    phase = 2 * math.pi * (cycles - torch.floor(cycles))
    return torch.stack([torch.sin(phase).float() * known, torch.cos(phase).float() * known],
                       dim=1)


def noisy_history(history: Tensor, input_noise: float) -> Tensor:
    """Teacher-forced input history ``[B, T]`` plus Gaussian noise whose std is drawn per
    window uniformly in ``[0, input_noise]`` x the window's RMS, clamped to [-1, 1] (FFTNet's
    noise injection; the targets stay clean). ``input_noise`` 0 returns ``history`` as is."""
    if input_noise <= 0:
        return history
    rms = history.pow(2).mean(dim=-1, keepdim=True).sqrt()
    scale = input_noise * rms * torch.rand_like(rms)
    return (history + scale * torch.randn_like(history)).clamp(-1.0, 1.0)
