"""Drawing from the step-sampled families (:class:`~waveloom.models.plan.StepSampled`): WaveNet,
the NSynth autoencoder, ADA levels and the code prior.

The models are networks: they resolve a request into a :class:`~waveloom.models.plan.
SamplingPlan` and turn tokens into their output; the loop that draws the tokens is an engine's
(:func:`~waveloom.sampling.engine.sample_codes` picks one: the compiled fast engine on a CPU,
CUDA graphs on a GPU, the plain-torch reference otherwise). Every engine draws the same
pre-drawn uniforms, so one :class:`~waveloom.config.SamplingOptions` seed gives the same tokens
on any of them. Callers use :mod:`waveloom.sampling.sample`; the token-level functions here
serve the hierarchy, which chains levels on tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from waveloom.config import SamplingOptions
from waveloom.models.plan import StepDecoded, StepSampled, check_request
from waveloom.sampling.engine import sample_codes


def sample_tokens(model: StepSampled, n: int, length: int, cond: dict[str, Any] | None,
                  options: SamplingOptions, prime: Tensor | None = None) -> Tensor:
    """``n`` token sequences [n, length] long (mu-law codes, or a code level's codes) drawn
    from ``model`` on the engine ``options`` names."""
    check_request(n, length, options.temperature, model.length_unit)
    return sample_codes(model, n, length, cond, engine=options.engine,
                        temperature=options.temperature, seed=options.seed, prime=prime,
                        progress=options.progress, weights=options.weights)


@torch.no_grad()
def generate(model: StepSampled, n: int, length: int, cond: dict[str, Any] | None,
             options: SamplingOptions) -> Tensor:
    """``n`` outputs [n, length] of ``model`` (audio in [-1, 1]; a code prior or code level:
    codes in the code-cache representation), continuing ``cond['prime']`` if given."""
    check_request(n, length, options.temperature, model.length_unit)
    cond = model.sampling_cond(n, length, dict(cond or {}), options.seed)
    return model.output(sample_tokens(model, n, length, cond, options))


def stream(model: StepSampled, n: int, length: int, cond: dict[str, Any] | None,
           options: SamplingOptions, segment: int) -> Iterator[Tensor] | None:
    """:func:`generate` in pieces of ``segment`` steps ([n, t] each; together the same output
    for a seed), or None when the engine ``options`` resolve to draws only in one piece (the
    fast engine streams; torch and CUDA graphs do not yet)."""
    from waveloom.sampling.engine import resolve_engine

    check_request(n, length, options.temperature, model.length_unit)
    if resolve_engine(options.engine, model) != "fast":
        return None
    return _stream_fast(model, n, length, cond, options, segment)


@torch.no_grad()
def _stream_fast(model: StepSampled, n: int, length: int, cond: dict[str, Any] | None,
                 options: SamplingOptions, segment: int) -> Iterator[Tensor]:
    from waveloom.sampling.fast import stream_fast

    cond = model.sampling_cond(n, length, dict(cond or {}), options.seed)
    for tokens in stream_fast(model, n, length, cond, temperature=options.temperature,
                              seed=options.seed, weights=options.weights, segment=segment,
                              progress=options.progress):
        yield model.output(tokens)


@torch.no_grad()
def decode_steps(model: StepDecoded, z: Any, length: int | None, options: SamplingOptions,
                 pitch: Any = None) -> Tensor:
    """An autoencoder's code ``z`` -> its decoder's tokens [n, length] long (``length``
    defaults to the code's frames times the hop)."""
    n, length, cond = model.decode_request(z, pitch, length)
    return sample_tokens(model, n, length, cond, options)


@torch.no_grad()
def decode(model: StepDecoded, z: Any, pitch: Any, length: int | None,
           options: SamplingOptions) -> Tensor:
    """An autoencoder's code ``z`` -> audio [n, length] in [-1, 1] (a code level: the codes
    of the level below, [n, length] long)."""
    return model.decoded(decode_steps(model, z, length, options, pitch))
