"""The ceiling of a source-filter note model: real notes through the envelope fit and back.

A model that learns the source-filter envelope (DiffWave's ``source_filter`` mode) can at best
make what :func:`waveloom.nn.envelope_fit.fit_note` followed by
:class:`waveloom.nn.envelope_synth.SourceFilterSynth` makes of a real note (with the f0's bend
per frame, or ``--steady`` without). This script takes
every note of a ``render-notes`` folder at one velocity, fits its envelope at its labelled
pitch, plays it back, and reports the multi-scale spectral distance to the note itself (beside
the distance between two velocities of the same cell: how far "the same note" already moves),
and writes the resyntheses as ``<instrument>_k<pitch>.wav`` for ``benchmarks/note_timbre.py
--exclude-velocity V`` and ``benchmarks/pitch_grid.py``'s judges.

    PYTHONPATH=. python benchmarks/envelope_roundtrip.py data/demo-notes-v5 --velocity 90 \\
        --out out/envelope-roundtrip
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from note_timbre import SR, real_notes  # noqa: E402

from waveloom.audio.spectral import multiscale_spectral_distance  # noqa: E402
from waveloom.audio.tuning import midi_hz  # noqa: E402
from waveloom.models.specgan import log_range  # noqa: E402
from waveloom.nn.envelope_fit import fit_note  # noqa: E402
from waveloom.nn.envelope_synth import SourceFilterSynth  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notes", type=Path, help="a render-notes folder")
    p.add_argument("--velocity", type=int, default=90)
    p.add_argument("--neighbour", type=int, default=105,
                   help="the other velocity whose distance is the 'same note' yardstick")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--frames", type=int, default=128, help="STFT frames (hop 256): 2.05 s")
    p.add_argument("--bands", type=int, default=32)
    p.add_argument("--steady", action="store_true",
                   help="read the partials at the labelled f0 and play it steady (no f0 bend)")
    args = p.parse_args()
    centre, scale = log_range(1024, 1e-6)
    synth = SourceFilterSynth(SR, 1024, 256, args.bands, 80, centre, scale)
    real = real_notes(args.notes, args.frames * 256 / SR)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for (inst, pitch), cell in sorted(real.items()):
        if args.velocity not in cell:
            continue
        note = torch.from_numpy(cell[args.velocity])[None]
        f0 = midi_hz(torch.tensor([float(pitch)]))
        envelope, cents = fit_note(note, f0, synth, args.frames, bent=not args.steady)
        back = synth(envelope, f0, torch.Generator().manual_seed(pitch),
                     None if args.steady else cents)[0].numpy()
        sf.write(args.out / f"{inst}_k{pitch:03d}.wav", back, SR, subtype="FLOAT")
        row = {"instrument": inst, "pitch": pitch,
               "distance": float(multiscale_spectral_distance(cell[args.velocity], back)),
               "rms_ratio": float(np.sqrt(np.mean(back ** 2) / np.mean(note.numpy() ** 2)))}
        if args.neighbour in cell:
            row["neighbour_distance"] = float(multiscale_spectral_distance(
                cell[args.velocity], cell[args.neighbour]))
        rows.append(row)
    (args.out / "roundtrip.json").write_text(json.dumps(rows, indent=1))
    for inst in sorted({r["instrument"] for r in rows}) + [None]:
        sel = [r for r in rows if inst is None or r["instrument"] == inst]
        near = [r["neighbour_distance"] for r in sel if "neighbour_distance" in r]
        print(f"{inst or 'all':<26} n {len(sel):>3}  distance to the note "
              f"{np.mean([r['distance'] for r in sel]):.2f}  (velocity {args.velocity} to "
              f"{args.neighbour}: {np.mean(near) if near else float('nan'):.2f})  RMS ratio "
              f"median {np.median([r['rms_ratio'] for r in sel]):.2f}")


if __name__ == "__main__":
    main()
