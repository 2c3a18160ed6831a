"""`waveloom transfer` speed as a whole command (issue #22: >= 5x real time on 2 cores).

Runs ``python -m waveloom.cli transfer CKPT AUDIO --out TMP --f0-method yin`` as a subprocess
``--rounds`` times (wall clock, start-up included) and prints the best and median wall time and
x real time; then one instrumented subprocess that does the same steps as the verb and times
each: imports (waveloom.cli and torch), load (checkpoint -> model), f0 (f0, confidence and
loudness), render, write. The 1-minute load average is printed before and after: on a shared
machine it is the main source of variance.

    python benchmarks/transfer_speed.py CKPT [AUDIO] [--rounds 3] [--f0-method yin] [--root DIR]

AUDIO defaults to data/ddsp-flute/2024/bach-bwv277-alto.wav (37.75 s). Results: docs/ddsp.md.
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

import soundfile as sf

DEFAULT_AUDIO = Path("data/ddsp-flute/2024/bach-bwv277-alto.wav")

# What the instrumented run executes (the same calls as waveloom.app.ddsp.run, one input).
SPLIT = r"""
import json, sys, time
t0 = time.perf_counter()
import argparse
from pathlib import Path
import waveloom.cli  # noqa: F401  (what the command imports first)
from waveloom.app import ddsp
from waveloom.audio.io import load_audio, save_audio
from waveloom.models.ddsp.perform import audio_controls, render
t1 = time.perf_counter()
ckpt, audio_path, out, method = sys.argv[1:5]
import contextlib
threads = getattr(ddsp, '_threads', contextlib.nullcontext)()  # older checkouts: none
threads.__enter__()  # the verb's thread settings (kept referenced: not closed)
model = ddsp._load(argparse.Namespace(checkpoint=Path(ckpt), instrument=None, device="cpu"))
t2 = time.perf_counter()
audio, _ = load_audio(Path(audio_path), model.config.sample_rate)
controls = audio_controls(model, audio, audio_path, f0_method=method)
t3 = time.perf_counter()
wave = render(model, controls, 0, length=len(audio))
t4 = time.perf_counter()
save_audio(Path(out) / "split.wav", wave, model.config.sample_rate)
t5 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "load": t2 - t1, "f0": t3 - t2, "render": t4 - t3,
                  "write": t5 - t4}))
"""


def _load_average() -> float:
    return os.getloadavg()[0]


# the checkout timed (--root); the runs start in it, as python puts the working folder first
ROOT = [Path(__file__).resolve().parents[1]]


def _env() -> dict[str, str]:
    root = str(ROOT[0])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def whole_command(ckpt: Path, audio: Path, out: Path, method: str) -> float:
    """Wall seconds of one ``waveloom transfer`` run (a fresh interpreter)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "waveloom.cli", "transfer", str(ckpt), str(audio),
                    "--out", str(out), "--f0-method", method, "-q"],
                   check=True, env=_env(), cwd=ROOT[0], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def split(ckpt: Path, audio: Path, out: Path, method: str) -> dict[str, float]:
    """Seconds per step of one instrumented run (a fresh interpreter)."""
    done = subprocess.run([sys.executable, "-c", SPLIT, str(ckpt), str(audio), str(out), method],
                          check=True, env=_env(), cwd=ROOT[0], capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a ddsp model.safetensors")
    parser.add_argument("audio", type=Path, nargs="?", default=DEFAULT_AUDIO)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--f0-method", default="yin")
    parser.add_argument("--root", type=Path, default=ROOT[0],
                        help="the waveloom checkout to time (default: this one)")
    args = parser.parse_args()
    ROOT[0] = args.root.resolve()
    args.checkpoint, args.audio = args.checkpoint.resolve(), args.audio.resolve()
    for path in (args.checkpoint, args.audio):
        if not path.is_file():
            sys.exit(f"{path}: not found (CKPT: train configs/ddsp/small.yaml; AUDIO: any file)")
    seconds = sf.info(str(args.audio)).duration
    load_before = _load_average()
    with tempfile.TemporaryDirectory() as tmp:
        walls = [whole_command(args.checkpoint, args.audio, Path(tmp), args.f0_method)
                 for _ in range(args.rounds)]
        parts = split(args.checkpoint, args.audio, Path(tmp), args.f0_method)
    best, median = min(walls), statistics.median(walls)
    print(f"input {seconds:.2f} s, --f0-method {args.f0_method}, {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} -> {_load_average():.1f}")
    print(f"whole command: best {best:.2f} s ({seconds / best:.1f}x real time), median "
          f"{median:.2f} s ({seconds / median:.1f}x) of {args.rounds}")
    print("split (one run): " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))


if __name__ == "__main__":
    main()
