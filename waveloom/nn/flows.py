"""Invertible layers for normalising flows over audio (WaveGlow, Prenger et al. 2019).

Each layer maps ``x [B, C, T]`` to ``y`` of the same shape and returns ``log|det dy/dx|``
per example ``[B]``; ``inverse`` undoes ``forward`` exactly (to float rounding; tested to 1e-5,
and the log-determinants against autograd's Jacobian on tiny sizes).

* :class:`InvertibleConv1x1`: a learnt channel mixing (Glow, Kingma & Dhariwal 2018) in the LU
  parametrisation ``W = P L (U + diag(s))`` with ``P`` a fixed permutation, ``L`` unit lower
  triangular and ``U`` strictly upper triangular, so ``log|det W| = sum log|s|`` costs O(C)
  and ``W`` never becomes singular by drift; per example the log-det is ``T x`` that.
* :class:`AffineCoupling`: the first half of the channels passes unchanged and, through a
  small non-causal WaveNet (the gated residual layers DiffWave uses,
  :class:`waveloom.nn.diffwave.DiffWaveLayer`, without a diffusion step) that also reads the
  conditioning, gives a log-scale and a shift for the second half: ``y_b = x_b exp(log_s) +
  t``. Log-det: ``sum log_s``. The network's last conv starts at zero: the identity at
  initialisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.nn.diffwave import DiffWaveLayer


def squeeze(audio: Tensor, group: int) -> Tensor:
    """``[B, T]`` (T a multiple of ``group``) -> ``[B, group, T / group]``: sample
    ``k * group + g`` goes to channel ``g`` of step ``k``."""
    b, t = audio.shape
    return audio.view(b, t // group, group).transpose(1, 2)


def unsqueeze(x: Tensor) -> Tensor:
    """The inverse of :func:`squeeze`: ``[B, G, T']`` -> ``[B, G x T']``."""
    return x.transpose(1, 2).reshape(x.shape[0], -1)


class InvertibleConv1x1(nn.Module):
    """A 1x1 conv with an LU-parametrised, always invertible weight (see the module doc)."""

    def __init__(self, channels: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=g))
        p, lower, upper = torch.linalg.lu(q)
        self.register_buffer("perm", p)
        self.register_buffer("sign", torch.sign(torch.diagonal(upper)))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.diagonal(upper).abs()))
        self.register_buffer("eye", torch.eye(channels))
        self.register_buffer("mask_u", torch.triu(torch.ones(channels, channels), 1))

    def weight(self) -> Tensor:
        lower = self.lower * self.mask_u.T + self.eye
        upper = self.upper * self.mask_u + torch.diag(self.sign * self.log_s.exp())
        return self.perm @ lower @ upper

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = F.conv1d(x, self.weight()[..., None])
        logdet = self.log_s.sum() * x.shape[-1]
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return F.conv1d(y, torch.linalg.inv(self.weight().double()).to(y.dtype)[..., None])


class AffineCoupling(nn.Module):
    """``y = [x_a, x_b exp(log_s(x_a, c)) + t(x_a, c)]`` (see the module docstring)."""

    def __init__(self, channels: int, hidden: int, layers: int, cond_channels: int) -> None:
        super().__init__()
        self.half = channels // 2
        self.start = nn.Conv1d(self.half, hidden, 1)
        self.layers = nn.ModuleList(
            DiffWaveLayer(hidden, 2 ** i, cond_channels, with_step=False) for i in range(layers))
        self.end = nn.Conv1d(hidden, 2 * (channels - self.half), 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)

    def _scale_shift(self, xa: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        h = self.start(xa)
        total = torch.zeros_like(h)
        for layer in self.layers:
            h, skip = layer(h, None, cond)
            total = total + skip
        log_s, shift = self.end(total / math.sqrt(len(self.layers))).chunk(2, 1)
        return log_s, shift

    def forward(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        xa, xb = x[:, : self.half], x[:, self.half:]
        log_s, shift = self._scale_shift(xa, cond)
        return torch.cat([xa, xb * log_s.exp() + shift], 1), log_s.sum((1, 2))

    def inverse(self, y: Tensor, cond: Tensor | None) -> Tensor:
        ya, yb = y[:, : self.half], y[:, self.half:]
        log_s, shift = self._scale_shift(ya, cond)
        return torch.cat([ya, (yb - shift) * torch.exp(-log_s)], 1)
