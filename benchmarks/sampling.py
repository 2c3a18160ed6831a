"""How fast WaveNet sampling runs: naive re-run vs cached torch vs the fast engine.

For the ``small`` and ``nsynth`` presets (random weights: speed does not depend on them) and
batch 1 and 16, prints samples/s and the real-time factor (audio seconds per wall second at
16 kHz, all streams together) of

* ``naive``  -- a full forward pass over the receptive field per sample (sample_naive),
* ``torch``  -- the plain-torch cached reference engine (sample_incremental),
* ``fast``   -- the compiled engine: C kernel and numba kernel, float32, float16 (C only) and
  int8 weights, one thread and (where there are several cores) all of them,
* ``cuda-graph`` -- where CUDA is present,

and each one's speed relative to ``torch`` measured in the same process. The cached engines
are timed in their steady state: the per-sample loop (draw, feed back, step) from a zero
state, without the one-off priming pass over the receptive field (for ``nsynth`` at batch 16
that pass alone is a ~6 TMAC forward). The naive engine has no such split. The best of
``--repeats`` runs is kept because the machines are shared; CPU time per sample is printed
beside wall time: on an oversubscribed machine the two differ, and CPU time is what the code
costs.

Then the accuracy cost of float16 and int8 weights: teacher-forced logits against the
float32 engine (max abs error) and how often the draw from the same uniform gives the same
code, on random weights and codes, and with ``--checkpoint`` on a trained model fed codes it
generated itself (what sampling meets: random weights flatter int8, whose per-column scale a
trained model's few large weights stretch).

    .venv/bin/python benchmarks/sampling.py [--presets small nsynth] [--batches 1 16]
        [--repeats 3] [--budget 2.0] [--engines naive fast cuda-graph] [--no-accuracy]
        [--checkpoint waveloom/assets/wavenet-small-notes.safetensors]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from waveloom.device import set_threads
from waveloom.models.load import load_checkpoint, load_config
from waveloom.models.plan import draw_uniforms
from waveloom.models.registry import build_model
from waveloom.sampling import cbuild
from waveloom.sampling.cuda_graphs import sample_cuda_graph
from waveloom.sampling.fast import FastWaveNet, sample_fast
from waveloom.sampling.incremental import sample_naive

SR = 16000
ENGINES = ("naive", "fast", "cuda-graph")
CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "wavenet"


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run) over ``repeats`` calls."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best = min(best, (wall, cpu))
    return best


def per_step(run: Callable[[int], object], budget: float, repeats: int,
             lo: int = 16, hi: int = 40000) -> tuple[float, float]:
    """(wall, CPU) seconds per step of ``run(length)``, best of ``repeats``; the length is
    chosen from a short probe so one run takes about ``budget`` seconds."""
    run(4)  # warm-up: compilation, packing, caches
    probe = timed(lambda: run(32), 1)[0] / 32
    length = int(min(hi, max(lo, budget / max(probe, 1e-7))))
    wall, cpu = timed(lambda: run(length), repeats)
    return wall / length, cpu / length


def torch_steps(model, batch: int, g, local, length: int) -> None:
    """The loop of ``sample_incremental`` from a zero state: draw, feed back, step."""
    stack, head = model.stack, model.head
    u = draw_uniforms(0, length, batch, head.uniforms_per_step)
    stack.reset_state(batch, g)
    params = torch.zeros(batch, head.num_params)
    chunk = None
    with torch.no_grad():
        for t in range(length):
            code = head.sample(params, u[t])
            l_t = None
            if local is not None:
                if t % 1024 == 0:
                    chunk = stack.local_bias(local[..., t : t + 1024])
                l_t = chunk[t % 1024]
            params = stack.step(head.input_codes(code), l_t)
    stack.clear_state()


def fast_steps(model, batch: int, g, local, length: int, weights: str, backend: str) -> None:
    """``FastWaveNet.generate`` from a zero state (what ``sample_fast`` runs after priming)."""
    engine = FastWaveNet.for_model(model, weights, backend)
    engine.reset(batch, g)
    u = draw_uniforms(0, length, batch, model.head.uniforms_per_step)
    engine.generate(length, u, local=local, local_offset=0)


def model_and_cond(preset: str, batch: int):
    torch.manual_seed(0)
    model = build_model(load_config(CONFIGS / f"{preset}.yaml")).eval()
    cond = {"pitch": torch.full((batch,), 60), "instrument": torch.zeros(batch, dtype=torch.long)}
    return model, cond


def row(name: str, preset: str, batch: int, threads: int, per_step: tuple[float, float],
        torch_rate: float | None) -> float:
    wall, cpu = per_step
    rate = batch / wall

    def num(x: float) -> str:  # 3 significant digits for the slow engines
        return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"

    ratio = "" if torch_rate is None else f"{num(rate / torch_rate)}x"
    print(f"| {name:<26} | {preset:<6} | {batch:>2} | {threads:>2} | {num(rate):>10} | "
          f"{num(rate / SR):>8} | {num(batch / cpu / SR):>8} | {ratio:>9} |", flush=True)
    return rate


def speed(args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 1
    c_ok = cbuild.load()[0] is not None
    print("| engine | preset | B | thr | samples/s | RTF (wall) | RTF (CPU time) | vs torch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for preset in args.presets:
        for batch in args.batches:
            model, cond = model_and_cond(preset, batch)
            plan = model.sampling_plan(batch, 40000, cond, None)
            g, local = plan.g, plan.local  # conditioning for up to 40000 steps
            set_threads(1)

            def torch_run(n: int, model=model, batch=batch, g=g, local=local) -> object:
                return torch_steps(model, batch, g, local, n)

            torch_rate = row("torch (cached reference)", preset, batch, 1,
                             per_step(torch_run, args.budget, args.repeats), None)
            if "naive" in args.engines:
                naive(args, preset, batch, model, cond, torch_rate)
            if "fast" in args.engines:
                fast(args, preset, batch, model, g, local, torch_rate, c_ok, cores)
            if "cuda-graph" in args.engines and torch.cuda.is_available():
                cuda(args, preset, batch, model, cond, torch_rate)


def naive(args, preset, batch, model, cond, torch_rate) -> None:

    def naive_run(n: int) -> object:
        return sample_naive(model, batch, n, cond, seed=0, progress=False)

    first = timed(lambda: naive_run(1), 1)
    if first[0] < 4 * args.budget:  # the first call pays one-off kernel set-up
        first = timed(lambda: naive_run(1), 1)
    if first[0] < args.budget / 8:
        row("naive (re-run)", preset, batch, 1,
            per_step(naive_run, args.budget, 1, lo=4, hi=512), torch_rate)
    else:  # a sample costs a full forward over the receptive field: one is enough
        row("naive (re-run), 1 sample", preset, batch, 1, first, torch_rate)


def fast(args, preset, batch, model, g, local, torch_rate, c_ok, cores) -> None:
    variants = [("numba", "float32", 1), ("numba", "int8", 1)]
    if c_ok:
        variants = [("c", "float32", 1), ("c", "float16", 1), ("c", "int8", 1)] + variants
    if cores > 1:
        variants.append(("c" if c_ok else "numba", "float32", cores))
        if batch == 1:
            variants.append(("numba", "float32", cores))  # layer-column split
    for backend, weights, threads in variants:
        set_threads(threads)

        def fast_run(n: int, backend=backend, weights=weights, model=model, batch=batch,
                     g=g, local=local) -> object:
            return fast_steps(model, batch, g, local, n, weights, backend)

        row(f"fast {backend} {weights}", preset, batch, threads,
            per_step(fast_run, args.budget, args.repeats, lo=64), torch_rate)
    set_threads(1)


def cuda(args, preset, batch, model, cond, torch_rate) -> None:
    """The CUDA-graph engine, and the same step body run eagerly, on the GPU. Each call
    includes its one priming pass (cheap on a GPU)."""
    gmodel = model.cuda()
    gcond = {k: v.cuda() for k, v in cond.items()}
    for name, use_graph in (("cuda eager (no graph)", False), ("cuda-graph", True)):

        def graph_run(n: int, use_graph=use_graph) -> object:
            out = sample_cuda_graph(gmodel, batch, n, gcond, seed=0, progress=False,
                                    use_graph=use_graph)
            torch.cuda.synchronize()
            return out

        row(name, preset, batch, 1,
            per_step(graph_run, args.budget, args.repeats, lo=256), torch_rate)
    model.cpu()



def accuracy_row(name: str, model, codes, g, l) -> None:
    """float16 and int8 against float32 weights, teacher-forced on ``codes`` [B, T]."""
    batch, steps = codes.shape
    u = draw_uniforms(3, steps, batch, 2)
    out = {}
    for weights in ("float32", "float16", "int8"):
        if weights == "float16" and cbuild.load()[0] is None:
            continue
        eng = FastWaveNet(model.stack, model.head, weights=weights)
        eng.reset(batch, g)
        out[weights] = eng.teacher_force(codes, l, u)
    ref = out.pop("float32")
    for weights, (params, draws) in out.items():
        err = np.abs(params - ref[0]).max()
        same = (draws == ref[1]).mean()
        print(f"| {name} | {weights} | {steps} x {batch} | {err:.4f} | "
              f"{np.abs(ref[0]).max():.2f} | {same:.4f} |", flush=True)


def accuracy(args: argparse.Namespace) -> None:
    """Reduced weights against float32: random presets, then ``--checkpoint`` if given."""
    print("\n| model | weights | steps | max logit error (vs float32) | max |logit| | "
          "same code from the same uniform |")
    print("|---|---|---:|---:|---:|---:|")
    set_threads(1)
    for preset in args.presets:
        model, _ = model_and_cond(preset, 1)
        stack = model.stack
        steps = 2000 if preset != "nsynth" else 150
        gen = torch.Generator().manual_seed(1)
        batch = 2
        codes = torch.randint(0, 256, (batch, steps), generator=gen)
        g = (torch.randn(batch, stack.global_channels, generator=gen)
             if stack.global_channels else None)
        l = (torch.randn(batch, stack.local_channels, steps, generator=gen)
             if stack.local_channels else None)
        accuracy_row(f"{preset} (random)", model, codes, g, l)
    if args.checkpoint:
        model, _ = load_checkpoint(args.checkpoint, map_location="cpu")
        model.eval()
        steps, pitches = 16000, [48, 60, 72]
        cond = {"pitch": torch.tensor(pitches), "instrument": torch.arange(len(pitches))}
        codes = sample_fast(model, len(pitches), steps, cond, seed=0, progress=False)
        plan = model.sampling_plan(len(pitches), steps, cond, None)
        p = plan.prefix.shape[-1]
        history = model.head.input_codes(codes)
        local = None if plan.local is None else plan.local[..., p + 1 : p + 1 + steps]
        accuracy_row(f"{Path(args.checkpoint).stem} (own notes)", model, history, plan.g, local)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small", "nsynth"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES,
                        help="which engines besides the torch reference (always run)")
    parser.add_argument("--no-accuracy", action="store_true",
                        help="skip the float16/int8 accuracy table")
    parser.add_argument("--checkpoint", default=None,
                        help="also measure the accuracy table on this trained model")
    parser.add_argument("--budget", type=float, default=2.0,
                        help="seconds per timed run (sets the generated length)")
    args = parser.parse_args()
    lib, why = cbuild.load()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, C kernel: {'built' if lib else why}"
          + (f" (panel width {cbuild.block()})" if lib else ""))
    speed(args)
    if not args.no_accuracy:
        accuracy(args)


if __name__ == "__main__":
    main()
