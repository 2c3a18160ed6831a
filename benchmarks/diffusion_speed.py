"""Seconds of audio per second of compute of a diffusion checkpoint, at each step count.

Issue 25 asks for the speed against steps. A diffusion model's cost is ``steps x`` one network
pass over the whole clip, so the figure to know is audio seconds per wall second at 6, 12, 25,
50 and 100 steps, as a user meets it and as the loop alone gives it:

* ``command``: ``python -m waveloom.cli generate CKPT --n N --seconds S --steps K --sampler X``
  in a subprocess (imports, loading, sampling, writing the WAVs and the spectrogram);
* ``loop``: :func:`waveloom.sampling.sample.sample` on the loaded model in this process.

Both are reported as real-time factors (``N x S`` seconds of audio / wall seconds), the best of
``--rounds`` (the machine is shared; the best is the least disturbed). Labels: pitch 60 and
the model's first instrument when it reads them.

    .venv/bin/python benchmarks/diffusion_speed.py runs/diffwave-notes/model.safetensors \\
        [--steps 6 12 25 50 100] [--n 4] [--seconds 2] [--sampler ddpm] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command_wall(ckpt: Path, n: int, seconds: float, steps: int, sampler: str,
                 threads: int | None) -> float:
    """Wall seconds of the whole ``generate`` command in a subprocess."""
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "waveloom.cli", "generate", str(ckpt), "--n", str(n),
                "--seconds", str(seconds), "--steps", str(steps), "--sampler", sampler,
                "--pitch", "60", "--out", out, "-q"]
        if threads:
            argv += ["--threads", str(threads)]
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        return time.perf_counter() - t0


def loop_wall(model, n: int, length: int, steps: int, sampler: str) -> float:
    """Wall seconds of the sampler alone on the loaded model."""
    import torch

    from waveloom.config import SamplingOptions
    from waveloom.sampling.sample import sample

    keys = model.conditioning_keys()
    cond = {}
    if "pitch" in keys:
        cond["pitch"] = torch.full((n,), 60)
    if "instrument" in keys:
        cond["instrument"] = torch.zeros(n, dtype=torch.long)
    options = SamplingOptions(seed=0, denoising_steps=steps, sampler=sampler, progress=False)
    t0 = time.perf_counter()
    sample(model, n, length, cond or None, options)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--steps", type=int, nargs="+", default=[6, 12, 25, 50, 100])
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--sampler", default="ddpm")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    import torch

    from waveloom.models.load import load_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    model, run = load_checkpoint(args.checkpoint)
    length = int(args.seconds * run.data.sample_rate)
    audio = args.n * args.seconds
    print(f"{args.checkpoint.name}: {args.n} x {args.seconds:g} s, {args.sampler}, "
          f"threads {torch.get_num_threads()}, best of {args.rounds}")
    print("| steps | command s | command x real time | loop s | loop x real time |")
    print("|---:|---:|---:|---:|---:|")
    for steps in args.steps:
        cmd = min(command_wall(args.checkpoint, args.n, args.seconds, steps, args.sampler,
                               args.threads) for _ in range(args.rounds))
        loop = min(loop_wall(model, args.n, length, steps, args.sampler)
                   for _ in range(args.rounds))
        print(f"| {steps} | {cmd:.2f} | {audio / cmd:.2f} | {loop:.2f} | {audio / loop:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
