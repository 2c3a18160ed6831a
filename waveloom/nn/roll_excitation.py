"""A polyphonic sine source from a piano roll: the neural-source-filter idea (Wang et al. 2019)
for a score.

A roll-conditioned WaveNet must otherwise invent every sounding note's period from a learned
upsampling of 128 on/off rows, which a small network trained for minutes does not do: it
learnt the roll's timing but rendered mostly noise (docs/compose.md). Given, as two extra
sample-rate channels, the sum over sounding notes of ``value * sin`` and ``value * cos`` of
each note's phase, the network only has to shape a timbre around periods it is handed (the
pitch-conditioned notes WaveNet's ``pitch_excitation`` did the same for one note).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from waveloom.audio.tuning import midi_hz

#: Channels the source adds: the summed sines and the summed cosines.
ROLL_EXCITATION_CHANNELS = 2


def pitch_hz(device: torch.device | None = None) -> Tensor:
    """Equal-tempered frequency in Hz of MIDI pitches 0..127, ``[128]`` (A4 = 69 = 440 Hz)."""
    return midi_hz(torch.arange(128, device=device, dtype=torch.float32))


def roll_excitation(roll: Tensor, hop: int, length: int, sample_rate: int,
                    phases: Tensor | None = None) -> Tensor:
    """Roll ``[B, 128, F]`` (velocity / 127 while a note sounds) -> ``[B, 2, length]``.

    Sample ``t`` reads frame ``t // hop`` (as the roll's own upsampling aligns frames) and
    gets ``sum_p roll[p] sin(2 pi f_p t / sr + phase_p)`` and the same with cos. Pitches at or
    above Nyquist are left out (they would alias). ``phases`` ``[B, 128]`` in radians (training
    draws them at random so only the periods inform); None is phase 0 at sample 0.
    """
    b = roll.shape[0]
    frames = torch.div(torch.arange(length, device=roll.device), hop, rounding_mode="floor")
    frames = frames.clamp_max(roll.shape[-1] - 1)
    held = roll.float()[:, :, frames]  # [B, 128, length]
    hz = pitch_hz(roll.device)
    # Only pitches that sound somewhere and are below Nyquist: a piece uses a few dozen rows.
    audible = (hz < sample_rate / 2) & (roll.amax(dim=(0, 2)) > 0)
    held = held[:, audible]
    omega = (2 * math.pi * hz[audible] / sample_rate)[None, :, None]
    t = torch.arange(length, device=roll.device, dtype=torch.float64)
    # The phase in float64 and wrapped before float32: t * omega reaches 10^5 rad in a minute.
    angle = torch.remainder(omega.double() * t, 2 * math.pi).float().expand(b, -1, -1)
    if phases is not None:
        angle = angle + phases[:, audible, None].float()
    return torch.stack([(held * torch.sin(angle)).sum(1), (held * torch.cos(angle)).sum(1)], 1)
