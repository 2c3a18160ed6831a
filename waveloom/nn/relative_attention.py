"""Causal self-attention with learned relative positions (Shaw et al. 2018), skewed as in the
Music Transformer (Huang et al. 2018), plus a KV cache for sampling one event at a time.

Why relative: music repeats motifs at every position, so what a query should look for is "the
note 4 beats back", not "the note at index 517". Each head learns one embedding per relative
distance d = j - i in [-(M-1), 0] (``max_distance`` = M; farther keys share the embedding of
distance -(M-1), Shaw's clipping) and adds ``q_i . e_{j-i}`` to the logit of key j.

Why skewing: gathering ``e_{j-i}`` for every (i, j) costs an ``[L, L, D]`` tensor. Instead
``Q E_r^T`` is computed once (``[L, L]``, column k is distance k - (L-1)); padding one zero
column in front, viewing the ``[L, L+1]`` block as ``[L+1, L]`` and dropping the first row
moves entry (i, j - i + L - 1) to (i, j) for every j <= i. The upper triangle holds garbage
that the causal mask removes. Memory is O(L D + L^2) per head.

Shapes: B batch, L positions, D = ``d_model``, H heads, Dh = D / H.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from waveloom.errors import ConfigError


@dataclass
class KVCache:
    """Keys and values of the positions seen so far, ``[B, H, capacity, Dh]`` each, preallocated
    so a step writes one slot instead of copying the whole past; ``length`` slots are filled."""

    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Add ``[B, H, n, Dh]`` keys and values (grows the buffers by doubling when full)."""
        n = k.shape[2]
        if self.length + n > self.k.shape[2]:
            grow = max(self.k.shape[2], n)
            self.k = torch.cat([self.k, self.k.new_zeros(*self.k.shape[:2], grow, k.shape[3])], 2)
            self.v = torch.cat([self.v, self.v.new_zeros(*self.v.shape[:2], grow, v.shape[3])], 2)
        self.k[:, :, self.length : self.length + n] = k
        self.v[:, :, self.length : self.length + n] = v
        self.length += n

    def keys(self) -> torch.Tensor:
        return self.k[:, :, : self.length]

    def values(self) -> torch.Tensor:
        return self.v[:, :, : self.length]


def skew(rel: torch.Tensor) -> torch.Tensor:
    """``[..., L, L]`` with column k = distance k - (L-1) -> ``[..., L, L]`` with column j = key j
    (valid where j <= i; the rest is to be masked)."""
    *lead, length, _ = rel.shape
    padded = nn.functional.pad(rel, (1, 0))  # [..., L, L+1]
    return padded.reshape(*lead, length + 1, length)[..., 1:, :]


class RelativeSelfAttention(nn.Module):
    """Decoder-only multi-head self-attention with relative position logits.

    ``forward(x)`` is the full causal pass ``[B, L, D] -> [B, L, D]``; ``prime(x)`` does the same
    and returns a :class:`KVCache`; ``step(x_t, cache)`` attends one new position ``[B, 1, D]``
    to the cache, giving what ``forward`` would give at that position.
    """

    def __init__(self, d_model: int, n_heads: int, max_distance: int, dropout: float = 0.0):
        super().__init__()
        if d_model % n_heads:
            raise ConfigError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        if max_distance < 1:
            raise ConfigError(f"max_distance={max_distance}: must be >= 1")
        self.n_heads, self.d_head, self.max_distance = n_heads, d_model // n_heads, max_distance
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        # Row m is distance m - (M-1): the last row is distance 0 (the key itself).
        self.rel = nn.Parameter(torch.randn(n_heads, max_distance, self.d_head) * self.d_head**-0.5)
        self.dropout = nn.Dropout(dropout)

    def rel_rows(self, length: int) -> torch.Tensor:
        """``[H, length, Dh]``: embeddings of distances -(length-1) .. 0 (far ones clipped)."""
        m = self.max_distance
        if length <= m:
            return self.rel[:, m - length :]
        index = torch.arange(m - length, m, device=self.rel.device).clamp_min(0)
        return self.rel[:, index]

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        return q, k, v  # each [B, H, n, Dh]

    def _attend(self, q, k, v, rel_logits, mask) -> torch.Tensor:
        logits = (q @ k.transpose(-1, -2) + rel_logits) / math.sqrt(self.d_head)
        if mask is not None:
            logits = logits.masked_fill(mask, float("-inf"))
        weights = self.dropout(torch.softmax(logits, dim=-1))
        y = weights @ v  # [B, H, n, Dh]
        b, _, n, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, n, -1))

    def _full(self, x: torch.Tensor):
        """Causal pass ``[B, L, D]`` -> (output ``[B, L, D]``, keys, values ``[B, H, L, Dh]``)."""
        length = x.shape[1]
        q, k, v = self._heads(x)
        rel = skew(torch.einsum("bhid,hkd->bhik", q, self.rel_rows(length)))
        mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        return self._attend(q, k, v, rel, mask), k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._full(x)[0]

    def empty_cache(self, batch: int, capacity: int, like: torch.Tensor) -> KVCache:
        """A cache with room for ``capacity`` positions, on ``like``'s device and dtype."""
        shape = (batch, self.n_heads, max(capacity, 1), self.d_head)
        return KVCache(like.new_zeros(shape), like.new_zeros(shape))

    def prime(self, x: torch.Tensor, capacity: int | None = None) -> tuple[torch.Tensor, KVCache]:
        """:meth:`forward` over ``x`` ``[B, L, D]`` that also returns a cache holding its keys and
        values, with room for ``capacity`` positions in all (default 2 L)."""
        y, k, v = self._full(x)
        cache = self.empty_cache(x.shape[0], max(capacity or 2 * x.shape[1], x.shape[1]), x)
        cache.append(k, v)
        return y, cache

    def step(self, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One new position ``[B, 1, D]`` -> ``[B, 1, D]``, appending its key/value to ``cache``."""
        q, k, v = self._heads(x)
        cache.append(k, v)
        # Keys 0..t are at distances -t..0: rel_rows(t + 1) is already in key order.
        rel = torch.einsum("bhid,hkd->bhik", q, self.rel_rows(cache.length))
        return self._attend(q, cache.keys(), cache.values(), rel, None)


class MusicTransformerBlock(nn.Module):
    """Pre-norm decoder block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``, ``[B, L, D]``."""

    def __init__(self, d_model: int, n_heads: int, max_distance: int, d_ff: int | None = None,
                 dropout: float = 0.0, attention_dropout: float = 0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        # Attention-weight dropout draws a mask over [B, H, L, L]: on a CPU that was 20 % of a
        # 512-event step (docs/music_transformer.md), so it is its own, default-off knob.
        self.attn = RelativeSelfAttention(d_model, n_heads, max_distance, attention_dropout)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, d_ff or 4 * d_model), nn.GELU(),
            nn.Linear(d_ff or 4 * d_model, d_model), nn.Dropout(dropout),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))

    def prime(self, x: torch.Tensor, capacity: int | None = None) -> tuple[torch.Tensor, KVCache]:
        """:meth:`forward` that also returns the attention's :class:`KVCache`."""
        y, cache = self.attn.prime(self.norm1(x), capacity)
        x = x + self.drop(y)
        return x + self.mlp(self.norm2(x)), cache

    def step(self, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One new position ``[B, 1, D]`` against ``cache`` (see RelativeSelfAttention.step)."""
        x = x + self.drop(self.attn.step(self.norm1(x), cache))
        return x + self.mlp(self.norm2(x))
