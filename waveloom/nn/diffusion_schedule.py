"""The noise schedule of a discrete-time diffusion model, and the paths samplers walk on it.

Training (Ho et al. 2020; DiffWave, Kong et al. 2021, sec. 3): T steps with variances
``beta_1..beta_T`` (DiffWave: T = 50, linear from 1e-4 to 0.05); ``alpha_bar_t = prod_{s<=t}
(1 - beta_s)`` and ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``. The network is
told the step as a float ``tau`` (0-based: step t is ``tau = t - 1``), so a sampler may ask it
about a noise level between two training steps.

A sampler walks a :class:`Path`: noise levels ``alpha_bar`` from the noisiest to the cleanest
and the ``tau`` the network is told at each. Two kinds:

* a *subset* of the training steps (``steps`` of them, evenly spaced, always ending at the
  first): DDIM's and DPM-Solver's choice, and plain DDPM when ``steps == T``;
* a *variance schedule of its own* (DiffWave's fast sampling, sec. 4 and appendix B: the six
  betas 1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5), its noise levels aligned to the training ones: each
  inference ``alpha_bar`` is placed between the two training steps whose ``sqrt(alpha_bar)``
  bracket it, interpolated linearly, which gives the float ``tau`` the network is told.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from waveloom.errors import ConfigError

#: DiffWave's fast-sampling variance schedule (6 steps), for a model trained with T = 50.
DIFFWAVE_FAST_BETAS = (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5)


@dataclass(frozen=True)
class Path:
    """``alpha_bar`` ``[S]`` (decreasing noise: increasing values) and ``tau`` ``[S]`` floats;
    ``betas`` ``[S]`` are the path's own per-step variances (what DDPM's update uses)."""

    alpha_bar: Tensor
    tau: Tensor

    @property
    def betas(self) -> Tensor:
        a = self.alpha_bar.flip(0)  # cleanest first: a_1 > a_2 > ...
        prev = torch.cat([a.new_ones(1), a[:-1]])
        return (1 - a / prev).flip(0)

    def __len__(self) -> int:
        return int(self.alpha_bar.numel())


class NoiseSchedule:
    """``T`` training steps with betas linear from ``beta_start`` to ``beta_end``."""

    def __init__(self, steps: int, beta_start: float, beta_end: float) -> None:
        if steps < 1 or not 0 < beta_start <= beta_end < 1:
            raise ConfigError(f"diffusion schedule T={steps}, betas {beta_start}..{beta_end}: "
                              "need T >= 1 and 0 < beta_start <= beta_end < 1")
        self.steps = int(steps)
        # on the CPU whatever device context the model is built under: on the meta device
        # (build_model's parameter count) `1 - betas` runs torch's Python references, whose
        # first use imports torch._dynamo, ~2 s of every diffusion `generate`'s start-up
        self.betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64,
                                    device="cpu")
        self.alpha_bar = torch.cumprod(1 - self.betas, 0)

    def noisy(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t`` for 0-based steps ``t`` ``[B]`` of clean ``x0`` ``[B, ...]``."""
        a = self.alpha_bar.to(x0.device)[t].float().view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def alpha_bar_at(self, tau: Tensor) -> Tensor:
        """``alpha_bar`` at float steps ``tau`` ``[B]``: sqrt(alpha_bar) interpolated linearly
        between training steps (the alignment :meth:`aligned` uses)."""
        root = self.alpha_bar.to(tau.device).sqrt()
        lo = tau.double().floor().long().clamp(0, self.steps - 1)
        hi = (lo + 1).clamp(max=self.steps - 1)
        frac = (tau.double() - lo.double()).clamp(0, 1)
        return ((1 - frac) * root[lo] + frac * root[hi]).pow(2).float()

    def subset(self, count: int) -> Path:
        """``count`` training steps, evenly spaced from the last to the first."""
        if not 1 <= count <= self.steps:
            raise ConfigError(f"--steps {count}: this model was trained with {self.steps} "
                              f"steps; use 1..{self.steps} (or its own fast schedule)")
        t = torch.linspace(self.steps - 1, 0, count).round().long()
        return Path(self.alpha_bar[t], t.double())

    def aligned(self, betas: tuple[float, ...] | list[float]) -> Path:
        """A variance schedule of its own (e.g. :data:`DIFFWAVE_FAST_BETAS`), aligned."""
        own = torch.cumprod(1 - torch.tensor(betas, dtype=torch.float64), 0).flip(0)
        root = self.alpha_bar.sqrt()  # decreasing with t
        taus = []
        for a in own.sqrt():
            above = int((root >= a).sum()) - 1  # last training step at least as clean
            if above < 0:
                taus.append(0.0)
            elif above >= self.steps - 1:
                taus.append(float(self.steps - 1))
            else:
                hi, lo = root[above], root[above + 1]
                taus.append(above + float((hi - a) / (hi - lo)))
        return Path(own, torch.tensor(taus, dtype=torch.float64))
