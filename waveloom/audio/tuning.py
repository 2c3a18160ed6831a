"""Equal temperament: MIDI pitch numbers to frequencies (A4 = MIDI 69 = 440 Hz).

The one place the formula lives: every model, synthesiser and judge that turns a pitch into Hz
calls :func:`midi_hz`, so a change of reference (A4 = 442 Hz) would be one line.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch
from torch import Tensor

A4_HZ = 440.0
A4_MIDI = 69.0


@overload
def midi_hz(midi: Tensor) -> Tensor: ...
@overload
def midi_hz(midi: np.ndarray | float) -> np.ndarray: ...
def midi_hz(midi):
    """MIDI pitches -> frequencies in Hz (fractional pitches allowed). A tensor keeps its dtype
    and device; anything else (an array, a list, a number) is computed in float64 numpy."""
    if isinstance(midi, Tensor):
        return A4_HZ * torch.pow(2.0, (midi - A4_MIDI) / 12.0)
    return A4_HZ * 2.0 ** ((np.asarray(midi, dtype=np.float64) - A4_MIDI) / 12.0)
