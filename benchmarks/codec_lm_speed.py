"""How fast a codec token LM makes audio: tokens a second, and the whole command (issue 24).

On one checkpoint, in one run (the machine is shared, so rounds interleave the conditions):

* ``draw``: :func:`waveloom.sampling.codec_lm.sample_codes` for ``--seconds`` of codes, KV
  cache on, with guidance (``--cfg``; one batch of 2n rows: labelled and unlabelled) and
  without (cfg 1); tokens a second = frames x codebooks / wall seconds, per stream;
* ``decode``: the codec's streaming decoder on those codes (audio seconds / wall seconds);
* ``command``: ``python -m waveloom.cli generate LM --seconds S --n N`` in a subprocess,
  imports, loading, WAVs and spectrograms included: the real-time factor a user meets
  (seconds of audio per stream / wall seconds).

    .venv/bin/python benchmarks/codec_lm_speed.py LM.safetensors [--seconds 10] [--n 1]
        [--cfg 3] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def time_draw(lm, codec, frames: int, n: int, cfg: float, seed: int) -> tuple[float, float]:
    """(seconds to draw ``frames`` frames for ``n`` streams, seconds to decode them)."""
    from waveloom.sampling.codec_lm import CodeSampling, decode_codes, sample_codes

    cond = {"instrument": torch.zeros(n, dtype=torch.long),
            "pitch": torch.full((n,), 60, dtype=torch.long)}
    started = time.perf_counter()
    codes = sample_codes(lm, n, frames, cond, None, CodeSampling(cfg=cfg, seed=seed))
    drawn = time.perf_counter()
    decode_codes(codec, codes)
    return drawn - started, time.perf_counter() - drawn


def time_command(checkpoint: Path, seconds: float, n: int, cfg: float, threads: int) -> float:
    """Wall seconds of the whole ``waveloom generate`` command in a fresh process."""
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "waveloom.cli", "generate", str(checkpoint), "--out", out,
                "--seconds", str(seconds), "--n", str(n), "--cfg", str(cfg), "-q",
                "--instrument", "0", "--pitch", "60", "--threads", str(threads)]
        started = time.perf_counter()
        subprocess.run(argv, check=True, cwd=ROOT, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--cfg", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from waveloom.app._generate_codes import find_codec
    from waveloom.models.load import load_checkpoint

    lm, _ = load_checkpoint(args.checkpoint)
    lm.eval()
    codec = find_codec(lm, args.checkpoint, torch.device("cpu"), encodes=False)
    frames = int(round(args.seconds * lm.config.frame_rate))
    tokens = frames * lm.config.n_q
    rows: dict[str, list[float]] = {"guided": [], "unguided": [], "decode": [], "command": []}
    for r in range(args.rounds):
        guided, decode = time_draw(lm, codec, frames, args.n, args.cfg, r)
        unguided, _ = time_draw(lm, codec, frames, args.n, 1.0, r)
        command = time_command(args.checkpoint, args.seconds, args.n, args.cfg, args.threads)
        for key, value in zip(rows, (guided, unguided, decode, command)):
            rows[key].append(value)
        print(f"round {r}: draw cfg {args.cfg:g} {guided:.2f} s, cfg 1 {unguided:.2f} s, "
              f"decode {decode:.2f} s, command {command:.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"\n{args.checkpoint.name}: {args.n} stream(s) x {args.seconds:g} s = {frames} frames "
          f"x {lm.config.n_q} codebooks, {args.threads} thread(s), median of {args.rounds}")
    print("| stage | wall s | tokens/s per stream | x real time |\n|---|---:|---:|---:|")
    for key, label in (("guided", f"draw, cfg {args.cfg:g}"), ("unguided", "draw, cfg 1")):
        print(f"| {label} | {med[key]:.2f} | {tokens / med[key]:.0f} | "
              f"{args.seconds / med[key]:.2f} |")
    print(f"| codec decode | {med['decode']:.2f} | - | {args.seconds / med['decode']:.2f} |")
    print(f"| whole `generate` command | {med['command']:.2f} | - | "
          f"{args.seconds / med['command']:.2f} |")


if __name__ == "__main__":
    main()
