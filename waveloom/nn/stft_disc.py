"""Multi-scale complex-STFT discriminator (EnCodec, Défossez et al. 2022, sec. 3.4).

Each scale takes the STFT of the waveform at one window size, real and imaginary parts as two
channels of an image ``[B, 2, frames, bins]``, and runs 2-D convs over it: a k(3, 9) conv, then
convs dilated 1, 2, 4 in time and strided 2 in frequency, then two k3 convs down to one score
map. Working on the complex STFT lets it judge phase as well as magnitude, which the codec's
spectral losses do not see. Each scale returns ``(scores [B, N], features, None)``, the
critic output :class:`waveloom.models.adversarial.Adversarial` expects.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm


def _conv(c_in: int, c_out: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
          dilation: tuple[int, int] = (1, 1)) -> nn.Module:
    padding = tuple((k - 1) * d // 2 for k, d in zip(kernel, dilation))
    return weight_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation))


class STFTDiscriminator(nn.Module):
    """One scale: waveform ``[B, 1, T]`` -> (scores ``[B, N]``, features, None)."""

    def __init__(self, n_fft: int, channels: int, dilations: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [_conv(2, channels, (3, 9))]
        layers += [_conv(channels, channels, (3, 9), (1, 2), (d, 1)) for d in dilations]
        layers += [_conv(channels, channels, (3, 3))]
        self.layers = nn.ModuleList(layers)
        self.act = nn.LeakyReLU(0.2)
        self.out = _conv(channels, 1, (3, 3))

    def forward(self, audio: Tensor) -> tuple[Tensor, list[Tensor], None]:
        spec = torch.stft(audio[:, 0], self.n_fft, self.hop, window=self.window,
                          return_complex=True, normalized=True)  # [B, bins, frames]
        x = torch.stack([spec.real, spec.imag], 1).transpose(2, 3)  # [B, 2, frames, bins]
        features = []
        for layer in self.layers:
            x = self.act(layer(x))
            features.append(x)
        return self.out(x).flatten(1), features, None


class MultiScaleSTFTDiscriminator(nn.Module):
    """One :class:`STFTDiscriminator` per window size; a list of their outputs."""

    def __init__(self, fft_sizes: Sequence[int], channels: int) -> None:
        super().__init__()
        self.scales = nn.ModuleList(STFTDiscriminator(n, channels) for n in fft_sizes)

    def forward(self, audio: Tensor) -> list[tuple[Tensor, list[Tensor], None]]:
        return [d(audio) for d in self.scales]
