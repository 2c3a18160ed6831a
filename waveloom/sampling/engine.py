"""Choosing a sampling engine: ``auto``, ``torch``, ``fast`` or ``cuda-graph``.

* ``torch`` -- :func:`~waveloom.sampling.incremental.sample_incremental`, the plain-torch
  cached reference every other engine is tested against;
* ``fast`` -- :func:`~waveloom.sampling.fast.sample_fast`, the compiled CPU engine (C kernel
  built with the local compiler, or numba), tens of times faster than ``torch`` at batch 1;
* ``cuda-graph`` -- :func:`~waveloom.sampling.cuda_graphs.sample_cuda_graph`, one CUDA-graph
  replay per sample for a model on a GPU;
* ``auto`` -- the fastest one available: ``cuda-graph`` for a model on CUDA, else ``fast``
  when it can run the model (numba imports, a WaveNet stack with a supported head), else
  ``torch``.

All engines draw the same pre-drawn uniforms by inverse CDF, so one seed gives the same codes
on every engine, except where float rounding moves a CDF boundary across a uniform (rare, and
tested as such).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from waveloom.config import ENGINES
from waveloom.errors import ConfigError
from waveloom.nn.wavenet import WaveNetStack
from waveloom.sampling.incremental import sample_incremental


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def resolve_engine(name: str, model: Any) -> str:
    """The engine ``name`` means for ``model``: never 'auto'; raises ConfigError with the
    reason when an explicit choice cannot run it."""
    from waveloom.sampling.fast import unsupported_reason

    if name not in ENGINES:
        raise ConfigError(f"--engine {name!r}: use one of {', '.join(ENGINES)}")
    on_cuda = _device(model).type == "cuda"
    has_stack = isinstance(getattr(model, "stack", None), WaveNetStack)
    if name == "auto":
        if on_cuda:
            return "cuda-graph" if has_stack else "torch"
        return "fast" if unsupported_reason(model) is None else "torch"
    if name == "fast":
        reason = unsupported_reason(model)
        if reason is not None:
            raise ConfigError(f"--engine fast cannot run this model: {reason}; use --engine torch")
    if name == "cuda-graph" and not on_cuda:
        raise ConfigError("--engine cuda-graph needs the model on a GPU: pass --device cuda")
    return name


def sample_codes(
    model: Any,
    n: int,
    length: int,
    cond: dict[str, Any] | None = None,
    *,
    engine: str = "auto",
    temperature: float = 1.0,
    seed: int | None = None,
    prime: Tensor | None = None,
    progress: bool = True,
    weights: str = "float32",
) -> Tensor:
    """``n`` sequences of ``length`` codes from ``model`` on ``engine`` -> [n, length] long.

    ``weights`` ('float32' or 'int8') applies to the fast engine only.
    """
    name = resolve_engine(engine, model)
    if weights != "float32" and name != "fast":
        raise ConfigError(f"--weights {weights} needs the fast engine, not {name!r}")
    kwargs = dict(temperature=temperature, seed=seed, prime=prime, progress=progress)
    if name == "fast":
        from waveloom.sampling.fast import sample_fast

        return sample_fast(model, n, length, cond, weights=weights, **kwargs)
    if name == "cuda-graph":
        from waveloom.sampling.cuda_graphs import sample_cuda_graph

        return sample_cuda_graph(model, n, length, cond, **kwargs)
    return sample_incremental(model, n, length, cond, **kwargs)
