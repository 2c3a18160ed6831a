"""The whole ``waveloom generate`` command beside the fast engine's steady loop, in one run.

Issue 21 measured the command at 1.2x real time while ``benchmarks/sampling.py`` promised
more: this puts the two side by side, interleaved round by round (the machine is shared, so
its load moves both the same way), on the shipped checkpoint:

* ``command S s``: ``python -m waveloom.cli generate CKPT --seconds S --n N --engine fast``
  in a subprocess, start-up, WAVs and spectrograms included (wall and CPU seconds);
* ``start-up``: the same command for 0.05 s of audio (imports, loading, C kernel cache
  lookup, priming, writing, plotting: everything but the loop);
* ``CLI loop``: (N x samples of S - N x samples of 0.05 s) / (wall(S) - wall(0.05 s)),
  samples per second over all streams;
* ``steady``: ``benchmarks/sampling.py``'s fast loop (``FastWaveNet.generate`` from a zero
  state, the same N streams and thread defaults) in this process.

Every command runs with a cache of its own (``WAVELOOM_CACHE``, the built C kernel copied in):
the first one, timed apart as ``first command``, packs the model (with torch; see
:mod:`waveloom.app._generate_packed`), and the rounds after it run the pack without importing
torch, as every later command on the same checkpoint does. Printed per round with the
1-minute load average; the summary takes each figure's median and the real-time factor
(seconds of audio per stream / wall seconds of the command).

    .venv/bin/python benchmarks/generate_command.py [--seconds 10 60] [--n 4] [--rounds 3]
        [--weights float32|float16] [--root OTHER_CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CKPT = ROOT / "waveloom" / "assets" / "wavenet-small-notes.safetensors"
SR = 16000
TINY = 0.05  # seconds: the start-up run


#: Every round's figures by name (kept for --record's range).
_ROWS: dict[str, list[float]] = {}


#: The commands' own cache (set by main): packs written by the first command.
_CACHE: list[Path] = []


def command(seconds: float, n: int, out: Path, root: Path = ROOT,
            weights: str = "float32", ckpt: Path = CKPT, engine: str = "fast"
            ) -> tuple[float, float]:
    """(wall, CPU) seconds of the whole CLI command in a subprocess, running the waveloom of
    ``root`` (another checkout: a before/after comparison)."""
    argv = [sys.executable, "-m", "waveloom.cli", "generate", str(ckpt), "--seconds",
            str(seconds), "--n", str(n), "--engine", engine, "--out", str(out), "-q"]
    if weights != "float32":  # an older checkout may not know the flag
        argv += ["--weights", weights]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(root))
    if _CACHE:
        env["WAVELOOM_CACHE"] = str(_CACHE[0])
    subprocess.run(argv, check=True, cwd=root, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def steady_rate(model, n: int, seconds: float, weights: str = "float32") -> float:
    """Samples/s (all streams) of the fast loop from a zero state, as benchmarks/sampling.py
    times it (no priming, no writing)."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from sampling import fast_steps

    cond = {"pitch": torch.full((n,), 60), "instrument": torch.zeros(n, dtype=torch.long)}
    length = int(seconds * SR)
    plan = model.sampling_plan(n, length, cond, None)
    fast_steps(model, n, plan.g, plan.local, 64, weights, "auto")  # warm-up
    t0 = time.perf_counter()
    fast_steps(model, n, plan.g, plan.local, length, weights, "auto")
    return n * length / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    p.add_argument("--n", type=int, default=4, help="streams (the command's default is 4)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--weights", default="float32", help="the command's --weights")
    p.add_argument("--checkpoint", type=Path, default=CKPT,
                   help="the WaveNet to time (default: the shipped wavenet-small-notes)")
    p.add_argument("--root", type=Path, default=ROOT,
                   help="the checkout whose command is timed (default: this one)")
    p.add_argument("--engine", default="fast",
                   help="the command's --engine; not 'fast' (a SampleRNN, which has no fast "
                        "engine: use auto) times the command alone, with no steady loop")
    p.add_argument("--record", action="store_true",
                   help="add each length's whole-command real-time factor to the shipped "
                        "model's card (waveloom models)")
    args = p.parse_args()

    from waveloom.models.load import load_checkpoint
    from waveloom.sampling.fast import engine_threads

    model, _ = load_checkpoint(args.checkpoint)
    print(f"{args.checkpoint.name}, n={args.n}, weights {args.weights}, "
          f"fast engine threads {engine_threads()}, "
          f"{os.cpu_count()} cores")
    rows = _ROWS
    with tempfile.TemporaryDirectory() as tmp:
        _CACHE.append(_own_cache(Path(tmp) / "cache"))
        s0 = args.seconds[0]
        first, first_cpu = command(s0, args.n, Path(tmp) / "first", args.root, args.weights,
                                   args.checkpoint, args.engine)
        print(f"first command ({s0:g} s, an empty cache: packs the model): {first:.2f} s "
              f"({first_cpu:.2f} CPU, {s0 / first:.2f}x real time)")
        for r in range(args.rounds):
            start, start_cpu = command(TINY, args.n, Path(tmp) / "s", args.root, args.weights,
                                       args.checkpoint, args.engine)
            rows.setdefault("start-up", []).append(start)
            rows.setdefault("start-up cpu", []).append(start_cpu)
            line = [f"round {r}: load {os.getloadavg()[0]:.1f}",
                    f"start-up {start:.2f} s ({start_cpu:.2f} CPU)"]
            for s in args.seconds:
                wall, cpu = command(s, args.n, Path(tmp) / f"c{s:g}", args.root, args.weights,
                                    args.checkpoint, args.engine)
                steady = (steady_rate(model, args.n, min(s, 10.0), args.weights)
                          if args.engine == "fast" else float("nan"))
                cli = args.n * (s - TINY) * SR / max(wall - start, 1e-9)
                for key, v in ((f"wall {s:g}", wall), (f"cpu {s:g}", cpu), (f"cli {s:g}", cli),
                               (f"steady {s:g}", steady)):
                    rows.setdefault(key, []).append(v)
                line.append(f"{s:g} s: command {wall:.2f} s ({cpu:.2f} CPU, {s / wall:.2f}x "
                            f"real time), CLI loop {cli:,.0f}/s, steady {steady:,.0f}/s "
                            f"(ratio {cli / steady:.2f})")
            print("; ".join(line), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"medians of {args.rounds} rounds, load now {os.getloadavg()[0]:.1f}")
    print("| seconds | command s (CPU s) | real time per stream | all streams | start-up s "
          "(CPU s) | CLI loop /s | steady /s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in args.seconds:
        wall, cli, steady = med[f"wall {s:g}"], med[f"cli {s:g}"], med[f"steady {s:g}"]
        print(f"| {s:g} | {wall:.2f} ({med[f'cpu {s:g}']:.2f}) | {s / wall:.2f}x | "
              f"{args.n * s / wall:.2f}x | "
              f"{med['start-up']:.2f} ({med['start-up cpu']:.2f}) | {cli:,.0f} | {steady:,.0f} | "
              f"{cli / steady:.2f} |")
    if args.record:
        print(f"recorded in {_record(args, med)}")


def _own_cache(folder: Path) -> Path:
    """An empty cache holding only the built C kernel (no compile, no pack)."""
    import shutil

    from waveloom.sampling import cbuild

    folder.mkdir(parents=True)
    name = cbuild.library_name()
    if name is not None:
        shutil.copy(cbuild.cache_dir() / name, folder / name)
    return folder


def _record(args: argparse.Namespace, med: dict[str, float]) -> Path:
    """Real time (seconds of audio per stream / wall seconds of the whole command) per length,
    with the range over rounds as the interval: a shared machine's spread, not a CI."""
    from waveloom.zoo.records import Measurement, command_line, record

    path = None
    for s in args.seconds:
        walls = _ROWS[f"wall {s:g}"]
        path = record(args.checkpoint, Measurement(
            metric=f"whole generate command, {s:g} s x {args.n} streams, "
                   + ("fast engine" if args.engine == "fast" else f"engine {args.engine}")
                   + ("" if args.weights == "float32" else f", {args.weights} weights"),
            value=round(s / med[f"wall {s:g}"], 2), unit="x real time",
            data=f"{args.checkpoint.stem} on {os.cpu_count()} CPU cores (a shared machine: "
                 "the interval is the range over the rounds)",
            command=command_line(sys.argv[1:], "benchmarks/generate_command.py"),
            n=args.rounds, interval=(round(s / max(walls), 2), round(s / min(walls), 2)),
            higher_is_better=True))
    return path


if __name__ == "__main__":
    main()
