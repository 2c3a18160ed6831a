"""Our diffusion samplers beside diffusers' schedulers: the same path, the same noise, the same
denoiser, and what each costs per step.

Issue 25 asks to use diffusers' schedulers if they fit and to measure them against our own
(:mod:`waveloom.sampling.diffusion`). The denoiser here is *exact*: the data are ``K`` known
waveforms, so ``E[x0 | x_t]`` is a softmax-weighted mix of them and the noise prediction
follows in closed form; any difference between two samplers is then the samplers' own.

* **DDIM** (eta 0) against ``DDIMScheduler`` with its ``leading`` spacing (``t = i * T // n``:
  the only spacing whose previous step, ``t - T // n``, is the next step of its own list), on
  those same steps: our sampler walks any :class:`~waveloom.nn.diffusion_schedule.Path`.
* **DPM-Solver++(2M)** against ``DPMSolverMultistepScheduler`` (``dpmsolver++``, order 2,
  first order at the end, final sigma 0) given our evenly spaced steps as custom timesteps.

Printed per step count: the largest difference between the two final samples (float64, 4
clips of 256 samples), the distance of ours to the nearest data waveform (the sampler landed
on the data), and the sampler bookkeeping per step (a denoiser that costs nothing, best of
``--rounds``) for both; diffusers' DPM-Solver figure includes its ``set_timesteps``, which
must run again before each sample (the scheduler keeps the multistep history).

    python benchmarks/diffusion_samplers.py [--steps 6 12 25 50] [--rounds 20]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from waveloom.nn.diffusion_schedule import NoiseSchedule, Path
from waveloom.sampling import diffusion as ours

T, BETA_START, BETA_END = 50, 1e-4, 0.05  # DiffWave's training schedule
LENGTH, FREQS = 256, (220.0, 330.0, 440.0)


class ExactDenoiser:
    """Noise prediction of the exact posterior mean for data = the rows of ``data`` [K, L]."""

    def __init__(self, schedule: NoiseSchedule, data: torch.Tensor, free: bool = False) -> None:
        self.schedule, self.data, self.free = schedule, data, free

    def denoise(self, x: torch.Tensor, tau: torch.Tensor, c: object = None) -> torch.Tensor:
        if self.free:  # the bookkeeping timing: no network, no posterior
            return x
        a = self.schedule.alpha_bar_at(tau.double()).double()[:, None]
        x = x.double()
        dist = ((x[:, None, :] - a.sqrt()[:, None] * self.data[None]) ** 2).sum(-1)
        x0 = torch.softmax(-dist / (2 * (1 - a)), 1) @ self.data
        return (x - a.sqrt() * x0) / (1 - a).sqrt()


def run_diffusers(scheduler, model: ExactDenoiser, x: torch.Tensor) -> torch.Tensor:
    for t in scheduler.timesteps:
        eps = model.denoise(x, torch.full((x.shape[0],), float(t)))
        x = scheduler.step(eps, t, x).prev_sample
    return x


def schedulers(schedule: NoiseSchedule, n: int) -> tuple[object, Path, object, Path]:
    """(diffusers DDIM, our path on its steps, diffusers DPM-Solver++, our subset path)."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    betas = schedule.betas.numpy()
    ddim = DDIMScheduler(num_train_timesteps=T, trained_betas=betas, clip_sample=False,
                         set_alpha_to_one=True, timestep_spacing="leading", steps_offset=0)
    ddim.set_timesteps(n)
    steps = torch.tensor([int(t) for t in ddim.timesteps])
    ddim_path = Path(schedule.alpha_bar[steps], steps.double())
    path = schedule.subset(n)
    dpm = DPMSolverMultistepScheduler(num_train_timesteps=T, trained_betas=betas,
                                      algorithm_type="dpmsolver++", solver_order=2,
                                      lower_order_final=True, final_sigmas_type="zero")
    dpm.set_timesteps(timesteps=[int(t) for t in path.tau])
    return ddim, ddim_path, dpm, path


def per_step_seconds(fn, steps: int, rounds: int) -> float:
    best = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / steps


def compare(schedule: NoiseSchedule, data: torch.Tensor, x: torch.Tensor, n: int,
            rounds: int) -> str:
    """One table row for ``n`` steps (see the module docstring)."""
    exact, free = ExactDenoiser(schedule, data), ExactDenoiser(schedule, data, free=True)
    ddim, ddim_path, dpm, path = schedulers(schedule, n)
    a = ours._ddim(exact, x.clone(), None, ddim_path, None, False)
    b = run_diffusers(ddim, exact, x.clone())
    c = ours._dpm_solver(exact, x.clone(), None, path, None, False)
    d = run_diffusers(dpm, exact, x.clone())
    to_data = float(((c[:, None] - data[None]) ** 2).sum(-1).min(1).values.sqrt().max())
    timing = [
        per_step_seconds(lambda: ours._ddim(free, x, None, ddim_path, None, False), n, rounds),
        per_step_seconds(lambda: ours._dpm_solver(free, x, None, path, None, False), n, rounds),
        per_step_seconds(lambda: run_diffusers(ddim, free, x), n, rounds),
        per_step_seconds(lambda: run_diffusers(_reset(dpm, path), free, x), n, rounds),
    ]
    us = [f"{1e6 * s:.0f}" for s in timing]
    return (f"| {n} | {float((a - b).abs().max()):.2e} | {float((c - d).abs().max()):.2e} | "
            f"{to_data:.2e} | {us[0]}, {us[1]} | {us[2]}, {us[3]} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[6, 12, 25, 50])
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    import diffusers

    schedule = NoiseSchedule(T, BETA_START, BETA_END)
    t = torch.arange(LENGTH, dtype=torch.float64) / 16000.0
    data = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in FREQS])
    x = torch.randn(4, LENGTH, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    print(f"diffusers {diffusers.__version__}, torch {torch.__version__}; exact denoiser of "
          f"{len(FREQS)} waveforms x {LENGTH} samples, T = {T}")
    print("| steps | DDIM max diff | DPM-Solver++ max diff | ours to data | ours us/step "
          "(DDIM, DPM) | diffusers us/step (DDIM, DPM) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.steps:
        print(compare(schedule, data, x, n, args.rounds), flush=True)


def _reset(dpm, path: Path):
    """DPM-Solver's scheduler keeps its multistep history: set its steps again per run."""
    dpm.set_timesteps(timesteps=[int(t) for t in path.tau])
    return dpm


if __name__ == "__main__":
    main()
