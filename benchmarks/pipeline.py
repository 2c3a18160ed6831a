"""One stream on one thread against the two-thread pipeline (issue 21), interleaved per round.

The fast engine's C backend runs one stream either serially or as a pipeline (front: every
layer's conv, gate and residual; back: skips, end stack, draw; ``FastWaveNet.driver``). This
times them on the same checkpoint in one process, round by round (the machine is shared):

* ``generate``: ``FastWaveNet.generate`` of N samples from a zero state with the model's
  local rows (random features of the right width), as the ``generate`` command's loop runs;
* ``teacher-forced``: ``teacher_force`` of N random codes without local rows, the kernel
  alone.

and the engine's default, ``raced``: two threads, the pipeline or one thread by the engine's
own timings (``waveloom.sampling.driver_race``), which must not lose much to one thread when
another process holds a core. It also checks that every driver draws the same codes (they
must: same sums, same order).

    .venv/bin/python benchmarks/pipeline.py [--checkpoint CKPT] [--samples 48000]
        [--rounds 3] [--weights float32|float16|int8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from waveloom.models.load import load_checkpoint
from waveloom.models.plan import draw_uniforms
from waveloom.sampling import fast
from waveloom.sampling.fast import FastWaveNet

DRIVERS = ("serial", "pipe", "raced")
CKPT = Path(__file__).resolve().parent.parent / "waveloom/assets/wavenet-small-notes.safetensors"


def engine(model, driver: str, weights: str) -> FastWaveNet:
    """A fresh C engine on ``driver``: 'serial' (one thread), 'pipe' (the pipeline, pinned)
    or 'raced' (two threads, the engine's default: the faster of the two by its timings)."""
    fast.engine_threads = lambda: 1 if driver == "serial" else 2
    eng = FastWaveNet(model.stack, model.head, weights=weights, backend="c")
    eng.race.pin = "pipe" if driver == "pipe" else None
    g = torch.zeros(1, model.stack.global_channels) if model.stack.global_channels else None
    eng.reset(1, g)
    return eng


def one_round(model, n: int, weights: str, out: dict) -> None:
    gen = torch.Generator().manual_seed(0)
    loc = None
    if model.stack.local_channels:
        loc = torch.randn(1, model.stack.local_channels, n + 1, generator=gen)
    u = draw_uniforms(0, n, 1, model.head.uniforms_per_step)
    codes = torch.randint(0, model.stack.input_levels, (1, n), generator=gen)
    for driver in DRIVERS:
        eng = engine(model, driver, weights)
        t0 = time.perf_counter()
        drawn = eng.generate(n, u, 1.0, loc, 0)
        out.setdefault(("generate", driver), []).append(n / (time.perf_counter() - t0))
        out[("codes", driver)] = drawn
        eng = engine(model, driver, weights)
        t0 = time.perf_counter()
        eng.teacher_force(codes, None)
        out.setdefault(("teacher-forced", driver), []).append(n / (time.perf_counter() - t0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=CKPT)
    ap.add_argument("--samples", type=int, default=48000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--weights", default="float32", choices=fast.WEIGHT_KINDS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(args.checkpoint)
    out: dict = {}
    for _ in range(args.rounds):
        one_round(model, args.samples, args.weights, out)
    same = all(np.array_equal(out[("codes", "serial")], out[("codes", d)]) for d in DRIVERS)
    print(f"{args.checkpoint.name}, {args.samples} samples, {args.weights}, {args.rounds} rounds, "
          f"load {os.getloadavg()[0]:.1f}; same codes on every driver: {same}")
    print("| loop | one thread (k samples/s) | pipeline | raced (default) | pipeline / one "
          "| raced / one |\n|---|---:|---:|---:|---:|---:|")
    for loop in ("generate", "teacher-forced"):
        rates = [out[(loop, d)] for d in DRIVERS]
        cells = [", ".join(f"{v / 1e3:.0f}" for v in r) for r in rates]
        one, pipe, raced = (statistics.median(r) for r in rates)
        print(f"| {loop} | {' | '.join(cells)} | {pipe / one:.2f} | {raced / one:.2f} |")
    if not same:
        raise SystemExit("the drivers drew different codes")


if __name__ == "__main__":
    main()
