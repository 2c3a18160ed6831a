"""Autoregressive sampling of a WaveNet stack, apart from the network.

:func:`sample_incremental` is the engine ``generate`` uses: it primes the stack's caches with
the history in one parallel pass, then calls :meth:`WaveNetStack.step` once per sample, so a
sample costs O(layers) small products (the "fast WaveNet" scheme of Paine et al. 2016).
:func:`sample_naive` re-runs the whole network over the last receptive field for every sample;
it exists only as the reference that tests and benchmarks compare against.

Both draw randomness the same way: all uniforms ``[length, n, U]`` come from one seeded CPU
``torch.Generator`` before the loop, and the head turns row ``t`` into a code by inverse CDF.
With the same seed the two engines therefore produce the same codes (up to the vanishing chance
that float rounding moves a CDF boundary across a uniform), and the result does not depend on
the device.

Any model can be sampled here if it exposes ``stack`` (a :class:`WaveNetStack`), ``head`` (see
:mod:`waveloom.nn.heads`) and ``sampling_plan(n, length, cond, prime) -> SamplingPlan`` (the
contract of :class:`waveloom.models.plan.StepSampled`, where :class:`SamplingPlan` and
:func:`draw_uniforms` live, re-exported here).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from waveloom.models.plan import SamplingPlan, draw_uniforms
from waveloom.nn.wavenet import WaveNetStack

__all__ = ["Samplable", "SamplingPlan", "compare_speed", "draw_uniforms", "sample_incremental",
           "sample_naive"]

LOCAL_CHUNK = 1024  # samples of local-conditioning projections computed at a time


class Samplable(Protocol):
    stack: WaveNetStack
    head: nn.Module

    def sampling_plan(
        self, n: int, length: int, cond: dict[str, Any] | None, prime: Tensor | None
    ) -> SamplingPlan: ...


def _check(n: int, length: int, temperature: float) -> None:
    if n <= 0 or length <= 0:
        raise ValueError(f"n={n} and length={length} must be positive")
    if not temperature > 0:
        raise ValueError(f"temperature={temperature} must be > 0")


@torch.no_grad()
def sample_incremental(
    model: Samplable,
    n: int,
    length: int,
    cond: dict[str, Any] | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    prime: Tensor | None = None,
    progress: bool = True,
) -> Tensor:
    """Generate ``n`` sequences of ``length`` codes with cached steps -> [n, length] long.

    ``cond`` is the model's conditioning dict, ``prime`` [n, P] float audio to continue
    (overrides ``cond['prime']``). Codes are in the head's output space (``head.decode`` turns
    them into audio).
    """
    _check(n, length, temperature)
    stack, head = model.stack, model.head
    plan = model.sampling_plan(n, length, cond, prime)
    device = plan.prefix.device
    uniforms = draw_uniforms(seed, length, n, head.uniforms_per_step).to(device)
    codes: list[Tensor] = []
    p = plan.prefix.shape[-1]
    local = plan.local
    stack.reset_state(n, plan.g, device=device)
    try:
        params = stack.prime(plan.prefix, None if local is None else local[..., 1 : p + 1])
        chunk: Tensor | None = None
        chunk_start = 0
        for t in tqdm(range(length), disable=not progress, unit="sample", desc="sampling"):
            code = head.sample(params, uniforms[t], temperature)
            codes.append(code)
            if t == length - 1:
                break
            l_t = None
            if local is not None:
                pos = p + t + 1  # the next output predicts timeline position p + t + 1
                if chunk is None or pos >= chunk_start + chunk.shape[0]:
                    chunk_start = pos
                    chunk = stack.local_bias(local[..., pos : pos + LOCAL_CHUNK])
                l_t = chunk[pos - chunk_start]
            params = stack.step(head.input_codes(code), l_t)
    finally:
        stack.clear_state()
    return torch.stack(codes, dim=1)


@torch.no_grad()
def sample_naive(
    model: Samplable,
    n: int,
    length: int,
    cond: dict[str, Any] | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    prime: Tensor | None = None,
    progress: bool = True,
) -> Tensor:
    """Reference sampler: a full forward pass over the last receptive field per sample.

    The window grows with the sequence but is capped at the receptive field, since older
    samples cannot change the output; that makes it the fastest *uncached* sampler, so the
    speed-up of :func:`sample_incremental` over it is not inflated. Same arguments and result.
    """
    _check(n, length, temperature)
    stack, head = model.stack, model.head
    plan = model.sampling_plan(n, length, cond, prime)
    device = plan.prefix.device
    uniforms = draw_uniforms(seed, length, n, head.uniforms_per_step).to(device)
    rf = stack.receptive_field
    history = plan.prefix[:, -rf:]  # codes older than one receptive field are never read
    total = plan.prefix.shape[-1]  # timeline position of the next sample
    out = torch.empty(n, length, dtype=torch.long, device=device)
    for t in tqdm(range(length), disable=not progress, unit="sample", desc="naive sampling"):
        window_l = None
        if plan.local is not None:
            window_l = plan.local[..., total - history.shape[-1] + 1 : total + 1]
        params = stack(history, plan.g, window_l)[..., -1]
        code = head.sample(params, uniforms[t], temperature)
        out[:, t] = code
        keep = history[:, max(0, history.shape[-1] - rf + 1) :]
        history = torch.cat([keep, head.input_codes(code).unsqueeze(1)], dim=1)
        total += 1
    return out


def compare_speed(
    model: Samplable,
    n: int = 1,
    length: int = 2000,
    naive_length: int = 200,
    cond: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Samples per second of both engines on ``model`` (same seed, same conditioning).

    The naive engine gets fewer samples because it is slow; its cost per sample is constant
    once its window is full (it always is: the history starts a full receptive field long).
    """
    sample_incremental(model, n, 16, cond, seed=0, progress=False)  # warm-up
    start = time.perf_counter()
    sample_incremental(model, n, length, cond, seed=0, progress=False)
    fast = n * length / (time.perf_counter() - start)
    start = time.perf_counter()
    sample_naive(model, n, naive_length, cond, seed=0, progress=False)
    slow = n * naive_length / (time.perf_counter() - start)
    return {"incremental": fast, "naive": slow, "ratio": fast / slow}
