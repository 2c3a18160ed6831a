"""Pick the faster of two ways to run the next chunk by timing both on the work itself.

Why: the C kernel's two-thread pipeline (one stream on two cores) runs 1.1-1.6x one thread
when two cores are free, and 0.4-0.5x when another process holds one of them (its two
threads wait on each other, so a third thread on the core stalls both; BENCHMARKS.md,
``benchmarks/pipeline.py``). Whether a core is free changes while a long clip is drawn, and
the load average lags by a minute, so the engine times the drivers on its own chunks: each
is tried once, the faster runs, and both are tried again after ``interval`` chunks (doubled
while the choice holds, up to ``max_interval``). Both drivers give the same codes, so the
choice changes only the speed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Chunks shorter than this many samples are run on the current choice and not timed: a few
#: steps (``step``) cost less than the timer's noise, and a prime (~1,024 steps) runs while
#: the ``generate`` command still imports its plotting on another thread.
MIN_TIMED_STEPS = 2048


def cores_look_busy(cores: int) -> bool:
    """Whether other work seems to hold a core now: the 1-minute load average above
    ``cores - 1.5``. Only a prior for the first chunks (it lags by a minute and counts this
    process's own work later on); wrongly busy costs a few chunks at one thread's speed,
    wrongly idle a few at the pipeline's 0.4x."""
    try:
        return os.getloadavg()[0] > cores - 1.5
    except (AttributeError, OSError):  # no load average on this platform
        return False


class DriverRace:
    """Alternates ``names`` on trial chunks, then runs the fastest (samples per second).

    ``pin`` fixes the driver (tests, benchmarks); ``interval`` is the number of chunks between
    trials, doubled up to ``max_interval`` each time the same driver wins. The first
    ``warmup`` timed chunks run untimed on the last name (the safe one): a process's first
    chunk pays for page faults and thread start-up, and in the ``generate`` command it shares
    the cores with the plotting imports (measured: the pipeline's first chunk at 35-60 k
    samples/s, its next ones at 115-135 k). ``busy`` (other work holds a core:
    :func:`cores_look_busy`) starts on the last name and tries the others after
    ``interval`` chunks, instead of trying them first.
    """

    def __init__(self, names: tuple[str, ...] = ("pipe", "serial"), interval: int = 4,
                 max_interval: int = 64, pin: str | None = None, warmup: int = 1,
                 busy: bool = False) -> None:
        self.names, self.base, self.max_interval = names, interval, max_interval
        self.pin = pin
        self.choice = names[-1] if busy else names[0]
        self.interval = interval
        self.left = interval
        self.trials = [] if busy else list(names)
        self.rates: dict[str, float] = {}
        self.warmup = warmup

    def next(self) -> str:
        """The driver for the next chunk."""
        if self.pin is not None:
            return self.pin
        if self.warmup > 0:
            return self.names[-1]
        return self.trials[0] if self.trials else self.choice

    def record(self, name: str, steps: int, seconds: float) -> None:
        """Account for a chunk of ``steps`` samples that ``name`` ran in ``seconds``."""
        if self.pin is not None or steps < MIN_TIMED_STEPS:
            return
        if self.warmup > 0:
            self.warmup -= 1
            return
        if self.trials and self.trials[0] == name:
            self.trials.pop(0)
            self.rates[name] = steps / max(seconds, 1e-9)
            if not self.trials:
                best = max(self.rates, key=self.rates.__getitem__)
                held = best == self.choice
                self.interval = min(2 * self.interval, self.max_interval) if held else self.base
                self.choice, self.left = best, self.interval
            return
        self.left -= 1
        if self.left <= 0:  # try the others, then the current choice, under today's load
            self.trials = [n for n in self.names if n != self.choice] + [self.choice]

    def run(self, drivers: dict[str, Callable[[], T]], steps: int) -> T:
        """Run the next chunk on the chosen driver's callable, timed; return its result."""
        name = self.next()
        t0 = time.perf_counter()
        result = drivers[name]()
        self.record(name, steps, time.perf_counter() - t0)
        return result
