"""How well a diffusion checkpoint denoises real notes at each noise level: the training curve
that says whether sampling can work yet.

A sampler can only make audio if the network's estimate of the clean waveform ``x0`` is good
at *every* noise level it walks through. This noises the first ``--seconds`` of each note of a
cache split (from its onset, with its own pitch and instrument labels) at training steps ``t``
and reports, per step:

* ``abar``: the share of signal power left (``alpha_bar_t``);
* ``eps MSE``: the training loss at that step (mean squared error of the predicted noise);
* ``x0 SNR dB``: ``10 log10(power(x0) / MSE(x0_hat, x0))`` with ``x0_hat = (x_t - sqrt(1 -
  abar) eps_hat) / sqrt(abar)``: 0 dB is what predicting silence scores, so a negative figure
  at high noise means the network's guess of the note is worse than no guess.

``x0`` is what the model denoises (:meth:`clean_target`): the waveform, or for DiffWave's
source-filter mode the note's envelope frames; there "power" is the envelope's variance about
its mean (0 dB: guessing the average envelope of the notes, whatever their labels), and the
table adds the envelope's mean squared error.

    .venv/bin/python benchmarks/diffusion_denoising.py runs/diffwave-notes/model.safetensors \\
        --data cache/demo-notes-v4 --split valid [--notes 16] [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch


def note_batch(data: Path, split: str, notes: int, length: int) -> dict[str, torch.Tensor]:
    """The first ``length`` samples of the split's first ``notes`` notes, with their labels."""
    from waveloom.data.cache import AudioCache

    cache = AudioCache(data)
    idx = [int(i) for i in cache.split_indices(split)[:notes]]
    entries = cache.entries
    audio = np.stack([np.asarray(cache.clip(i)[:length], dtype=np.float32) for i in idx])
    return {"audio": torch.from_numpy(audio),
            "pitch": torch.tensor([int(entries[i]["pitch"]) for i in idx]),
            "instrument": torch.tensor([int(entries[i]["instrument"]) for i in idx]),
            "start": torch.zeros(len(idx), dtype=torch.long)}


@torch.no_grad()
def denoising_rows(model, batch: dict[str, torch.Tensor], steps: list[int], seed: int = 0
                   ) -> list[dict[str, float]]:
    """One row per training step ``t``: abar, eps MSE and x0 SNR (see the module docstring)."""
    x0 = model.clean_target(batch)
    n, length = batch["audio"].shape
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    cond = model.condition_input(batch, n, length)
    waveform = x0.shape == batch["audio"].shape
    power = float(x0.pow(2).mean() if waveform else (x0 - x0.mean()).pow(2).mean())
    rows = []
    for t in steps:
        tt = torch.full((n,), t)
        xt = model.schedule.noisy(x0, tt, noise)
        eps = model.denoise(xt, tt.float(), cond)
        a = float(model.schedule.alpha_bar[t])
        x0_hat = (xt - math.sqrt(1 - a) * eps) / math.sqrt(a)
        err = float((x0_hat - x0).pow(2).mean())
        rows.append({"t": t, "abar": a, "eps_mse": float((eps - noise).pow(2).mean()),
                     "x0_snr_db": 10 * math.log10(power / max(err, 1e-12)), "x0_mse": err})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", type=Path, required=True, help="a notes cache")
    p.add_argument("--split", default="valid")
    p.add_argument("--notes", type=int, default=16)
    p.add_argument("--seconds", type=float, default=0.5)
    p.add_argument("--steps", type=int, nargs="+", default=None,
                   help="training steps t (default: 0, 5, 10, 20, 30, 40 and the last)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    from waveloom.models.load import load_checkpoint

    torch.set_num_threads(args.threads)
    model, run = load_checkpoint(args.checkpoint)
    model.eval()
    last = model.schedule.steps - 1
    steps = args.steps or sorted({0, 5, 10, 20, 30, 40, last} & set(range(last + 1)))
    batch = note_batch(args.data, args.split, args.notes,
                       int(args.seconds * run.data.sample_rate))
    print(f"{args.checkpoint}: {len(batch['audio'])} notes of {args.seconds:g} s "
          f"({args.data.name} {args.split}), RMS {float(batch['audio'].pow(2).mean().sqrt()):.3f}")
    print("| t | abar | eps MSE | x0 SNR dB | x0 MSE |\n|---:|---:|---:|---:|---:|")
    for r in denoising_rows(model, batch, steps):
        print(f"| {r['t']} | {r['abar']:.3f} | {r['eps_mse']:.3f} | {r['x0_snr_db']:.1f} | "
              f"{r['x0_mse']:.4f} |")


if __name__ == "__main__":
    main()
