"""Whole-command speed of a distilled student against the teacher's fast engine.

Issue 26's goal is a student at least 20x faster than the WaveNet teacher's fast engine, as a
user meets it: ``waveloom generate`` for 16 clips of 4 s, start-up included. The speed of a
network does not depend on what it learnt, so this times students built at each preset's
size with untrained weights (their teacher's shape recorded from
``configs/wavenet/teacher.yaml``), and ``--student CKPT`` a trained one, beside the teacher
(``--teacher``, default the shipped ``wavenet-gaussian-notes``, which is that teacher) on
``--engine fast``. The commands alternate round by round, so the machine's load moves all of
them alike.

Printed: the wall time of each command (median over ``--rounds``), seconds of audio per wall
second (all clips), the teacher/student ratio, and each network's multiply-adds per sample
(the cost a parallel pass cannot avoid; the fast engine's loop runs one sample of each clip at
a time).

    python benchmarks/student_speed.py [--presets small cpu] [--n 16] [--seconds 4] [--rounds 3]
        [--teacher CKPT] [--student CKPT ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEACHER = ROOT / "waveloom" / "assets" / "wavenet-gaussian-notes.safetensors"


def build_student(preset: str, out: Path) -> tuple[Path, float]:
    """An untrained student of ``configs/student/PRESET.yaml`` saved to ``out`` -> (path,
    multiply-adds per sample of its flows)."""
    import torch

    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    teacher = load_config(ROOT / "configs" / "wavenet" / "teacher.yaml").to_dict()
    run = load_config(ROOT / "configs" / "student" / f"{preset}.yaml",
                      [f"model.teacher_config={json.dumps(json.dumps(teacher))}"])
    torch.manual_seed(0)
    model = build_model(run)
    macs = sum(p.numel() for name, p in model.iaf.named_parameters()
               if name.endswith("weight") and p.dim() == 3)
    return save_checkpoint(out, model, run), float(macs)


def student_macs(ckpt: Path) -> float:
    """Multiply-adds per sample of a saved student's flows."""
    from waveloom.models.load import load_checkpoint

    model, _ = load_checkpoint(ckpt)
    return float(sum(p.numel() for name, p in model.iaf.named_parameters()
                     if name.endswith("weight") and p.dim() == 3))


def teacher_macs(teacher: Path) -> float:
    """Multiply-adds per sample of the teacher WaveNet's step (its conv and 1x1 weights)."""
    from waveloom.models.load import load_checkpoint

    model, _ = load_checkpoint(teacher)
    return float(sum(p.numel() for name, p in model.stack.named_parameters()
                     if name.endswith("weight") and p.dim() == 3 and "embed" not in name))


def command(ckpt: Path, n: int, seconds: float, out: Path, fast: bool) -> float:
    argv = [sys.executable, "-m", "waveloom.cli", "generate", str(ckpt), "--n", str(n),
            "--seconds", str(seconds), "--out", str(out), "-q", "--pitch", "60",
            "--instrument", "1"] + (["--engine", "fast"] if fast else [])
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["small", "cpu"])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--teacher", type=Path, default=TEACHER)
    p.add_argument("--student", type=Path, nargs="*", default=[],
                   help="trained student checkpoints, timed beside the untrained presets")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        students = {name: build_student(name, Path(tmp) / f"{name}.safetensors")
                    for name in args.presets}
        students.update({path.stem if path.stem != "model" else path.parent.name:
                         (path, student_macs(path)) for path in args.student})
        walls: dict[str, list[float]] = {"teacher (fast engine)": []}
        for r in range(args.rounds):
            walls["teacher (fast engine)"].append(
                command(args.teacher, args.n, args.seconds, Path(tmp) / "t", fast=True))
            for name, (ckpt, _) in students.items():
                walls.setdefault(f"student {name}", []).append(
                    command(ckpt, args.n, args.seconds, Path(tmp) / name, fast=False))
            print(f"round {r}: load {os.getloadavg()[0]:.1f}; " + ", ".join(
                f"{k} {v[-1]:.2f} s" for k, v in walls.items()), flush=True)
    audio = args.n * args.seconds
    base = statistics.median(walls["teacher (fast engine)"])
    macs = {"teacher (fast engine)": teacher_macs(args.teacher)}
    macs.update({f"student {k}": v[1] for k, v in students.items()})
    print(f"{args.n} clips x {args.seconds:g} s, {os.cpu_count()} cores, medians of "
          f"{args.rounds} rounds")
    print("| command | wall s | audio s per wall s | speed vs teacher | MACs per sample |")
    print("|---|---:|---:|---:|---:|")
    for name, values in walls.items():
        wall = statistics.median(values)
        print(f"| {name} | {wall:.2f} | {audio / wall:.1f} | {base / wall:.2f}x | "
              f"{macs[name] / 1e3:,.0f}k |")


if __name__ == "__main__":
    main()
