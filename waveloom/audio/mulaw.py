"""The one mu-law implementation (ITU-T G.711 style companding, mu=255, 256 levels).

WaveNet models 8-bit mu-law samples with a 256-way softmax. Everything here works on numpy arrays
and torch tensors alike (dispatching on the input type), so the data pipeline, the models and the
evaluation share one definition and cannot drift apart.

    encode:   f(x) = sign(x) * ln(1 + mu |x|) / ln(1 + mu),    x in [-1, 1]
    decode:   f^-1(y) = sign(y) * ((1 + mu)^|y| - 1) / mu
    quantise: q = floor((f(x) + 1) / 2 * mu + 0.5)  in {0, ..., mu}
    dequantise: x = f^-1(2 q / mu - 1)
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

MU = 255
LEVELS = MU + 1

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _is_torch(x) -> bool:
    return isinstance(x, torch.Tensor)


def mulaw_encode(x: ArrayT, mu: int = MU) -> ArrayT:
    """Compand ``x`` in [-1, 1] to [-1, 1] (continuous, no quantisation)."""
    if _is_torch(x):
        x = x.clamp(-1.0, 1.0)
        return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    x = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    return (np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)).astype(np.float32)


def mulaw_decode(y: ArrayT, mu: int = MU) -> ArrayT:
    """Inverse of :func:`mulaw_encode`."""
    if _is_torch(y):
        y = y.clamp(-1.0, 1.0)
        return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu
    y = np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0)
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def quantize(x: ArrayT, mu: int = MU) -> ArrayT:
    """Audio in [-1, 1] -> integer mu-law codes in [0, mu] (int64 tensor / uint8 array)."""
    y = mulaw_encode(x, mu)
    if _is_torch(y):
        return torch.floor((y + 1.0) / 2.0 * mu + 0.5).long().clamp_(0, mu)
    q = np.floor((y + 1.0) / 2.0 * mu + 0.5)
    return np.clip(q, 0, mu).astype(np.uint8 if mu < 256 else np.int64)


def dequantize(q: ArrayT, mu: int = MU) -> ArrayT:
    """Integer codes in [0, mu] -> audio in [-1, 1] at the companded value ``2 q / mu - 1``.

    That is the centre of each interior code's bin; codes 0 and mu own half bins (the companded
    range ends at -1 and 1) and decode to their outer edges, -1 and 1.

    ``(2 q - mu) / mu`` rather than ``2 q / mu - 1``: the numerator is an exact integer, so codes
    mirrored about the centre (127 and 128) decode to exactly opposite values instead of
    differing by float32 cancellation error (1.5e-5 relative near zero).
    """
    if _is_torch(q):
        return mulaw_decode((2.0 * q.float() - mu) / mu, mu)
    return mulaw_decode((2.0 * np.asarray(q, dtype=np.float32) - mu) / mu, mu)
