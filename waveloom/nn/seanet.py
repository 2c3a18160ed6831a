"""SEANet-style causal convolutional encoder and decoder (the SoundStream / EnCodec codec body).

::

    encoder: audio [B, 1, T]
      -> causal conv k7 (C)
      -> for stride s in strides: residual units (dilations 1, 3, 9), ELU,
                                  causal conv k=2s stride s (channels doubled)
      -> ELU, causal conv k7 (dim)                       -> latents [B, dim, T / prod(strides)]
    decoder: the mirror image, transposed convs k=2s stride s (channels halved), -> tanh audio

Every conv is causal (left padding only; the transposed convs drop the samples they would
place after the input's end), so frame ``j`` depends on samples before ``(j + 1) * hop`` alone
and a decoded sample on codes up to its own frame: what streaming in chunks needs. Weight norm
on every conv, as in both papers. Strides [2, 4, 5, 8] at 16 kHz give 50 frames a second.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm


class StridedCausalConv(nn.Module):
    """Conv1d ``[B, C_in, T] -> [B, C_out, ceil(T / stride)]`` padded on the left only."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(c_in, c_out, kernel, stride=stride, dilation=dilation))
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.left = (kernel - 1) * dilation - (stride - 1)

    def forward(self, x: Tensor) -> Tensor:
        extra = (-x.shape[-1]) % self.stride  # pad T up to whole strides (on the right: zeros
        return self.conv(F.pad(x, (max(self.left, 0), extra)))  # the future never sees)


class CausalTransposedConv(nn.Module):
    """ConvTranspose1d ``[B, C_in, F] -> [B, C_out, F * stride]``: the last ``kernel - stride``
    outputs (which need frames after the input) are dropped, so it stays causal."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv = weight_norm(nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride=stride))
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)[..., : x.shape[-1] * self.stride]


class ResidualUnit(nn.Module):
    """ELU, causal conv k3 at ``dilation``, ELU, conv k1, added to the input."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.block = nn.Sequential(
            nn.ELU(), StridedCausalConv(channels, channels // 2, 3, dilation=dilation),
            nn.ELU(), StridedCausalConv(channels // 2, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class SEANetEncoder(nn.Module):
    """Audio ``[B, 1, T]`` -> latents ``[B, dim, ceil(T / hop)]`` (see the module docstring)."""

    def __init__(self, channels: int, dim: int, strides: Sequence[int],
                 dilations: Sequence[int] = (1, 3, 9), bound: float = 0.0) -> None:
        super().__init__()
        self.bound = float(bound)  # > 0: latents = bound x tanh(latents / bound)
        layers: list[nn.Module] = [StridedCausalConv(1, channels, 7)]
        ch = channels
        for s in strides:
            layers += [ResidualUnit(ch, d) for d in dilations]
            layers += [nn.ELU(), StridedCausalConv(ch, 2 * ch, 2 * s, stride=s)]
            ch *= 2
        layers += [nn.ELU(), StridedCausalConv(ch, dim, 7)]
        self.net = nn.Sequential(*layers)

    def forward(self, audio: Tensor) -> Tensor:
        out = self.net(audio)
        if self.bound > 0:  # a soft bound on the latents' scale (elementwise: causal)
            out = self.bound * torch.tanh(out / self.bound)
        return out

    def receptive_field(self) -> int:
        """Input samples one latent frame reads (its own hop of samples and those before)."""
        rf, jump = 1, 1
        for layer in self.net:
            if isinstance(layer, ResidualUnit):
                rf += 2 * layer.dilation * jump
            elif isinstance(layer, StridedCausalConv):
                rf += (layer.kernel - 1) * layer.dilation * jump + (layer.stride - 1) * jump
                jump *= layer.stride
        return rf


class SEANetDecoder(nn.Module):
    """Latents ``[B, dim, F]`` -> audio ``[B, 1, F * hop]`` in (-1, 1), the encoder's mirror."""

    def __init__(self, channels: int, dim: int, strides: Sequence[int],
                 dilations: Sequence[int] = (1, 3, 9)) -> None:
        super().__init__()
        ch = channels * 2 ** len(strides)
        layers: list[nn.Module] = [StridedCausalConv(dim, ch, 7)]
        for s in reversed(list(strides)):
            layers += [nn.ELU(), CausalTransposedConv(ch, ch // 2, s)]
            ch //= 2
            layers += [ResidualUnit(ch, d) for d in dilations]
        layers += [nn.ELU(), StridedCausalConv(ch, 1, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, latents: Tensor) -> Tensor:
        return self.net(latents)

    def receptive_field(self) -> int:
        """Latent frames one output sample reads (its own frame and those before)."""
        rf = 1  # in the units of the layer being walked, from the output back
        for layer in reversed(self.net):
            if isinstance(layer, ResidualUnit):
                rf += 2 * layer.dilation
            elif isinstance(layer, StridedCausalConv):
                rf += (layer.kernel - 1) * layer.dilation
            elif isinstance(layer, CausalTransposedConv):
                rf = -(-rf // layer.stride) + 1
        return rf
