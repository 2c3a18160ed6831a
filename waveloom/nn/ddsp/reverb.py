"""Trainable reverb: a learned impulse response applied by FFT convolution, with a dry/wet mix.

The impulse response (``seconds * sample_rate`` taps) is a free parameter, initialised as
exponentially decaying white noise (-60 dB after ``seconds``, i.e. RT60 = the length) at a
modest level, so training starts from a plausible small room rather than from silence. The
output is ``(1 - mix) * dry + mix * (audio * ir)`` with ``mix = sigmoid(mix_logit)`` (learned,
starting at ``wet``), and the convolution tail past ``T`` is cut: the result
has the input's length. :class:`waveloom.nn.ddsp.stream.SynthStream` carries that tail across
blocks instead.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from waveloom.errors import ConfigError


def fft_size(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n`` with ``b <= 2``: such FFTs are about as fast per sample
    as powers of two (high powers of 3 are not, measured), and the next power of two can be
    almost twice as long (10 s + a 1 s IR at 16 kHz: 175999 -> 180000, 2.5x faster than 262144
    on one core)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        for p35 in (p5, 3 * p5, 9 * p5):
            best = min(best, p35 << max(0, (-(-n // p35) - 1).bit_length()))
        p5 *= 5
    return best


def fft_convolve(audio: Tensor, ir: Tensor) -> Tensor:
    """Full linear convolution ``[B, T] * [L] -> [B, T + L - 1]`` by one real FFT."""
    n_out = audio.shape[-1] + ir.shape[-1] - 1
    n_fft = fft_size(n_out)
    spec = torch.fft.rfft(audio, n=n_fft) * torch.fft.rfft(ir.to(audio.dtype), n=n_fft)
    return torch.fft.irfft(spec, n=n_fft)[..., :n_out]


class Reverb(nn.Module):
    """A learned impulse response of ``seconds`` at ``sample_rate``, plus a learned dry/wet mix.

    ``forward(audio [B, T]) -> [B, T]``. ``seed`` fixes the initial impulse response (so a model
    built twice from one config starts identical); ``wet`` is the initial mix in ``(0, 1)``.
    """

    def __init__(self, sample_rate: int, seconds: float = 1.0, seed: int = 0, wet: float = 0.2):
        super().__init__()
        if sample_rate <= 0 or not 0.0 < seconds <= 10.0:
            raise ConfigError(f"Reverb: sample_rate {sample_rate} and seconds {seconds} must be "
                              "positive (seconds at most 10)")
        if not 0.0 < wet < 1.0:
            raise ConfigError(f"Reverb: wet={wet} must be strictly between 0 and 1")
        n = max(1, int(round(seconds * sample_rate)))
        # built on the CPU explicitly: under ``torch.device("meta")`` (the parameter count before
        # a build) arange would go through torch's meta decompositions, which import
        # torch._dynamo (seconds); the draw is from a CPU generator either way
        gen = torch.Generator().manual_seed(seed)
        t = torch.arange(n, dtype=torch.float32, device="cpu") / sample_rate
        decay = torch.exp(-math.log(1000.0) * t / seconds)  # -60 dB at the end
        ir = (torch.rand(n, generator=gen, device="cpu") * 2 - 1) * decay * 0.1
        self.sample_rate = int(sample_rate)
        self.ir = nn.Parameter(ir)
        self.mix_logit = nn.Parameter(torch.tensor(math.log(wet / (1 - wet))))

    def mix(self) -> Tensor:
        """The wet fraction in ``(0, 1)``."""
        return torch.sigmoid(self.mix_logit)

    def wet_full(self, audio: Tensor) -> Tensor:
        """The whole reverberated signal ``[B, T + L - 1]`` (tail included), not yet mixed."""
        return fft_convolve(audio, self.ir)

    def forward(self, audio: Tensor) -> Tensor:
        if audio.ndim != 2:
            raise ConfigError(f"Reverb expects audio [B, T], got shape {tuple(audio.shape)}")
        mix = self.mix()
        wet = self.wet_full(audio)[:, : audio.shape[-1]]
        return (1.0 - mix) * audio + mix * wet
