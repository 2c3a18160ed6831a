"""Where one training step's time goes: ``torch.profiler`` over one real step of a preset.

The step is ``train_speed.py``'s (the preset's objective through Fabric: the model's loss,
backward, clipping, AdamW, EMA, schedule), after ``--warmup`` steps. Printed:

* the split of self CPU time into forward (the loss), backward (everything the autograd engine
  runs), gradient clipping, optimiser (AdamW's step and zero_grad) and EMA; an op belongs to the
  part whose range encloses it (autograd's ``evaluate_function`` nodes, the optimiser's own
  ``Optimizer.step`` / ``zero_grad`` ranges, and ``clip`` / ``ema`` ranges this script puts
  around the objective's calls);
* the top ``--top`` ops by self CPU time, each with its part.

    PYTHONPATH=. python benchmarks/profile_step.py --preset wavenet/paper-size --shape 4x8000 \\
        --threads 2
"""

from __future__ import annotations

import argparse
import functools
import os
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, record_function
from train_speed import build_case, parse_shape

from waveloom.device import set_threads

PARTS = ("forward", "backward", "clip", "optimizer", "ema")


def labelled(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` inside a profiler range called ``name``."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with record_function(name):
            return fn(*args, **kwargs)
    return run


def part_of(event: Any) -> str:
    """The step part an event belongs to: the first labelled range enclosing it."""
    while event is not None:
        name = event.name
        if name.startswith("autograd::engine::evaluate_function"):
            return "backward"
        if name.startswith("Optimizer."):
            return "optimizer"
        if name in ("clip", "ema"):
            return name
        event = event.cpu_parent
    return "forward"


def summarise(events: Any, top: int) -> tuple[dict[str, float], list[tuple[str, str, float, int]]]:
    """(part -> self CPU ms, [(op, part, self CPU ms, calls)] the ``top`` most expensive)."""
    parts: dict[str, float] = defaultdict(float)
    ops: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for event in events:
        part = part_of(event)
        ms = event.self_cpu_time_total / 1e3
        parts[part] += ms
        ops[(event.name, part)][0] += ms
        ops[(event.name, part)][1] += 1
    ranked = sorted(((n, p, v[0], v[1]) for (n, p), v in ops.items()), key=lambda r: -r[2])
    return dict(parts), ranked[:top]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="wavenet/paper-size")
    ap.add_argument("--shape", default="4x8000", help="BxT, or 'preset' for the preset's own")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    shape = None if args.shape == "preset" else parse_shape(args.shape)
    case = build_case(args.preset, torch.device("cpu"), shape, count_flops=False)
    objective = case.objective
    objective.update_ema = labelled("ema", objective.update_ema)
    objective.fabric.clip_gradients = labelled("clip", objective.fabric.clip_gradients)
    for _ in range(args.warmup):
        case.step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        case.step()
    parts, ranked = summarise(prof.events(), args.top)
    total = sum(parts.values())
    print(f"{args.preset}, {case.shape[0]}x{case.shape[1]}, {torch.get_num_threads()} "
          f"thread(s), load average {os.getloadavg()[0]:.2f}: {total:.0f} ms self CPU in all")
    print("part        self CPU ms   share")
    for part in PARTS:
        if part in parts:
            print(f"{part:<12}{parts[part]:>11.0f}{100 * parts[part] / total:>7.1f} %")
    print(f"\n{'op':<44}{'part':>10}{'self CPU ms':>13}{'share':>8}{'calls':>7}")
    for name, part, ms, calls in ranked:
        print(f"{name[:43]:<44}{part:>10}{ms:>13.1f}{100 * ms / total:>7.1f} %{calls:>7}")


if __name__ == "__main__":
    main()
