"""How fast SampleRNN samples, next to WaveNet's plain-torch cached engine in the same process.

For the ``small`` presets of both families (random weights: speed does not depend on them) and
batch 1 and 16, prints samples/s and the real-time factor (audio seconds per wall second at
16 kHz, all streams together) of ``model.generate`` end to end: SampleRNN's stateful sampler
(tiers step once per frame, the MLP once per sample) and WaveNet with ``engine='torch'`` (the
cached reference; its one priming pass over the receptive field included), plus, with
``--wavenet-engines torch fast``, WaveNet's compiled engine. One thread, so the numbers do not
depend on what else the machine runs on its other cores; the best of ``--repeats`` runs is kept
and CPU time is printed beside wall time (on a shared machine the two differ, and CPU time is
what the code costs).

    .venv/bin/python benchmarks/sampling_samplernn.py [--batches 1 16] [--seconds 1.0]
        [--repeats 3] [--wavenet-engines torch fast]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from waveloom.config import SamplingOptions
from waveloom.device import set_threads
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.sampling.sample import sample

SR = 16000
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def timed(fn, repeats: int) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run) over ``repeats`` calls."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    return best


def build(family: str, batch: int):
    torch.manual_seed(0)
    model = build_model(load_config(CONFIGS / family / "small.yaml")).eval()
    cond = {"pitch": torch.full((batch,), 60), "instrument": torch.zeros(batch, dtype=torch.long)}
    return model, cond


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--seconds", type=float, default=1.0, help="audio per stream and run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--wavenet-engines", nargs="+", default=["torch"], choices=["torch", "fast"])
    args = p.parse_args()
    set_threads(1)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"1 thread, {args.seconds:g} s per stream, best of {args.repeats}")
    print("| model (engine) | B | samples/s | RTF (wall) | RTF (CPU time) | vs WaveNet torch |")
    print("|---|---:|---:|---:|---:|---:|")
    length = int(args.seconds * SR)
    for batch in args.batches:
        runs = [("wavenet", e) for e in args.wavenet_engines] + [("samplernn", "torch")]
        reference = None
        for family, engine in runs:
            model, cond = build(family, batch)
            options = SamplingOptions(seed=0, progress=False, engine=engine)

            def run(n: int, model=model, cond=cond, options=options, batch=batch) -> object:
                return sample(model, batch, n, cond, options)

            run(256)  # warm-up: kernel compilation, allocations
            wall, cpu = timed(lambda run=run: run(length), args.repeats)
            rate = batch * length / wall
            reference = rate if reference is None else reference
            print(f"| {family} small ({engine}) | {batch} | {rate:,.0f} | {rate / SR:.3f} | "
                  f"{batch * length / cpu / SR:.3f} | {rate / reference:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
