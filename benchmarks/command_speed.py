"""Any ``waveloom`` verb timed as a whole command, as a user meets it: start-up included.

Issue 30's cards hold each shipped model's speed "as a whole command"; ``generate_command.py``
times ``generate`` on the sampling engines, this times the others (``transfer``,
``transcribe``, a Music Transformer's ``generate``, an autoencoder's resynthesis) the same way:
``python -m waveloom.cli VERB ARGS...`` in a subprocess, ``--rounds`` times, each writing to a
fresh folder (``{out}`` in ARGS), with the 1-minute load average beside each round. The speed
is seconds of audio (or music) per wall second: ``--seconds S``, or the duration of
``--input FILE`` (``{input}`` in ARGS) for a verb that reads audio.

    python benchmarks/command_speed.py --input IN.wav [--rounds 3] [--record CKPT] \
        -- transfer CKPT {input} --out {out} -q

``--record CKPT`` adds the median to CKPT's card (``waveloom models``) as "whole VERB command",
with the range over the rounds as its interval (a shared machine's spread, not a CI) and this
command line, the input's making included when ``--made-by`` gives it.
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


def run_once(argv: list[str], out: Path, source: Path | None) -> tuple[float, float]:
    """(wall, CPU) seconds of ``waveloom ARGV`` in a subprocess."""
    args = [a.replace("{out}", str(out)).replace("{input}", str(source or "")) for a in argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "waveloom.cli", *args], capture_output=True,
                          text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"waveloom {' '.join(args)} failed ({proc.returncode}): "
                 f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def audio_seconds(args: argparse.Namespace) -> float:
    if args.input is None:
        if args.seconds is None:
            sys.exit("give --seconds (audio made) or --input (audio read)")
        return args.seconds
    import soundfile as sf

    if not args.input.is_file():
        sys.exit(f"--input {args.input}: no such file" + (f"; make it with: {args.made_by}"
                                                            if args.made_by else ""))
    return sf.info(str(args.input)).duration


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, help="seconds of audio the command makes")
    p.add_argument("--input", type=Path, help="the audio the command reads ({input})")
    p.add_argument("--made-by", default="", help="the command that makes --input (recorded)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--record", type=Path, metavar="CKPT", help="add the figure to CKPT's card")
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- VERB ARGS ({out}, {input})")
    args = p.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        sys.exit("give the command after --, e.g. -- transfer CKPT {input} --out {out} -q")
    seconds = audio_seconds(args)
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            wall, cpu = run_once(argv, Path(tmp) / f"r{r}", args.input)
            walls.append(wall)
            cpus.append(cpu)
            print(f"round {r + 1}: {wall:.2f} s wall ({cpu:.2f} CPU s), "
                  f"{seconds / wall:.2f}x real time, load {os.getloadavg()[0]:.1f}", flush=True)
    wall = statistics.median(walls)
    print(f"waveloom {' '.join(argv)}: {seconds:g} s of audio, median {wall:.2f} s wall "
          f"({statistics.median(cpus):.2f} CPU s) = {seconds / wall:.2f}x real time "
          f"[{seconds / max(walls):.2f}, {seconds / min(walls):.2f}] over {args.rounds} rounds")
    if args.record:
        _record(args, argv, seconds, walls)


def _record(args: argparse.Namespace, argv: list[str], seconds: float,
            walls: list[float]) -> None:
    import shlex

    from waveloom.zoo.records import Measurement, record

    given, kept, skip = sys.argv[1:], [], False
    for i, token in enumerate(given):  # drop "--record CKPT": the command reproduces
        if skip or token.startswith("--record="):
            skip = False
            continue
        if token == "--record" and "--" not in given[:i]:
            skip = True
            continue
        kept.append(token)
    command = shlex.join(["python", "benchmarks/command_speed.py", *kept])
    made = f"{args.made_by} && " if args.made_by else ""
    source = f"{args.input} ({seconds:.1f} s)" if args.input else f"{seconds:g} s made"
    path = record(args.record, Measurement(
        metric=f"whole {argv[0]} command" + (f", {seconds:g} s" if not args.input else ""),
        value=round(seconds / statistics.median(walls), 2), unit="x real time",
        data=f"{source} on {os.cpu_count()} CPU cores, start-up included (a shared machine: "
             "the interval is the range over the rounds)",
        command=made + command, n=args.rounds,
        interval=(round(seconds / max(walls), 2), round(seconds / min(walls), 2)),
        higher_is_better=True))
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
