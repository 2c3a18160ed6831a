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
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.mulaw import dequantize, quantize
from waveloom.audio.spectral import multiscale_spectral_distance
from waveloom.evaluate.audioset import load_set
from waveloom.nn.heads import DiscretizedGaussianHead


def variants(x: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``x`` [T] through each output alphabet a decoder may have (the codecs the models use:
    :func:`quantize` for mu-law, a 16-bit head's own ``encode`` / ``decode``), or plus noise."""
    linear = DiscretizedGaussianHead(65536)
    noise = torch.randn(x.shape, generator=gen)
    return {
        "256 mu-law codes": dequantize(quantize(x, 255), 255),
        "1024 mu-law codes": dequantize(quantize(x, 1023), 1023),
        "65536 linear levels (16 bit)": linear.decode(linear.encode(x)),
        "white noise at -60 dB re full scale": x + 1e-3 * noise,
        "white noise at -80 dB re full scale": x + 1e-4 * noise,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a prepared cache (waveloom prepare)")
    p.add_argument("--split", default="test")
    p.add_argument("--seconds", type=float, default=2.0)
    args = p.parse_args(argv)
    clips = load_set(args.data, split=args.split)
    n = int(round(args.seconds * clips.sample_rate))
    gen = torch.Generator().manual_seed(0)
    scores: dict[str, list[float]] = {}
    for i in range(len(clips)):
        x = torch.as_tensor(np.asarray(clips.clip(i)[:n], np.float32))
        for name, y in variants(x, gen).items():
            scores.setdefault(name, []).append(float(multiscale_spectral_distance(x, y.float())))
    print(f"{len(clips)} clips of split {args.split!r} of {args.data}, first {args.seconds:g} s")
    print("| the original, changed to | spectral distance to itself |\n|---|---:|")
    for name, values in scores.items():
        print(f"| {name} | {np.mean(values):.2f} |")


if __name__ == "__main__":
    main()
