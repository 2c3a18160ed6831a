"""Pitch accuracy of a pitch-conditioned checkpoint, judged by an independent estimator (pYIN).

Generates 24 one-second notes in one batch (instruments cycling through the vocabulary, pitches
spread evenly over the range), estimates each note's pitch with librosa's pYIN, and prints how
many land within 50 cents of the requested pitch, plus every note's error.

With ``--real FOLDER`` (the ``render-notes`` folder the model was trained on) the real note of
each generated note's instrument and pitch (velocity nearest 100) is scored the same way: that
is the estimator's ceiling on this grid (a rendered note can itself sound off its label, e.g. an
organ preset whose 16' stop pYIN hears an octave down), and each generated note is also
compared with its real twin's estimated pitch ("as the data sounds").

One grid of 24 notes moves by a note or two between sampling seeds, so ``--seed 0-4`` scores
five grids and prints the total beside each seed's count (only the misses are listed then).

    .venv/bin/python benchmarks/demo_pitch.py waveloom/assets/wavenet-small-notes.safetensors \
        --low 45 --high 79 --out out/pitch-check --real data/demo-notes-v4 --seed 0-4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.io import load_audio, save_audio
from waveloom.config import SamplingOptions
from waveloom.evaluate.pitch import pitch_accuracy
from waveloom.models.load import load_checkpoint, read_extra
from waveloom.sampling.sample import sample


def _seeds(text: str) -> list[int]:
    """'1' -> [1]; '0-4' -> [0..4]; '0,3' -> [0, 3]."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            seeds.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a seed list like 1, 0-4 or 0,3") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r}: no seed in it")
    return seeds


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


def score_seed(model, args, seed: int, pitches: list[int], instruments: list[int],
               vocab: list[str], sr: int, verbose: bool) -> tuple[dict, np.ndarray, float]:
    """Generate the grid once with ``seed``; return (pYIN report, audio, seconds taken)."""
    cond = {"pitch": torch.tensor(pitches), "instrument": torch.tensor(instruments)}
    started = time.perf_counter()
    options = SamplingOptions(seed=seed, temperature=args.temperature, engine=args.engine)
    audio = sample(model, len(pitches), int(args.seconds * sr), cond, options).numpy()
    took = time.perf_counter() - started
    report = pitch_accuracy(list(audio), pitches, sr)
    for row, inst in zip(report["notes"], instruments):
        row["instrument"] = vocab[inst]
        if verbose or not row["correct"]:
            print(f"{vocab[inst]:28s} target {row['target']:3d}  estimated "
                  f"{row['estimated_midi']:7.2f}  off {row['cents_off']:8.1f} cents  voiced "
                  f"{row['voiced_fraction']:.2f}  {'ok' if row['correct'] else 'MISS'}")
    return report, audio, took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--low", type=int, default=45)
    p.add_argument("--high", type=int, default=79)
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=_seeds, default=[0],
                   help="sampling seed, or several (0-4, 0,3): one grid each, then the total, "
                        "since one grid of 24 notes moves by a note or two between seeds")
    p.add_argument("--engine", default="auto")
    p.add_argument("--out", type=Path, default=None,
                   help="also write the WAVs and a JSON here (first seed's notes)")
    p.add_argument("--real", type=Path, default=None,
                   help="render-notes folder: also score the real notes (the ceiling)")
    args = p.parse_args()

    model, run = load_checkpoint(args.checkpoint)
    sr = run.data.sample_rate
    vocab = read_extra(args.checkpoint).get("instruments", []) or ["instrument 0"]
    n = args.n
    pitches = [round(args.low + k * (args.high - args.low) / (n - 1)) for k in range(n)]
    instruments = [k % len(vocab) for k in range(n)]
    single = len(args.seed) == 1
    real = None
    if args.real:  # the ceiling: the same grid's rendered notes, scored once for every seed
        names = [vocab[i] for i in instruments]
        real = pitch_accuracy(real_twins(args.real, names, pitches, args.seconds, sr), pitches, sr)
        print(f"real notes on the same grid (the ceiling): {real['correct']}/{real['total']} "
              f"({100 * real['accuracy']:.1f} %)")
        for row, name in zip(real["notes"], names):
            if not row["correct"]:
                print(f"  real {name:28s} target {row['target']:3d}  estimated "
                      f"{row['estimated_midi']:7.2f}  off {row['cents_off']:8.1f} cents")
    per_seed = []
    for seed in args.seed:
        report, audio, took = score_seed(model, args, seed, pitches, instruments, vocab, sr,
                                         verbose=single)
        rms = float((audio**2).mean() ** 0.5)
        report["rms"], report["seed"] = rms, seed
        if real is not None:
            twin = 0
            for row, ref in zip(report["notes"], real["notes"]):
                est, ref_est = row["estimated_midi"], ref["estimated_midi"]
                twin += bool(np.isfinite(est) and np.isfinite(ref_est)
                             and abs(est - ref_est) * 100 <= report["tolerance_cents"])
            print(f"seed {seed}: generated within {report['tolerance_cents']:.0f} cents of "
                  f"their real twin's estimate: {twin}/{n}")
            report["real"] = {k: real[k] for k in ("correct", "total", "accuracy")}
            report["within_real_twin"] = twin
        print(f"{'pitch accuracy' if single else f'seed {seed}'}: {report['correct']}/"
              f"{report['total']} within {report['tolerance_cents']:.0f} cents "
              f"({100 * report['accuracy']:.1f} %); RMS {rms:.3f}; generated {n} x "
              f"{args.seconds} s in {took:.1f} s")
        if args.out and not per_seed:
            args.out.mkdir(parents=True, exist_ok=True)
            for k, clip in enumerate(audio):
                save_audio(args.out / f"{k:02d}-{vocab[instruments[k]]}-{pitches[k]}.wav",
                           clip, sr)
        per_seed.append(report)
    if not single:
        hits = sum(r["correct"] for r in per_seed)
        seeds = ",".join(map(str, args.seed))
        print(f"pitch accuracy over seeds {seeds}: {hits}/{n * len(per_seed)}"
              f" within {per_seed[0]['tolerance_cents']:.0f} cents "
              f"({100 * hits / (n * len(per_seed)):.1f} %); per seed "
              + " ".join(str(r["correct"]) for r in per_seed))
    if args.out:
        summary = per_seed[0] if single else {"seeds": per_seed}
        summary["checkpoint"] = str(args.checkpoint)
        summary["temperature"] = args.temperature
        (args.out / "pitch.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
