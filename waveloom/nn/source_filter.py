"""The filter half of a source-filter synthesiser: sources shaped bin by bin, one inverse STFT.

Two models make audio this way: MelGAN's iSTFT generator (:mod:`waveloom.models.melgan_istft`,
from a mel) and GANSynth's source-filter output (:mod:`waveloom.nn.envelope_synth`, from a
generated envelope). Both scale the STFT of a pulse train (:func:`waveloom.nn.excitation.
pulse_train`) and of white noise by per-bin magnitudes and invert the sum; the levels below
turn "a partial peaking at m" and "noise of mean magnitude m" into those gains.
"""

from __future__ import annotations

import math

from torch import Tensor

from waveloom.audio.spectral import istft, stft
from waveloom.nn.excitation import SINE_AMPLITUDE


def source_log_peak(n_fft: int) -> float:
    """Natural log of one source partial's STFT peak: a sine of amplitude ``a`` peaks at
    ``a n_fft / 4`` in a periodic-Hann frame of ``n_fft`` (``a`` = :data:`SINE_AMPLITUDE`)."""
    return math.log(SINE_AMPLITUDE * n_fft / 4)


def noise_log_level(n_fft: int) -> float:
    """Natural log of unit white noise's mean STFT magnitude per bin in a periodic-Hann frame
    of ``n_fft``: ``sqrt(3 n_fft / 8) sqrt(pi) / 2`` (a Rayleigh mean)."""
    return math.log(math.sqrt(3 * n_fft / 8) * math.sqrt(math.pi) / 2)


def shape_and_invert(gain: Tensor, source_spec: Tensor, level: Tensor, noise: Tensor,
                     n_fft: int, hop: int, length: int) -> Tensor:
    """``istft(gain * source_spec + level * stft(noise))``: ``gain``, ``level`` real
    ``[B, n_fft / 2 + 1, F]``; ``source_spec`` the complex STFT of the source, same shape;
    ``noise`` white noise ``[B, T]`` -> audio ``[B, length]``."""
    spec = gain * source_spec + level * stft(noise, n_fft, hop)
    return istft(spec, hop, length=length)
