"""How different are a note model's draws of one cell, beside the real notes of that cell?

A model that returns each label's mean note is on pitch and recognisable but always plays the
same note. Here ``--draws`` notes of each (instrument, pitch) cell (one batch, one seed, so
each draw starts from its own noise) are compared pairwise by the multi-scale spectral
distance, beside the real renders of the same cell at their different velocities (a
``render-notes`` folder): a mean pairwise distance well under the real one says the model
draws less variety than the data has.

    PYTHONPATH=. python benchmarks/note_variety.py CKPT --real data/demo-notes-v5 \\
        [--pitches 48 62 76] [--draws 5] [--seconds 2]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from note_timbre import SR, real_notes  # noqa: E402

from waveloom.app.common import recommended_sampling  # noqa: E402
from waveloom.audio.spectral import multiscale_spectral_distance  # noqa: E402
from waveloom.config import SamplingOptions  # noqa: E402
from waveloom.models.load import load_checkpoint, read_extra  # noqa: E402
from waveloom.sampling.sample import sample  # noqa: E402


def pairwise(clips: list[np.ndarray]) -> list[float]:
    return [float(multiscale_spectral_distance(a, b)) for a, b in itertools.combinations(clips, 2)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--real", type=Path, required=True, help="render-notes folder")
    p.add_argument("--pitches", type=int, nargs="+", default=[48, 62, 76])
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    model, _ = load_checkpoint(args.checkpoint)
    vocab = list(read_extra(args.checkpoint).get("instruments", []))
    real = real_notes(args.real, args.seconds)
    length = int(args.seconds * SR)
    options = SamplingOptions(seed=args.seed, progress=False,
                              **recommended_sampling(args.checkpoint))
    generated, reference = [], []
    for pitch in args.pitches:
        for i, name in enumerate(vocab):
            labels = {"pitch": torch.full((args.draws,), pitch),
                      "instrument": torch.full((args.draws,), i)}
            notes = sample(model, args.draws, length, labels, options).cpu().numpy()
            generated += pairwise(list(notes))
            reference += pairwise([c[:length] for c in real.get((name, pitch), {}).values()])
    cells = len(args.pitches) * len(vocab)
    print(f"{args.checkpoint.name}: mean pairwise distance of {args.draws} draws per cell "
          f"({cells} cells) {np.mean(generated):.2f}; the real notes of the same cells "
          f"(their velocities) {np.mean(reference):.2f}")


if __name__ == "__main__":
    main()
