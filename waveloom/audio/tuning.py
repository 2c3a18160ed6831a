"""Equal temperament: MIDI pitch numbers to frequencies (A4 = MIDI 69 = 440 Hz)."""

from __future__ import annotations

import torch
from torch import Tensor

A4_HZ = 440.0
A4_MIDI = 69.0


def midi_hz(midi: Tensor) -> Tensor:
    """MIDI pitches (any float dtype, kept; fractional pitches allowed) -> frequencies in Hz."""
    return A4_HZ * torch.pow(2.0, (midi - A4_MIDI) / 12.0)
