"""How close can a decoder of a given output alphabet get? The spectral-distance floor of
quantisation.

Each held-out clip is quantised (mu-law with 256 or 1024 codes, 16-bit linear) or given white
noise at a fixed level, and scored against itself with the multi-scale spectral distance that
``benchmarks/nsynth_ae_eval.py`` reports. A decoder over 256 mu-law codes cannot score below the
first row even if it were perfect (docs/nsynth_ae.md, "A Gaussian head and a colder decoder").

    .venv/bin/python benchmarks/quantisation_floor.py --data cache/heldout-notes-fluid \\
        --split test --seconds 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.spectral import multiscale_spectral_distance


def mu_law_round_trip(x: np.ndarray, codes: int) -> np.ndarray:
    """``x`` in [-1, 1] companded with mu = codes - 1, rounded to ``codes`` levels, expanded."""
    mu = codes - 1
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round((y + 1) / 2 * mu) / mu * 2 - 1
    return np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu


def linear_round_trip(x: np.ndarray, levels: int) -> np.ndarray:
    return np.round((x + 1) / 2 * (levels - 1)) / (levels - 1) * 2 - 1


def variants(x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    noise = rng.standard_normal(len(x))
    return {
        "256 mu-law codes": mu_law_round_trip(x, 256),
        "1024 mu-law codes": mu_law_round_trip(x, 1024),
        "65536 linear levels (16 bit)": linear_round_trip(x, 65536),
        "white noise at -60 dB re full scale": x + 1e-3 * noise,
        "white noise at -80 dB re full scale": x + 1e-4 * noise,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a prepared cache (waveloom prepare)")
    p.add_argument("--split", default="test")
    p.add_argument("--seconds", type=float, default=2.0)
    args = p.parse_args(argv)
    meta = json.loads((args.data / "cache.json").read_text())
    audio = np.load(args.data / "audio.npy", mmap_mode="r")
    rows = [json.loads(line) for line in (args.data / "manifest.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == args.split]
    if not rows:
        raise SystemExit(f"{args.data}: no examples in split {args.split!r}")
    n = int(args.seconds * meta["sample_rate"])
    rng = np.random.default_rng(0)
    scores: dict[str, list[float]] = {}
    for r in rows:
        x = audio[r["offset"] : r["offset"] + min(n, r["length"])].astype(np.float64)
        x = x / float(meta.get("scale", 32767))
        for name, y in variants(x, rng).items():
            d = multiscale_spectral_distance(torch.tensor(x, dtype=torch.float32),
                                             torch.tensor(y, dtype=torch.float32))
            scores.setdefault(name, []).append(float(d))
    print(f"{len(rows)} clips of split {args.split!r} of {args.data}, first {args.seconds:g} s")
    print("| the original, changed to | spectral distance to itself |\n|---|---:|")
    for name, values in scores.items():
        print(f"| {name} | {np.mean(values):.2f} |")


if __name__ == "__main__":
    main()
