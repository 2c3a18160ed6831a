"""The entry points that draw from any family: :func:`sample`, :func:`decode`, :func:`vocode`.

Verbs, the evaluator and the trainer's sample logging call ``sample(model, n, length, cond,
options)`` with a validated :class:`~waveloom.config.SamplingOptions`, never a family's own
keyword set. Dispatch is on what the model is, not on its signature: a
:class:`~waveloom.models.plan.StepSampled` network runs on the sampling engines
(:mod:`waveloom.sampling.autoregressive`); every other family (GANs, the spectral autoencoder,
SampleRNN, a :class:`~waveloom.sampling.hierarchy.Hierarchy`) draws in one call of its own
``generate(n, length, cond, options)`` / ``decode(z, pitch, length, options)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import Tensor

from waveloom.config import SamplingOptions
from waveloom.device import set_threads
from waveloom.errors import ConfigError
from waveloom.models.diffusion import Diffusion
from waveloom.models.plan import StepDecoded, StepSampled
from waveloom.sampling import autoregressive


def sample(model: Any, n: int, length: int, cond: dict[str, Any] | None = None,
           options: SamplingOptions | None = None) -> Tensor:
    """``n`` waveforms [n, length] in [-1, 1] from ``model`` (any family), drawn as
    ``options`` says (default: seed 0, temperature 1, the fastest engine)."""
    options = options or SamplingOptions()
    if n <= 0 or length <= 0:
        raise ConfigError(f"n={n} and length={length} must be positive")
    set_threads(options.threads)
    if isinstance(model, StepSampled):
        return autoregressive.generate(model, n, length, cond, options)
    if isinstance(model, Diffusion):
        from waveloom.sampling import diffusion

        return diffusion.generate(model, n, length, cond, options)
    return model.generate(n, length, cond, options)


def streams(model: Any, options: SamplingOptions) -> bool:
    """Whether :func:`sample_stream` draws ``model`` in pieces with these options (memory
    then grows with the piece, not with the length)."""
    from waveloom.sampling.engine import resolve_engine

    return isinstance(model, StepSampled) and resolve_engine(options.engine, model) == "fast"


def sample_stream(model: Any, n: int, length: int, cond: dict[str, Any] | None = None,
                  options: SamplingOptions | None = None,
                  segment: int = 1 << 20) -> Iterator[Tensor]:
    """:func:`sample` in pieces [n, t] that put together are its output for the same seed:
    ``segment`` samples at a time where the engine can carry its state (the fast engine),
    else the whole output as one piece. Long outputs are written as they come
    (``waveloom generate``), so memory does not grow with the length."""
    options = options or SamplingOptions()
    if n <= 0 or length <= 0:
        raise ConfigError(f"n={n} and length={length} must be positive")
    set_threads(options.threads)
    if isinstance(model, StepSampled):
        pieces = autoregressive.stream(model, n, length, cond, options, segment)
        if pieces is not None:
            return pieces
    return iter([sample(model, n, length, cond, options)])


def decode(model: Any, z: Tensor, pitch: Any = None, length: int | None = None,
           options: SamplingOptions | None = None) -> Tensor:
    """An autoencoder's codes ``z`` [B, D, F] (or [D, F]; an ADA level: [B, F] integer codes)
    -> audio [B, length] in [-1, 1] (default length: F times the hop).

    ``pitch`` (MIDI, one or B values) conditions pitch-aware decoders; None is the unknown
    label (a decoder without pitch conditioning refuses one). A sampling decoder (a WaveNet)
    draws as ``options`` says; a deterministic one (Griffin-Lim) refuses a non-default engine
    rather than ignore it.
    """
    options = options or SamplingOptions()
    set_threads(options.threads)
    if isinstance(model, StepDecoded):
        return autoregressive.decode(model, z, pitch, length, options)
    return model.decode(z, pitch, length, options)


def vocode(model: Any, mel: Any, options: SamplingOptions | None = None,
           f0: Any = None) -> Tensor:
    """Log mel [n, M, F] (or [M, F]) -> audio [n, (F - 1) * hop] in [-1, 1]: a mel-conditioned
    WaveNet, DiffWave or WaveGlow samples (as ``options`` says; default seed 0, no progress
    bar), MelGAN runs its generator once (the istft one draws its noise from the seed).
    ``f0`` [n, F] (Hz per frame): what a MelGAN with a pitch excitation plays."""
    options = options or SamplingOptions(progress=False)
    set_threads(options.threads)
    if f0 is not None and not getattr(getattr(model, "config", None), "excitation_harmonics", 0):
        raise ConfigError(f"--f0: {type(model).__name__} plays no pitch excitation; leave it "
                          "out (it is for a MelGAN with model.excitation_harmonics)")
    if isinstance(model, StepSampled):
        n, length, cond = model.vocode_request(mel)
        return autoregressive.generate(model, n, length, cond, options)
    if hasattr(model, "vocode_request"):  # samplers of their own (diffusion, flows)
        n, length, cond = model.vocode_request(mel)
        return sample(model, n, length, cond, options)
    if not options.is_default_engine:
        raise ConfigError(f"--engine/--weights: {type(model).__name__} has a single sampling "
                          "engine; leave them at their defaults")
    return model.vocode(mel, seed=options.seed or 0, f0=f0)
