"""Fit a run's step count to a wall-clock budget (``waveloom train --minutes M``).

A cosine or linear schedule only ends well if the run reaches ``train.max_steps``; killing a run
when time is up leaves the learning rate high. So the budget is turned into a step count before
the run starts: short calibration runs (in a temporary folder, same config and device) time
the steady-state step, the difference cancelling start-up costs (data set-up, cuDNN autotuning,
the first step's allocations).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from waveloom.config import RunConfig
from waveloom.errors import ConfigError

SHORT, LONG = 10, 40


def seconds_per_step(cfg: RunConfig, data: str | Path, accelerator: str = "auto") -> float:
    """Steady-state seconds per optimiser step of ``cfg`` on this machine."""
    from waveloom.train.trainer import train

    times = {}
    with tempfile.TemporaryDirectory(prefix="waveloom-calibrate-") as tmp:
        # The first run in a process also pays one-off costs (CUDA context, cuDNN autotuning,
        # kernel compilation) inside its loop: it is a warm-up only.
        for i, steps in enumerate((SHORT, SHORT, LONG)):
            run = dataclasses.replace(
                cfg, train=dataclasses.replace(cfg.train, max_steps=steps, sample_every=0,
                                               checkpoint_every=10**9)
            )
            result = train(run, data, Path(tmp) / str(i),
                           accelerator=accelerator, progress=False)
            times[steps] = result.seconds
    steady = (times[LONG] - times[SHORT]) / (LONG - SHORT)
    # Timer noise can swamp a very fast step; the long run's mean (start-up included) then
    # overestimates the step, which errs towards a shorter run, never an endless one.
    return steady if steady > 0.2 * times[LONG] / LONG else times[LONG] / LONG


def steps_for_minutes(cfg: RunConfig, data: str | Path, minutes: float,
                      accelerator: str = "auto") -> tuple[int, float]:
    """(max_steps that fill ``minutes``, measured seconds per step)."""
    if not minutes > 0:
        raise ConfigError(f"--minutes {minutes}: must be > 0")
    per_step = seconds_per_step(cfg, data, accelerator)
    steps = int(minutes * 60 / per_step)
    if steps >= 1000:
        steps -= steps % 100
    return max(1, steps), per_step
