"""Training throughput: real training steps per preset, and how much of the machine they use.

Each preset's model is built from its YAML, its registry objective (``waveloom.train.objectives``)
is configured with Lightning Fabric exactly as the trainer does it (one device, ``32`` precision
unless ``--precision``), and the timed unit is ``objective.step(model, batch, i)``: the model's
loss, backward, gradient clipping, AdamW (and, for the adversarial families, the critic steps;
for SampleRNN one update per window), EMA and schedule. Batches are the family's
``example_batch`` (random audio and labels): speed does not depend on the data.

Printed per preset and device:

* ``window samples/s``: B x T per second, T the samples each window carries (the model's
  context included, as the data set serves them; SampleRNN: x chunks).
* ``scored targets/s``: the samples the loss scores per second, B x (T - context) (x chunks).
* ``GFLOP/step``: FLOPs of forward + backward over one whole step, counted with the per-op
  formulas of ``torch.utils.flop_counter`` (:class:`FlopCount`: matmuls and convolutions with
  their backward; elementwise ops and the optimiser are not counted). For the ``wavenet``
  presets the analytic count of the stack (:func:`wavenet_flops`, formula below) is printed
  beside it as a check.
* ``GFLOP/s`` and ``% peak``: counted FLOPs per second of median step time, against the
  matmul peak of the run's precision (fp32, or bf16 for ``--precision bf16-mixed``) measured in
  the same run (``torch.mm`` of two ``--mm-size`` square matrices,
  timed once per round, interleaved with the steps, same threads; median over rounds).

Timing: ``--warmup`` steps per preset, then ``--rounds`` rounds; each round runs ``--steps``
steps of every preset in turn (interleaved, so a load change hits every preset alike) and the
matmul probe; the reported step time is the median over rounds. The load average is printed
before and after: other jobs on the machine lower every number, the ratios less.

Analytic WaveNet-stack FLOPs (multiply-add = 2 FLOPs; B windows; ``padded=False`` as shipped, so
layer ``i`` produces ``T_i = T_{i-1} - (K-1) d_i`` outputs from ``T_0 = T - 1 - (K-1)`` after the
input conv; ``padded=True`` keeps ``T_i = T``)::

    forward = 2 B [ T_0 C_in C_res K
                    + sum_i T_i (C_res 2C_dil K + L 2C_dil + C_dil C_skip + C_dil C_res [not last])
                    + T_L (C_skip C_end + C_end P) ]
    forward + backward = 3 x forward   (backward: one product for the input gradient and one
                                        for the weight gradient, each the forward's size),
                         except the local projections' 2 x (their input needs no gradient)

with C_in = C_res after an embedding (one-hot input: C_in = 256), L local channels, P head
parameters; the global conditioning (one row per window) is negligible and left out.

    PYTHONPATH=. python benchmarks/train_speed.py [--presets wavenet/small wavenet/paper-size]
        [--all-families] [--shape 4x8000] [--threads 2] [--rounds 3] [--devices cpu cuda] [--json F]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from waveloom.device import set_threads
from waveloom.models.load import load_config
from waveloom.models.registry import build_model, family_names, get_family
from waveloom.nn.wavenet import WaveNetStack
from waveloom.train.objectives import build_objective
from waveloom.train.startup import launch_fabric

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
#: A paper-size WaveNet stack (3 x 10 layers, kernel 2, residual 64 / gate 2 x 64 / skip and end
#: 256: the common reading of van den Oord et al. 2016) with the small preset's conditioning.
PAPER_SIZE = ["model.residual_channels=64", "model.dilation_channels=64",
              "model.skip_channels=256", "model.end_channels=256",
              "model.layers_per_stack=10", "model.stacks=3", "model.kernel_size=2"]
NAMED = {"wavenet/paper-size": ("wavenet/small", PAPER_SIZE)}


def preset_config(name: str, precision: str = "32", overrides: tuple[str, ...] = ()):
    """``family/preset`` (``configs/<family>/<preset>.yaml``), a named variant (NAMED) or a
    YAML path -> RunConfig, with ``train.precision`` and ``overrides`` set."""
    base, extra = NAMED.get(name, (name, []))
    path = Path(base) if base.endswith((".yaml", ".yml")) else CONFIGS / f"{base}.yaml"
    return load_config(path, [*extra, f"train.precision={precision}", *overrides])


def use_reference_stack(model: torch.nn.Module) -> int:
    """Make every ``WaveNetStack`` in ``model`` run its plain reference path
    (``forward(..., reference=True)``); returns how many there are."""
    stacks = [m for m in model.modules() if isinstance(m, WaveNetStack)]
    for stack in stacks:
        stack.forward = functools.partial(WaveNetStack.forward, stack, reference=True)
    return len(stacks)


def parse_shape(text: str | None) -> tuple[int, int] | None:
    """``'4x8000'`` -> (4, 8000): windows per batch x samples each window carries."""
    if text is None:
        return None
    b, t = text.lower().split("x")
    return int(b), int(t)


# ------------------------------------------------------------------ FLOPs


class FlopCount(TorchDispatchMode):
    """Forward + backward FLOPs of what runs inside it, by ``torch.utils.flop_counter``'s
    per-op formulas (``flop_registry``: the ones ``FlopCounterMode`` uses) and its rule of
    decomposing ops it has no formula for. ``FlopCounterMode`` itself is not used: its module
    tracker fails on a double backward (the WGAN-GP gradient penalty)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    #: In-place ops counted by their out-of-place formula (the fast stack accumulates its
    #: dilated taps with ``addmm_``).
    INPLACE = {torch.ops.aten.addmm_: torch.ops.aten.addmm}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func._overloadpacket
        packet = self.INPLACE.get(packet, packet)
        if packet not in flop_registry and func is not torch.ops.prim.device.default:
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        if packet in flop_registry:
            self.total += int(flop_registry[packet](*args, **kwargs, out_val=out))
        return out


def wavenet_flops(stack: WaveNetStack, batch: int, t_in: int, padded: bool) -> float:
    """Analytic forward + backward FLOPs of ``stack`` on ``batch`` windows of ``t_in`` input
    codes (see the module docstring for the formula)."""
    k = stack.input_conv.kernel_size[0]
    c_in = stack.input_conv.in_channels
    c_res, c_dil = stack.residual_channels, stack.dilation_channels
    t = t_in if padded else t_in - (k - 1)
    macs = t * c_in * c_res * k
    for block in stack.blocks:
        kb, d = block.conv.kernel_size[0], block.conv.dilation[0]
        t = t if padded else t - (kb - 1) * d
        per = c_res * 2 * c_dil * kb
        per += 0 if block.res is None else c_dil * c_res
        macs += t * per
        if block.local_proj is not None:  # no input gradient: 2/3 of a 3x layer
            macs += t * block.local_proj.in_channels * 2 * c_dil * 2 / 3
    # The skip 1x1s run only on the positions the output reads (the last block's length), as
    # nn/wavenet_fast.py computes them in one product.
    macs += t * sum(block.skip_channels * c_dil for block in stack.blocks)
    macs += t * (stack.out1.in_channels * stack.out1.out_channels
                 + stack.out2.in_channels * stack.out2.out_channels)
    return 3.0 * 2.0 * batch * macs


# ------------------------------------------------------------------ timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int = 1) -> float:
    """Seconds per call of ``fn`` (``repeats`` calls, device synchronised at both ends)."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / repeats


def matmul_peak(device: torch.device, n: int, dtype: torch.dtype = torch.float32
                ) -> Callable[[], float]:
    """A probe returning the GFLOP/s of one ``torch.mm`` of two n x n matrices of ``dtype``
    (bfloat16 for a bf16-mixed run: its GEMMs run at that peak, about 2.3x fp32 on a CPU with
    AVX512-BF16)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up

    def probe() -> float:
        return 2.0 * n**3 / timed(lambda: torch.mm(a, b, out=out), device) / 1e9

    return probe


@dataclass
class Case:
    """One thing to time: a label, a zero-argument step and the work one step does."""

    label: str
    device: torch.device
    step: Callable[[], Any]
    shape: tuple[int, int]
    params: int
    window_samples: int
    targets: int
    flops: float | None = None  # counted, forward + backward
    analytic: float | None = None  # WaveNet stack formula
    times: list[float] = field(default_factory=list)
    objective: Any = None  # the configured objective (the profiler labels its parts)

    def row(self, peak: float | None) -> dict[str, Any]:
        sec = statistics.median(self.times)
        gflops = None if self.flops is None else self.flops / sec / 1e9
        return {
            "preset": self.label, "device": self.device.type,
            "shape": f"{self.shape[0]}x{self.shape[1]}", "params": self.params,
            "ms_per_step": 1e3 * sec, "steps_timed": len(self.times),
            "window_samples_per_s": self.window_samples / sec,
            "scored_targets_per_s": self.targets / sec,
            "gflop_per_step": None if self.flops is None else self.flops / 1e9,
            "gflop_per_step_analytic": None if self.analytic is None else self.analytic / 1e9,
            "gflop_per_s": gflops,
            "fraction_of_mm_peak": None if gflops is None or not peak else gflops / peak,
        }


def run_rounds(cases: list[Case], probe: Callable[[], float], rounds: int, steps: int,
               warmup: int) -> list[float]:
    """Warm every case up, then ``rounds`` interleaved rounds; returns the probe's GFLOP/s per
    round (each case's per-step seconds go to its ``times``)."""
    for case in cases:
        for _ in range(warmup):
            case.step()
    peaks = []
    for _ in range(rounds):
        peaks.append(probe())
        for case in cases:
            case.times.append(timed(case.step, case.device, steps))
    return peaks


# ------------------------------------------------------------------ building a case


def sequence_batch(model: torch.nn.Module, b: int, t: int, chunks: int) -> dict[str, Any]:
    """A truncated-BPTT batch: ``chunks`` consecutive windows of ``t`` samples (context
    included) per sequence, 'audio' [b, chunks, t]; other keys per sequence."""
    ctx = model.context
    whole = model.example_batch(b, chunks * (t - ctx) + ctx)
    audio = whole["audio"]
    whole["audio"] = torch.stack(
        [audio[:, j * (t - ctx): j * (t - ctx) + t] for j in range(chunks)], dim=1)
    return whole


def build_case(name: str, device: torch.device, shape: tuple[int, int] | None,
               precision: str = "32", count_flops: bool = True, overrides: tuple[str, ...] = (),
               reference: bool = False) -> Case:
    """Model, objective (through Fabric, as the trainer sets them up) and batch of one preset;
    the returned case's ``step`` runs one training step. ``reference``: the model's WaveNet
    stacks run their plain reference path; ``overrides``: config overrides
    (``train.compile=true``)."""
    cfg = preset_config(name, precision, overrides)
    torch.manual_seed(0)
    model = build_model(cfg)
    if reference:
        use_reference_stack(model)
    objective = build_objective(get_family(cfg.family).objective)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fabric = launch_fabric(cfg, device.type, [device.index or 0] if device.type == "cuda"
                               else 1, 1, "auto")
    model.train()
    wrapped = objective.configure(model, cfg, fabric)
    b, t = shape or (cfg.data.batch_size, cfg.data.window + model.context)
    chunks = cfg.data.chunks if objective.dataset_kind == "sequences" else 1
    batch = (sequence_batch(model, b, t, chunks) if chunks > 1 or
             objective.dataset_kind == "sequences" else model.example_batch(b, t))
    batch = fabric.to_device(batch)
    counter = iter(range(1 << 62))

    def step() -> Any:
        return objective.step(wrapped, batch, next(counter))

    stack = getattr(model, "stack", None)
    case = Case(label=name, device=device, step=step, shape=(b, t), objective=objective,
                params=sum(p.numel() for p in model.parameters()),
                window_samples=b * t * chunks, targets=b * (t - model.context) * chunks,
                analytic=wavenet_flops(stack, b, t - 1, padded=False)
                if name.startswith("wavenet/") and isinstance(stack, WaveNetStack) else None)
    if count_flops:
        with FlopCount() as count:
            step()
        case.flops = float(count.total)
    return case


# ------------------------------------------------------------------ report


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict[str, Any]], peak: dict[str, float], kind: str = "fp32") -> None:
    head = (f"{'preset':<22}{'dev':>5}{'BxT':>10}{'params':>11}{'ms/step':>10}"
            f"{'window smp/s':>14}{'targets/s':>12}{'GFLOP/step':>12}{'analytic':>10}"
            f"{'GFLOP/s':>9}{'% peak':>8}")
    print(head)
    for r in rows:
        frac = r["fraction_of_mm_peak"]
        print(f"{r['preset']:<22}{r['device']:>5}{r['shape']:>10}{r['params']:>11,}"
              f"{r['ms_per_step']:>10.1f}{r['window_samples_per_s']:>14,.0f}"
              f"{r['scored_targets_per_s']:>12,.0f}{_fmt(r['gflop_per_step'], '.2f'):>12}"
              f"{_fmt(r['gflop_per_step_analytic'], '.2f'):>10}"
              f"{_fmt(r['gflop_per_s'], '.1f'):>9}"
              f"{_fmt(None if frac is None else 100 * frac, '.1f'):>8}")
    for dev, value in peak.items():
        print(f"{kind} matmul peak ({dev}, median over rounds): {value:.1f} GFLOP/s")


#: The small presets of every family whose model trains through the WaveNet stack.
STACK_PRESETS = ["wavenet/small", "wavenet/paper-size", "nsynth_ae/small", "ada/small",
                 "code_prior/small"]


def compare(args: argparse.Namespace, mode: str) -> list[dict[str, Any]]:
    """Paired timing in one process: per preset, the new variant and its baseline run side by
    side in every round (``mode`` 'reference': the fast stack vs ``reference=True``;
    'compile': ``train.compile=true`` vs eager). The speed-up is the median over rounds of
    each round's baseline / new step time, so load that changes between rounds cancels."""
    device = torch.device((args.devices or ["cpu"])[0])
    names = args.presets or (STACK_PRESETS if mode == "reference" else DEFAULT_PRESETS)
    shape = parse_shape(args.shape)
    pairs = []
    for name in names:
        base = build_case(name, device, shape, args.precision, False, reference=mode == "reference")
        new = build_case(name, device, shape, args.precision, False, overrides=(
            ("train.compile=true", f"train.compile_backend={args.compile_backend}")
            if mode == "compile" else ()))
        first = timed(new.step, device)  # compiles when mode == 'compile'
        pairs.append((name, new, base, first))
    run_rounds([c for _, new, base, _ in pairs for c in (new, base)], lambda: 0.0,
               args.rounds, args.steps, args.warmup)
    rows = []
    for name, new, base, first in pairs:
        speedup = statistics.median(b / n for b, n in zip(base.times, new.times))
        rows.append({"preset": name, "shape": f"{new.shape[0]}x{new.shape[1]}", "mode": mode,
                     "new_ms": 1e3 * statistics.median(new.times),
                     "baseline_ms": 1e3 * statistics.median(base.times),
                     "speedup": speedup, "first_step_s": first})
    label = {"reference": ("fast", "reference", "fast/ref"),
             "compile": ("compiled", "eager", "compiled/eager")}[mode]
    print(f"{'preset':<22}{'BxT':>10}{label[0] + ' ms':>14}{label[1] + ' ms':>14}"
          f"{'speed ' + label[2]:>22}{'first step s':>14}")
    for r in rows:
        print(f"{r['preset']:<22}{r['shape']:>10}{r['new_ms']:>14.1f}{r['baseline_ms']:>14.1f}"
              f"{r['speedup']:>22.2f}{r['first_step_s']:>14.1f}")
    return rows


def machine_info(threads: int) -> dict[str, Any]:
    info = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "threads": threads, "cores": os.cpu_count(), "loadavg_start": os.getloadavg()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=None,
                    help="family/preset, wavenet/paper-size, or a YAML path (default: "
                         "wavenet/small and wavenet/paper-size; with --compare-reference every "
                         "family on the WaveNet stack)")
    ap.add_argument("--compare-reference", action="store_true",
                    help="time the fast and the reference WaveNet stack interleaved and print "
                         "fast/reference speed per preset")
    ap.add_argument("--compare-compile", action="store_true",
                    help="time train.compile=true against eager interleaved (compile time: "
                         "the first step)")
    ap.add_argument("--compile-backend", default="inductor")
    ap.add_argument("--all-families", action="store_true",
                    help="also every registered family's small preset")
    ap.add_argument("--shape", help="BxT for every preset (default: the preset's data.batch_size "
                                    "x data.window + context)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1, help="steps per preset per round")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--devices", nargs="+", default=None,
                    help="default: cpu, and cuda when present")
    ap.add_argument("--precision", default="32", help="train.precision (default 32)")
    ap.add_argument("--mm-size", type=int, default=0,
                    help="matmul probe size (default 2048 on a CPU, 8192 on a GPU)")
    ap.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    ap.add_argument("--json", help="also write the rows and machine info here")
    return ap.parse_args(argv)


DEFAULT_PRESETS = ["wavenet/small", "wavenet/paper-size"]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    if args.compare_reference or args.compare_compile:
        info = machine_info(args.threads)
        print(f"torch {info['torch']}, {args.threads} thread(s), "
              f"load average {info['loadavg_start'][0]:.2f}")
        rows = [row for mode, on in (("reference", args.compare_reference),
                                     ("compile", args.compare_compile)) if on
                for row in compare(args, mode)]
        info["loadavg_end"] = os.getloadavg()
        print(f"load average at the end: {info['loadavg_end'][0]:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
        return
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    names = list(args.presets or DEFAULT_PRESETS)
    if args.all_families:
        names += [f"{f}/small" for f in family_names() if f"{f}/small" not in names]
    info = machine_info(args.threads)
    print(f"torch {info['torch']}, {info['cpu']}, {args.threads} thread(s), "
          f"load average {info['loadavg_start'][0]:.2f}")
    rows, peaks = [], {}
    for dev in devices:
        device = torch.device(dev)
        cases = [build_case(n, device, parse_shape(args.shape), args.precision,
                            not args.no_flops) for n in names]
        size = args.mm_size or (8192 if device.type == "cuda" else 2048)
        dtype = torch.bfloat16 if args.precision.startswith("bf16") else torch.float32
        per_round = run_rounds(cases, matmul_peak(device, size, dtype), args.rounds, args.steps,
                               args.warmup)
        peaks[device.type] = statistics.median(per_round)
        rows += [case.row(peaks[device.type]) for case in cases]
    info["loadavg_end"] = os.getloadavg()
    print_table(rows, peaks, "bf16" if args.precision.startswith("bf16") else "fp32")
    print(f"load average at the end: {info['loadavg_end'][0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "mm_peak_gflops": peaks,
                                               "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
