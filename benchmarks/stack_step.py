"""Training step of the WaveNet stack alone: the fast forward against the reference, A/B.

One forward + backward (cross-entropy over 256 classes, the WaveNet loss) of
``WaveNetStack`` in valid mode (``padded=False``: the input carries the receptive field before
the predicted samples), timed for the default fast path (``waveloom/nn/wavenet_fast.py``) and
for ``reference=True`` (the layer-by-layer ``nn.Conv1d`` path) in interleaved rounds in one
process, so drift in what else the machine runs hits both alike; the median of each and
their ratio are printed. (The per-piece variants of the earlier fast path, stacked taps and
per-layer skips, went with it; the time-major rewrite is measured against it in
docs/wavenet.md.)

Sizes: ``paper`` = 3 stacks x 10 layers, residual/dilation 64, skip/end 256 (the default
stack, ~7.5 MFLOP per predicted sample for forward + backward); ``small`` = the demo preset's
2 x 9 layers of 32, skip/end 128. ``--cond`` adds a global vector (16) and local features
(6 channels) to every layer, as the demo WaveNet has.

    PYTHONPATH=. .venv/bin/python benchmarks/stack_step.py [--sizes paper small]
        [--shapes 4x8000 1x16000] [--threads 2] [--rounds 7] [--cond]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from waveloom.device import set_threads
from waveloom.nn.wavenet import WaveNetStack

SIZES = {
    "paper": dict(residual_channels=64, dilation_channels=64, skip_channels=256,
                  end_channels=256, layers_per_stack=10, stacks=3),
    "small": dict(residual_channels=32, dilation_channels=32, skip_channels=128,
                  end_channels=128, layers_per_stack=9, stacks=2),
}
G_DIM, L_DIM = 16, 6


def make_step(size: str, shape: str, cond: bool, name: str) -> Callable[[], None]:
    torch.manual_seed(0)
    stack = WaveNetStack(out_channels=256, kernel_size=2, global_channels=G_DIM if cond else 0,
                         local_channels=L_DIM if cond else 0, **SIZES[size]).train()
    batch, predicted = (int(v) for v in shape.split("x"))
    total = predicted + stack.receptive_field - 1
    codes = torch.randint(0, 256, (batch, total))
    targets = torch.randint(0, 256, (batch, predicted))
    g = torch.randn(batch, G_DIM) if cond else None
    l = torch.randn(batch, L_DIM, total) if cond else None

    def step() -> None:
        out = stack(codes, g, l, padded=False, reference=name == "reference")
        F.cross_entropy(out, targets).backward()
        stack.zero_grad(set_to_none=True)
    return step


def run(size: str, shape: str, cond: bool, names: list[str], rounds: int) -> None:
    steps = {n: make_step(size, shape, cond, n) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for step in steps.values():
        step()  # warm-up
    for _ in range(rounds):
        for n, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[n].append(time.perf_counter() - t0)
    batch, predicted = (int(v) for v in shape.split("x"))
    ref = statistics.median(times["reference"])
    for n in names:
        med = statistics.median(times[n])
        print(f"{size:6s} {shape:8s} cond={int(cond)} {n:11s} {med * 1000:8.1f} ms "
              f"{batch * predicted / med:9.0f} samples/s  reference/this {ref / med:5.2f}x",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["paper", "small"], choices=list(SIZES))
    parser.add_argument("--shapes", nargs="+", default=["4x8000", "1x16000"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cond", action="store_true")
    args = parser.parse_args()
    set_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for size in args.sizes:
        for shape in args.shapes:
            run(size, shape, args.cond, ["reference", "fast"], args.rounds)


if __name__ == "__main__":
    main()
