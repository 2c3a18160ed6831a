"""Peak training memory vs window length, with and without activation checkpointing.

Each measurement runs in a fresh process (so high-water marks do not leak between runs): build
the preset's model and run one forward + backward on a batch of 1 window. Two numbers:

* activation memory: bytes of the tensors autograd saves for backward (counted exactly with
  ``saved_tensors_hooks``) -- what activation checkpointing exists to cut;
* peak growth: ``torch.cuda.max_memory_allocated`` on a GPU, or the growth of the process's
  peak RSS on a CPU (coarse: glibc keeps freed memory, so recomputation's temporaries count).

    .venv/bin/python benchmarks/memory.py --preset configs/wavenet/small.yaml

Two more measurements for issue #19 (peak RSS of a child process, from ``ru_maxrss``):

* ``--prepare-hours 2``: write a 44.1 kHz stereo file of that length with soundfile, block by
  block, then ``waveloom prepare`` it to 16 kHz in a subprocess (target: < 500 MB);
* ``--generate-minutes 60``: ``waveloom generate`` that much audio from the tiny WaveNet on the
  fast engine in a subprocess (target: < 1 GB for an hour).

    .venv/bin/python benchmarks/memory.py --prepare-hours 2 --generate-minutes 60 --skip-training
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, torch
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
preset, length, flag, device = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.set_num_threads(1)
run = load_config(preset, [f"model.checkpoint_activations={flag}"])
model = build_model(run).to(device).train()
batch = {k: v.to(device) for k, v in model.example_batch(1, model.context + length).items()}
def peak():
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
saved = {}
def pack(t):
    saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return t
base = peak()
t0 = time.perf_counter()
with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    loss = model.loss(batch)["loss"]
loss.backward()
print(json.dumps({"bytes": peak() - base, "saved": sum(saved.values()),
                  "seconds": time.perf_counter() - t0}))
"""


def measure(preset: str, length: int, flag: bool, device: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, preset, str(length), str(flag), device],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_peak_rss(argv: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of ``python -m waveloom.cli ARGV`` in a subprocess
    (``ru_maxrss`` of the waited-for children; one child per call keeps it that child's)."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
            "time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "waveloom.cli",
                          *argv], capture_output=True, text=True, check=True)
    kib, seconds = out.stdout.split()
    return int(kib) / 1024, float(seconds)


def write_long_file(path: Path, hours: float, sr: int = 44100, block: int = 1 << 20) -> None:
    """A stereo PCM_16 WAV of ``hours`` (a chirp-ish tone plus noise), written in blocks."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    total = int(hours * 3600 * sr)
    with sf.SoundFile(str(path), "w", sr, 2, "PCM_16") as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            t = (start + np.arange(n)) / sr
            tone = 0.3 * np.sin(2 * np.pi * (220 + 20 * np.sin(t / 7)) * t)
            f.write(np.stack([tone, tone], 1) + 0.01 * rng.standard_normal((n, 2)))


def prepare_rss(hours: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        write_long_file(src / "long.wav", hours)
        size = (src / "long.wav").stat().st_size / 2**30
        mib, seconds = child_peak_rss(["prepare", str(src), str(Path(tmp) / "cache"), "-q"])
    print(f"prepare of a {hours:g} h 44.1 kHz stereo WAV ({size:.2f} GiB) to 16 kHz: "
          f"peak RSS {mib:.0f} MiB, {seconds:.0f} s")


def generate_rss(minutes: float, preset: str) -> None:
    import torch

    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        run = load_config(preset)
        ckpt = save_checkpoint(Path(tmp) / "m.safetensors", build_model(run), run)
        argv = ["generate", str(ckpt), "--out", str(Path(tmp) / "out"), "--n", "1",
                "--seconds", str(minutes * 60), "--engine", "fast", "--threads", "1",
                "--device", "cpu", "-q"]
        mib, seconds = child_peak_rss(argv)
    print(f"generate {minutes:g} min from {preset} on the fast engine: peak RSS {mib:.0f} MiB, "
          f"{seconds:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="configs/wavenet/small.yaml")
    p.add_argument("--device", default="cpu")
    p.add_argument("--exponents", default="14,15,16,17")
    p.add_argument("--prepare-hours", type=float, default=None)
    p.add_argument("--generate-minutes", type=float, default=None)
    p.add_argument("--generate-preset", default="configs/wavenet/tiny.yaml")
    p.add_argument("--skip-training", action="store_true", help="only the #19 measurements")
    args = p.parse_args()
    if args.prepare_hours:
        prepare_rss(args.prepare_hours)
    if args.generate_minutes:
        generate_rss(args.generate_minutes, args.generate_preset)
    if args.skip_training:
        return
    print(f"{args.preset} on {args.device}, batch 1, one forward + backward")
    peak = "CUDA peak" if args.device == "cuda" else "peak RSS"
    print(f"{'window':>8} | activations MiB: {'plain':>6} {'ckpt':>6} {'ratio':>5} | "
          f"{peak} growth MiB: {'plain':>6} {'ckpt':>6} | seconds: {'plain':>6} {'ckpt':>6}")
    for e in (int(x) for x in args.exponents.split(",")):
        a = measure(args.preset, 2**e, False, args.device)
        b = measure(args.preset, 2**e, True, args.device)
        mib = 2**20
        print(f"{2**e:>8} | {'':17}{a['saved'] / mib:>6.0f} {b['saved'] / mib:>6.0f} "
              f"{b['saved'] / a['saved']:>5.2f} | {'':{len(peak) + 13}}{a['bytes'] / mib:>6.0f} "
              f"{b['bytes'] / mib:>6.0f} | {'':9}{a['seconds']:>6.2f} {b['seconds']:>6.2f}")


if __name__ == "__main__":
    main()
