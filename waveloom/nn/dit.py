"""A small Diffusion Transformer (DiT, Peebles & Xie 2023) over a sequence of latent frames.

``out [B, C, F] = DiT(x [B, C, F], c [B, D])``: frames are projected to ``D``, given sinusoidal
positions, run through blocks of self-attention and an MLP whose LayerNorms are modulated by
the conditioning vector ``c`` (adaLN-Zero: per block a linear map of ``c`` gives a shift, a
scale and a gate for each branch, initialised to zero so every block starts as the identity),
then projected back to ``C`` channels (also zero-initialised). Attention is bidirectional: the
whole latent sequence is denoised at once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoid(positions: int, dim: int, device: torch.device) -> Tensor:
    """Transformer positions ``[positions, dim]`` (sin on even, cos on odd channels)."""
    t = torch.arange(positions, device=device, dtype=torch.float32)[:, None]
    freqs = torch.exp(torch.arange(0, dim, 2, device=device) * (-math.log(10000.0) / dim))
    out = torch.zeros(positions, dim, device=device)
    out[:, 0::2] = torch.sin(t * freqs)
    out[:, 1::2] = torch.cos(t * freqs[: dim // 2])
    return out


class DiTBlock(nn.Module):
    """Self-attention and MLP branches, each ``x + gate * f(norm(x) * (1 + scale) + shift)``."""

    def __init__(self, dim: int, heads: int, ff_mult: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(),
                                nn.Linear(ff_mult * dim, dim))
        self.ada = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(c))[:, None].chunk(6, -1)
        h = self.norm1(x) * (1 + scale1) + shift1
        x = x + gate1 * self.attn(h, h, h, need_weights=False)[0]
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.ff(h)


class DiT(nn.Module):
    """The denoiser of the module docstring."""

    def __init__(self, channels: int, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        self.inp = nn.Linear(channels, dim)
        self.blocks = nn.ModuleList(DiTBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.final_ada = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, channels)
        for layer in (self.final_ada, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = self.inp(x.transpose(1, 2))
        h = h + sinusoid(h.shape[1], h.shape[2], h.device)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_ada(F.silu(c))[:, None].chunk(2, -1)
        return self.out(self.norm(h) * (1 + scale) + shift).transpose(1, 2)
