"""The parts of ``sampling_plan`` every WaveNet-decoded family shares.

A sampling engine (:mod:`waveloom.sampling`) needs a :class:`~waveloom.sampling.incremental.
SamplingPlan`: the history codes, a global vector and sample-rate local features. How a family
makes its local features differs (a mel, a piano roll, an upsampled autoencoder code), but the
history and the labels are resolved the same way everywhere, so they are written once here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from waveloom.audio.mulaw import quantize
from waveloom.errors import ConfigError
from waveloom.nn.conditioning import GlobalConditioning


def history_prefix(
    prime: Any, n: int, context: int, device: torch.device | str
) -> tuple[Tensor, int, int]:
    """The engine's history: ``(prefix [n, context] long, prime_length, kept)``.

    ``prime`` ([n, P] or [P] float audio, or None) is quantised and left-padded with silence to
    ``context`` codes, so the network always sees a full, in-distribution receptive field; only
    its last ``kept = min(P, context)`` samples matter. ``prime_length`` is ``P`` (0 without a
    prime): where the output starts on the caller's timeline of local features.
    """
    user_p = 0
    if prime is not None:
        prime = torch.as_tensor(prime, dtype=torch.float32, device=device)
        if prime.dim() == 1:
            prime = prime.unsqueeze(0)
        if prime.dim() != 2 or prime.shape[0] not in (1, n):
            raise ConfigError(
                f"cond['prime'] has shape {tuple(prime.shape)}; expected [{n}, samples]"
            )
        prime = prime.expand(n, -1)
        user_p = prime.shape[-1]
    kept = min(user_p, context)
    silence = torch.full((n, context - kept), int(quantize(torch.zeros(()))), device=device)
    parts = [silence]
    if kept:
        parts.append(quantize(prime[:, user_p - kept :]))
    return torch.cat(parts, dim=1).long(), user_p, kept


def global_vector(
    global_cond: GlobalConditioning | None,
    cond: dict[str, Any],
    n: int,
    device: torch.device | str,
) -> Tensor | None:
    """``cond``'s pitch/instrument labels -> the [n, G] global vector (None if unconditioned).

    Labels are checked first (one-line :class:`ConfigError` for an out-of-range label or a
    count that is neither 1 nor ``n``); a missing label is "unknown" (-1). Label dropout is
    never applied: this is for sampling.
    """
    if global_cond is None:
        return None
    tensors = {
        k: None if cond.get(k) is None else torch.as_tensor(cond[k]).long().reshape(-1)
        for k in ("pitch", "instrument")
    }
    problem = global_cond.check(tensors["pitch"], tensors["instrument"])
    if problem:
        raise ConfigError(f"cond: {problem}")
    for k, v in tensors.items():
        if v is not None and v.numel() not in (1, n):
            raise ConfigError(f"cond[{k!r}] has {v.numel()} values for n={n} samples")
    moved = {k: None if v is None else v.to(device) for k, v in tensors.items()}
    return global_cond(moved["pitch"], moved["instrument"], batch=n, dropout=False)
