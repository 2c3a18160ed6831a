"""The whole DDSP signal path offline: harmonic + filtered noise, then the reverb.

This is the reference that :class:`waveloom.nn.ddsp.stream.SynthStream` reproduces block by
block, and what a model calls on its decoded controls.
"""

from __future__ import annotations

import torch
from torch import Tensor

from waveloom.nn.ddsp.harmonic import harmonic_synth
from waveloom.nn.ddsp.noise import filtered_noise
from waveloom.nn.ddsp.reverb import Reverb


def synthesize(f0_hz: Tensor, amplitude: Tensor, distribution: Tensor, magnitudes: Tensor,
               sample_rate: int, hop: int, reverb: Reverb | None = None,
               noise: Tensor | None = None, generator: torch.Generator | None = None,
               phase0: Tensor | None = None) -> Tensor:
    """Controls ``[B, F]``, ``[B, F]``, ``[B, F, K]``, ``[B, F, N]`` -> audio ``[B, F*hop]``.

    ``(harmonic_synth + filtered_noise)`` then ``reverb`` if given; ``noise``/``generator`` as in
    :func:`filtered_noise`.
    """
    harmonic, _ = harmonic_synth(f0_hz, amplitude, distribution, sample_rate, hop, phase0)
    dry = harmonic + filtered_noise(magnitudes, hop, noise, generator).to(harmonic.dtype)
    return dry if reverb is None else reverb(dry)
