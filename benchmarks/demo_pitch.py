"""Pitch accuracy of a pitch-conditioned checkpoint, judged by an independent estimator (pYIN).

Generates 24 one-second notes in one batch (instruments cycling through the vocabulary, pitches
spread evenly over the range), estimates each note's pitch with librosa's pYIN, and prints how
many land within 50 cents of the requested pitch, plus every note's error.

With ``--real FOLDER`` (the ``render-notes`` folder the model was trained on) the real note of
each generated note's instrument and pitch (velocity nearest 100) is scored the same way: that
is the estimator's ceiling on this grid (a rendered note can itself sound off its label, e.g. an
organ preset whose 16' stop pYIN hears an octave down), and each generated note is also
compared with its real twin's estimated pitch ("as the data sounds").

    .venv/bin/python benchmarks/demo_pitch.py waveloom/assets/wavenet-small-notes.safetensors \
        --low 45 --high 79 --out out/pitch-check --real data/demo-notes-v3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.io import load_audio, save_audio
from waveloom.checkpoint import load_checkpoint, read_extra
from waveloom.evaluate.pitch import pitch_accuracy


def real_twins(folder: Path, names: list[str], pitches: list[int], seconds: float, sr: int
               ) -> list[np.ndarray]:
    """The first ``seconds`` of the rendered note with each (instrument name, pitch), at the
    velocity nearest 100, from a ``render-notes`` folder's ``examples.json``."""
    table = json.loads((folder / "examples.json").read_text())
    clips = []
    for name, pitch in zip(names, pitches):
        rows = [r for r in table.values()
                if r["instrument_str"] == name and int(r["pitch"]) == pitch]
        if not rows:
            raise SystemExit(f"{folder}: no rendered note of {name} at pitch {pitch}")
        row = min(rows, key=lambda r: abs(int(r["velocity"]) - 100))
        audio, _ = load_audio(folder / "audio" / f"{row['note_str']}.wav", sr)
        clips.append(np.asarray(audio, dtype=np.float32)[: int(seconds * sr)])
    return clips


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--low", type=int, default=45)
    p.add_argument("--high", type=int, default=79)
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", default="auto")
    p.add_argument("--out", type=Path, default=None, help="also write the WAVs and a JSON here")
    p.add_argument("--real", type=Path, default=None,
                   help="render-notes folder: also score the real notes (the ceiling)")
    args = p.parse_args()

    model, run = load_checkpoint(args.checkpoint)
    sr = run.data.sample_rate
    vocab = read_extra(args.checkpoint).get("instruments", []) or ["instrument 0"]
    n = args.n
    pitches = [round(args.low + k * (args.high - args.low) / (n - 1)) for k in range(n)]
    instruments = [k % len(vocab) for k in range(n)]
    cond = {"pitch": torch.tensor(pitches), "instrument": torch.tensor(instruments)}
    started = time.perf_counter()
    kwargs = {"engine": args.engine} if "engine" in model.generate.__code__.co_varnames else {}
    audio = model.generate(n, int(args.seconds * sr), cond, temperature=args.temperature,
                           seed=args.seed, **kwargs).numpy()
    took = time.perf_counter() - started
    report = pitch_accuracy(list(audio), pitches, sr)
    for row, inst in zip(report["notes"], instruments):
        row["instrument"] = vocab[inst]
        print(f"{vocab[inst]:28s} target {row['target']:3d}  estimated {row['estimated_midi']:7.2f}"
              f"  off {row['cents_off']:8.1f} cents  voiced {row['voiced_fraction']:.2f}"
              f"  {'ok' if row['correct'] else 'MISS'}")
    if args.real:
        names = [vocab[i] for i in instruments]
        real = pitch_accuracy(real_twins(args.real, names, pitches, args.seconds, sr),
                              pitches, sr)
        twin = 0
        for row, ref in zip(report["notes"], real["notes"]):
            est, ref_est = row["estimated_midi"], ref["estimated_midi"]
            twin += bool(np.isfinite(est) and np.isfinite(ref_est)
                         and abs(est - ref_est) * 100 <= report["tolerance_cents"])
        print(f"real notes on the same grid (the ceiling): {real['correct']}/{real['total']} "
              f"({100 * real['accuracy']:.1f} %); generated within "
              f"{report['tolerance_cents']:.0f} cents of their real twin's estimate: {twin}/{n}")
        for row, name in zip(real["notes"], names):
            if not row["correct"]:
                print(f"  real {name:28s} target {row['target']:3d}  estimated "
                      f"{row['estimated_midi']:7.2f}  off {row['cents_off']:8.1f} cents")
        report["real"] = {k: real[k] for k in ("correct", "total", "accuracy")}
        report["within_real_twin"] = twin
    rms = float((audio**2).mean() ** 0.5)
    print(f"pitch accuracy: {report['correct']}/{report['total']} within "
          f"{report['tolerance_cents']:.0f} cents ({100 * report['accuracy']:.1f} %); "
          f"RMS {rms:.3f}; generated {n} x {args.seconds} s in {took:.1f} s")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for k, clip in enumerate(audio):
            save_audio(args.out / f"{k:02d}-{vocab[instruments[k]]}-{pitches[k]}.wav", clip, sr)
        report["rms"] = rms
        report["checkpoint"] = str(args.checkpoint)
        (args.out / "pitch.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
