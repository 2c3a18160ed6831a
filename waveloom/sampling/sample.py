"""One entry point that draws audio from any family: :func:`sample`.

Verbs, the evaluator and the trainer's sample logging call ``sample(model, n, length, cond,
options)`` with a validated :class:`~waveloom.config.SamplingOptions`, never a family's own
keyword set, so no caller probes signatures or repeats argument checks.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor

from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError


def sample(model: Any, n: int, length: int, cond: dict[str, Any] | None = None,
           options: SamplingOptions | None = None) -> Tensor:
    """``n`` waveforms [n, length] in [-1, 1] from ``model`` (any family), drawn as
    ``options`` says (default: seed 0, temperature 1, the fastest engine)."""
    options = options or SamplingOptions()
    if n <= 0 or length <= 0:
        raise ConfigError(f"n={n} and length={length} must be positive")
    kwargs: dict[str, Any] = dict(temperature=options.temperature, seed=options.seed,
                                  progress=options.progress)
    if not options.is_default_engine:
        if "engine" not in inspect.signature(model.generate).parameters:
            raise ConfigError(
                f"--engine/--weights: {type(model).__name__} has a single sampling engine; "
                "leave them at their defaults"
            )
        kwargs.update(engine=options.engine, weights=options.weights)
    return model.generate(n, length, cond, **kwargs)


def decode(model: Any, z: Tensor, pitch: Any = None, length: int | None = None,
           options: SamplingOptions | None = None) -> Tensor:
    """An autoencoder's codes ``z`` [B, D, F] (or [D, F]) -> audio [B, length] in [-1, 1].

    ``pitch`` (MIDI, one or B values) conditions pitch-aware decoders; None is the unknown
    label. A sampling decoder (a WaveNet) draws as ``options`` says; a deterministic one
    (Griffin-Lim) refuses a non-default engine rather than ignore it.
    """
    options = options or SamplingOptions()
    kwargs: dict[str, Any] = dict(seed=options.seed, progress=options.progress)
    if "engine" in inspect.signature(model.decode).parameters:
        kwargs.update(engine=options.engine, weights=options.weights,
                      temperature=options.temperature)
    elif not options.is_default_engine:
        raise ConfigError(f"--engine/--weights: {type(model).__name__} does not sample (its "
                          "decoder is deterministic); leave them at their defaults")
    return model.decode(z, pitch, length, **kwargs)
