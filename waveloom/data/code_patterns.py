"""How a token LM reads K parallel codebook streams (MusicGen, Copet et al. 2023, sec. 2.2).

A codec gives codes ``[B, K, T]``: K codebooks per frame. A decoder-only LM predicts one
*step* at a time; the pattern says what a step holds:

* ``flattened``: every code its own step, frame by frame (``[B, 1, K * T]``): exact
  autoregression over all K x T codes, K times the steps;
* ``parallel``: a step is a whole frame (``[B, K, T]``), all K codes predicted together from
  the frames before: T steps, but codebook k of a frame cannot see codebook k-1 of it;
* ``delay``: codebook k is delayed by k steps (``[B, K, T + K - 1]``): a step still predicts K
  codes at once, yet codebook k of frame t comes one step after codebook k-1 of the same frame,
  so it sees it. T + K - 1 steps; MusicGen's choice.

Positions a pattern leaves empty (the delay's ramps) hold ``pad``, an id outside the codebook.
:func:`revert` undoes :func:`apply` exactly (tested for every pattern).
"""

from __future__ import annotations

import torch
from torch import Tensor

from waveloom.errors import ConfigError

PATTERNS = ("flattened", "parallel", "delay")


def _check(pattern: str) -> None:
    if pattern not in PATTERNS:
        raise ConfigError(f"code pattern {pattern!r}: use one of {', '.join(PATTERNS)}")


def steps(pattern: str, k: int, frames: int) -> int:
    """Steps the LM takes for ``frames`` frames of ``k`` codebooks."""
    _check(pattern)
    return {"flattened": k * frames, "parallel": frames, "delay": frames + k - 1}[pattern]


def apply(codes: Tensor, pattern: str, pad: int) -> Tensor:
    """Codes ``[B, K, T]`` -> the pattern's tokens (see the module docstring)."""
    _check(pattern)
    if codes.dim() != 3:
        raise ConfigError(f"codes of shape {tuple(codes.shape)}: expected [B, K, T]")
    b, k, t = codes.shape
    if pattern == "parallel":
        return codes.clone()
    if pattern == "flattened":
        return codes.transpose(1, 2).reshape(b, 1, k * t)
    out = codes.new_full((b, k, t + k - 1), pad)
    for q in range(k):
        out[:, q, q: q + t] = codes[:, q]
    return out


def revert(tokens: Tensor, pattern: str, k: int) -> Tensor:
    """The pattern's tokens -> codes ``[B, K, T]`` (the inverse of :func:`apply`)."""
    _check(pattern)
    if pattern == "parallel":
        return tokens.clone()
    if pattern == "flattened":
        b, _, n = tokens.shape
        if n % k:
            raise ConfigError(f"{n} flattened steps are not whole frames of {k} codebooks")
        return tokens.reshape(b, n // k, k).transpose(1, 2)
    b, _, s = tokens.shape
    t = s - k + 1
    if t < 1:
        raise ConfigError(f"{s} delayed steps hold no whole frame of {k} codebooks")
    return torch.stack([tokens[:, q, q: q + t] for q in range(k)], 1)
