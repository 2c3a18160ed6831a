"""Samplers of diffusion models (:class:`waveloom.models.diffusion.Diffusion`), apart from
the networks: from white noise to audio along a :class:`~waveloom.nn.diffusion_schedule.Path`.

* ``ddpm`` (Ho et al. 2020, alg. 2; DiffWave alg. 2): ancestral, fresh noise every step with
  the posterior variance ``(1 - abar_prev) / (1 - abar) beta``. With all T steps it is the
  paper's sampler; with ``--steps`` equal to the length of the model's fast schedule (DiffWave:
  6) it walks that schedule, aligned to the training steps; other counts walk a subset of the
  training steps with the betas re-derived from it (respacing).
* ``ddim`` (Song et al. 2021, eta = 0): deterministic given the first noise; ``x0`` is
  estimated from each prediction and moved to the next noise level with the same noise.
* ``dpm-solver`` (DPM-Solver++(2M), Lu et al. 2022, alg. 2): a second-order multistep solver
  of the probability-flow ODE in data prediction, in the log signal-to-noise ratio ``lambda``;
  the last step (to clean audio) is first order.

DDIM and DPM-Solver clip the ``x0`` estimates to [-1, 1], the range of audio. Every sampler is
seeded (a ``torch.Generator``): the same seed, steps and sampler give the same audio.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError
from waveloom.nn.diffusion_schedule import Path


def path_for(model: Any, steps: int | None, sampler: str) -> Path:
    """The path ``sampler`` walks in ``steps`` (None: all training steps)."""
    schedule = model.schedule
    count = schedule.steps if steps is None else int(steps)
    fast = model.fast_betas()
    if sampler == "ddpm" and fast and count == len(fast) and count != schedule.steps:
        return schedule.aligned(fast)
    return schedule.subset(count)


def _check(model: Any, options: SamplingOptions) -> str:
    sampler = options.sampler or model.samplers[0]
    if sampler not in model.samplers:
        raise ConfigError(f"--sampler {sampler!r}: this model offers "
                          f"{', '.join(model.samplers)}")
    if options.engine != "auto" or options.weights != "float32":
        raise ConfigError("--engine/--weights are for autoregressive models; a diffusion "
                          "model runs on torch")
    return sampler


@torch.no_grad()
def generate(model: Any, n: int, length: int, cond: dict[str, Any] | None,
             options: SamplingOptions) -> Tensor:
    """``n`` waveforms ``[n, length]`` in [-1, 1] (``options.denoising_steps``,
    ``.sampler``, ``.seed``; ``.temperature`` scales the initial noise, 1 = the prior)."""
    sampler = _check(model, options)
    path = path_for(model, options.denoising_steps, sampler)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(int(options.seed or 0))
    try:
        c = model.condition_input(dict(cond or {}), n, length)
        shape = model.noise_shape(n, length)
        x = torch.randn(shape, generator=generator, device=device) * options.temperature
        x = _STEPPERS[sampler](model, x, c, path, generator, options.progress)
        audio = model.to_audio(x, length, dict(cond or {}), generator)
    finally:
        model.train(was_training)
    return audio.clamp(-1, 1)


def _levels(path: Path, i: int) -> tuple[float, float]:
    """(abar at step i, abar at the next, cleaner level; 1 after the last)."""
    a = float(path.alpha_bar[i])
    nxt = float(path.alpha_bar[i + 1]) if i + 1 < len(path) else 1.0
    return a, nxt


def _eps(model: Any, x: Tensor, c: Tensor | None, path: Path, i: int) -> Tensor:
    tau = torch.full((x.shape[0],), float(path.tau[i]), device=x.device)
    return model.denoise(x, tau, c)


def _ddpm(model, x, c, path, generator, progress) -> Tensor:
    betas = path.betas
    for i in tqdm(range(len(path)), desc="ddpm", disable=not progress, leave=False):
        a, nxt = _levels(path, i)
        beta = float(betas[i])
        eps = _eps(model, x, c, path, i)
        x = (x - beta / math.sqrt(1 - a) * eps) / math.sqrt(1 - beta)
        if i + 1 < len(path):
            sigma = math.sqrt((1 - nxt) / (1 - a) * beta)
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device)
    return x


def _x0(x: Tensor, eps: Tensor, a: float) -> Tensor:
    return ((x - math.sqrt(1 - a) * eps) / math.sqrt(a)).clamp(-1, 1)


def _ddim(model, x, c, path, generator, progress) -> Tensor:
    for i in tqdm(range(len(path)), desc="ddim", disable=not progress, leave=False):
        a, nxt = _levels(path, i)
        eps = _eps(model, x, c, path, i)
        x0 = _x0(x, eps, a)
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)  # consistent with the clipped x0
        x = math.sqrt(nxt) * x0 + math.sqrt(1 - nxt) * eps
    return x


def _dpm_solver(model, x, c, path, generator, progress) -> Tensor:
    previous: tuple[Tensor, float] | None = None  # (x0 estimate, step size h) of the last step
    for i in tqdm(range(len(path)), desc="dpm-solver", disable=not progress, leave=False):
        a, nxt = _levels(path, i)
        x0 = _x0(x, _eps(model, x, c, path, i), a)
        if nxt >= 1.0:  # the last step lands on clean audio: lambda = inf
            return x0
        lam = 0.5 * math.log(a / (1 - a))
        lam_next = 0.5 * math.log(nxt / (1 - nxt))
        h = lam_next - lam
        d = x0
        if previous is not None:
            r = previous[1] / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous[0]
        x = math.sqrt((1 - nxt) / (1 - a)) * x - math.sqrt(nxt) * math.expm1(-h) * d
        previous = (x0, h)
    return x


_STEPPERS = {"ddpm": _ddpm, "ddim": _ddim, "dpm-solver": _dpm_solver}
