"""Frame-rate controls -> sample-rate signals by overlapping windows (DDSP's upsampling).

Frame ``i`` is centred at sample ``i * hop``. ``'window'``: each frame is spread by a Hann
window of ``2 * hop`` samples centred on it and the windows are overlap-added; two neighbouring
windows sum to exactly one, so sample ``i * hop + d`` (``0 <= d < hop``) is
``w(d) * x[i] + (1 - w(d)) * x[i + 1]`` with ``w(d) = (1 + cos(pi d / hop)) / 2``, a smooth
blend of its two nearest frames. ``'linear'`` uses ``w(d) = 1 - d / hop`` instead (piecewise
linear between frame centres; f0 and hence phase). After the last centre the last frame holds.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from waveloom.errors import ConfigError

METHODS = ("window", "linear")


def blend_weights(hop: int, method: str, like: Tensor) -> Tensor:
    """``w [hop]``: the weight of frame ``i`` at sample ``i * hop + d`` (frame ``i + 1`` gets
    ``1 - w``), for ``method`` 'window' (Hann overlap-add) or 'linear'. Cached (read-only):
    the streaming synth asks for it on every block."""
    if method not in METHODS:
        raise ConfigError(f"upsample method {method!r}: choose one of {', '.join(METHODS)}")
    if int(hop) < 1:
        raise ConfigError(f"hop must be a positive number of samples, got {hop}")
    return _weights(int(hop), method, like.dtype, like.device)


@lru_cache(maxsize=32)
def _weights(hop: int, method: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    d = torch.arange(hop, dtype=torch.float64)
    w = 0.5 * (1.0 + torch.cos(math.pi * d / hop)) if method == "window" else 1.0 - d / hop
    return w.to(dtype=dtype, device=device)


def next_frames(x: Tensor, last: Tensor | None = None) -> Tensor:
    """``x [B, F, ...]`` shifted one frame left: frame ``i`` -> ``x[i + 1]``; the final entry
    is ``last [B, ...]`` (the look-ahead frame) or, offline, ``x[F - 1]`` held."""
    tail = x[:, -1:] if last is None else last.unsqueeze(1)
    return torch.cat([x[:, 1:], tail], dim=1)


def upsample_frames(x: Tensor, hop: int, method: str = "window") -> Tensor:
    """``x [B, F, C]`` at the frame rate -> ``[B, F * hop, C]`` at the sample rate.

    Differentiable in ``x``; see the module docstring for the exact blend.
    """
    if x.ndim != 3:
        raise ConfigError(f"upsample_frames expects [B, F, C] frames, got shape {tuple(x.shape)}")
    w = blend_weights(hop, method, x)[None, None, :, None]  # [1, 1, hop, 1]
    out = x.unsqueeze(2) * w + next_frames(x).unsqueeze(2) * (1.0 - w)  # [B, F, hop, C]
    return out.reshape(x.shape[0], x.shape[1] * hop, x.shape[2])
