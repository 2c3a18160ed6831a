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

``--floor`` also times every command making the same clips 10 ms long: its start-up (imports,
loading, writing the files), which no network however small can remove. The teacher's wall
time over a student's floor is the most any student of that command could be faster.

    python benchmarks/student_speed.py [--presets small cpu] [--n 16] [--seconds 4] [--rounds 3]
        [--teacher CKPT] [--student CKPT ...] [--floor]
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


def time_rounds(commands: dict[str, tuple[Path, bool]], args: argparse.Namespace, tmp: Path
                ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds of every command per round (alternating, so load moves all alike), and with
    ``args.floor`` of the same command making 10-ms clips -> (walls, floors) by name."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    floors: dict[str, list[float]] = {name: [] for name in commands} if args.floor else {}
    for r in range(args.rounds):
        for name, (ckpt, fast) in commands.items():
            out = tmp / name.replace(" ", "-")
            walls[name].append(command(ckpt, args.n, args.seconds, out, fast))
            if args.floor:
                floors[name].append(command(ckpt, args.n, 0.01, out, fast))
        print(f"round {r}: load {os.getloadavg()[0]:.1f}; " + ", ".join(
            f"{k} {v[-1]:.2f} s" for k, v in walls.items()), flush=True)
    return walls, floors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["small", "cpu"])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--teacher", type=Path, default=TEACHER)
    p.add_argument("--student", type=Path, nargs="*", default=[],
                   help="trained student checkpoints, timed beside the untrained presets")
    p.add_argument("--floor", action="store_true",
                   help="also time each command for 10-ms clips: its start-up floor")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        students = {name: build_student(name, Path(tmp) / f"{name}.safetensors")
                    for name in args.presets}
        students.update({path.stem if path.stem != "model" else path.parent.name:
                         (path, student_macs(path)) for path in args.student})
        commands = {"teacher (fast engine)": (args.teacher, True)}
        commands.update({f"student {k}": (v[0], False) for k, v in students.items()})
        walls, floors = time_rounds(commands, args, Path(tmp))
    audio = args.n * args.seconds
    base = statistics.median(walls["teacher (fast engine)"])
    macs = {"teacher (fast engine)": teacher_macs(args.teacher)}
    macs.update({f"student {k}": v[1] for k, v in students.items()})
    print(f"{args.n} clips x {args.seconds:g} s, {os.cpu_count()} cores, medians of "
          f"{args.rounds} rounds")
    print("| command | wall s | audio s per wall s | speed vs teacher | MACs per sample |"
          + (" start-up floor s | most speed vs teacher |" if floors else ""))
    print("|---|---:|---:|---:|---:|" + ("---:|---:|" if floors else ""))
    for name, values in walls.items():
        wall = statistics.median(values)
        row = (f"| {name} | {wall:.2f} | {audio / wall:.1f} | {base / wall:.2f}x | "
               f"{macs[name] / 1e3:,.0f}k |")
        if floors:
            floor = statistics.median(floors[name])
            row += f" {floor:.2f} | {base / floor:.1f}x |"
        print(row)


if __name__ == "__main__":
    main()
