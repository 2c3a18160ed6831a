"""Relative attention (waveloom.nn.relative_attention): skewing vs the naive O(L^2 D) gather,
and the KV-cache step vs the full causal pass."""

from __future__ import annotations

import math

import pytest
import torch

from waveloom.errors import ConfigError
from waveloom.nn.relative_attention import MusicTransformerBlock, RelativeSelfAttention, skew


def naive(attn: RelativeSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Shaw et al.'s form, written out: an [L, L, Dh] table of e_{clip(j-i)} for every (i, j)."""
    b, length, _ = x.shape
    h, dh, m = attn.n_heads, attn.d_head, attn.max_distance
    q, k, v = attn.qkv(x).view(b, length, 3, h, dh).permute(2, 0, 3, 1, 4)
    i = torch.arange(length).view(-1, 1)
    j = torch.arange(length).view(1, -1)
    row = (j - i).clamp(-(m - 1), 0) + (m - 1)  # [L, L] row of attn.rel
    table = attn.rel[:, row]  # [H, L, L, Dh]
    rel = torch.einsum("bhid,hijd->bhij", q, table)
    logits = (q @ k.transpose(-1, -2) + rel) / math.sqrt(dh)
    logits = logits.masked_fill(j > i, float("-inf"))
    y = torch.softmax(logits, -1) @ v
    return attn.out(y.transpose(1, 2).reshape(b, length, -1))


@pytest.mark.parametrize(
    "length, heads, batch, max_distance",
    [(1, 1, 1, 4), (5, 2, 3, 16), (16, 4, 2, 16), (12, 2, 1, 5), (33, 8, 2, 64), (40, 1, 2, 7)],
)
def test_skewing_matches_naive(length, heads, batch, max_distance):
    torch.manual_seed(length * 100 + heads)
    attn = RelativeSelfAttention(8 * heads, heads, max_distance).double()
    x = torch.randn(batch, length, 8 * heads, dtype=torch.float64)
    torch.testing.assert_close(attn(x), naive(attn, x), atol=1e-5, rtol=0)


def test_skew_moves_distances_to_keys():
    length = 6
    # Column k holds distance k - (L-1); after skewing, (i, j) must hold j - i for j <= i.
    rel = (torch.arange(length) - (length - 1)).float().expand(length, length)
    out = skew(rel)
    for i in range(length):
        for j in range(i + 1):
            assert out[i, j] == j - i


@pytest.mark.parametrize("max_distance", [4, 64])
def test_step_by_step_equals_full_pass(max_distance):
    torch.manual_seed(0)
    attn = RelativeSelfAttention(32, 4, max_distance).double().eval()
    x = torch.randn(2, 20, 32, dtype=torch.float64)
    full = attn(x)
    cache = attn.empty_cache(2, 3, x)  # small on purpose: the cache must grow
    steps = torch.cat([attn.step(x[:, t : t + 1], cache) for t in range(20)], 1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=0)
    assert cache.length == 20


def test_block_prime_then_steps_equals_full_pass():
    torch.manual_seed(1)
    block = MusicTransformerBlock(24, 3, 16).double().eval()
    x = torch.randn(3, 25, 24, dtype=torch.float64)
    full = block(x)
    head, cache = block.prime(x[:, :9])
    torch.testing.assert_close(head, full[:, :9], atol=1e-5, rtol=0)
    rest = torch.cat([block.step(x[:, t : t + 1], cache) for t in range(9, 25)], 1)
    torch.testing.assert_close(rest, full[:, 9:], atol=1e-5, rtol=0)


def test_float32_agrees_and_gradients_flow():
    torch.manual_seed(2)
    block = MusicTransformerBlock(32, 4, 32)
    x = torch.randn(2, 30, 32, requires_grad=True)
    y = block(x)
    torch.testing.assert_close(y[:, :10], block(x[:, :10]), atol=1e-5, rtol=0)  # causal
    y.square().mean().backward()
    assert block.attn.rel.grad is not None and block.attn.rel.grad.abs().sum() > 0


def test_bad_shapes_are_config_errors():
    with pytest.raises(ConfigError, match="n_heads"):
        RelativeSelfAttention(30, 4, 8)
    with pytest.raises(ConfigError, match="max_distance"):
        RelativeSelfAttention(32, 4, 0)
