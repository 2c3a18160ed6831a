"""Spectrograms of a codec at work: held-out notes, their decodings, and notes its LM drew.

Top row: ``--notes`` WAVs (held-out renders) as they are; middle row: through the codec at
``--bandwidth`` kbps; bottom row (with ``--lm-notes``): WAVs an LM over the codec drew (e.g. a
``pitch_grid.py --wavs`` folder). Each panel is titled with the clip's RMS.

    python benchmarks/codec_figure.py waveloom/assets/codec-notes.safetensors \\
        --notes A.wav B.wav C.wav --lm-notes X.wav Y.wav Z.wav --out docs/img/codec-notes.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.io import load_audio
from waveloom.audio.plots import plot_sheet
from waveloom.models.load import load_checkpoint


def _titled(label: str, names: list[Path], clips) -> list[tuple[np.ndarray, str]]:
    """(clip, "LABEL: NAME / RMS r") items for :func:`plot_sheet`."""
    out = []
    for name, clip in zip(names, clips):
        clip = np.asarray(clip, np.float32)
        rms = float(np.sqrt(np.mean(np.square(clip, dtype=np.float64))))
        out.append((clip, f"{label}: {name.stem[:34]}\nRMS {rms:.3f}"))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("codec", type=Path)
    p.add_argument("--notes", type=Path, nargs="+", required=True)
    p.add_argument("--lm-notes", type=Path, nargs="*", default=[])
    p.add_argument("--bandwidth", type=float, default=2.0)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    codec, _ = load_checkpoint(args.codec)
    sr, length = codec.config.sample_rate, int(args.seconds * codec.config.sample_rate)
    real = [np.pad(c := load_audio(f, sr)[0][:length], (0, length - len(c))) for f in args.notes]
    decoded = codec.eval().decode(codec.encode(torch.from_numpy(np.stack(real)), args.bandwidth),
                                  length=length).numpy()
    items = (_titled("held out", args.notes, real)
             + _titled(f"codec {args.bandwidth:g} kbps", args.notes, decoded)
             + _titled("LM", args.lm_notes, [load_audio(f, sr)[0][:length]
                                              for f in args.lm_notes]))
    # One row per kind of clip, one colour scale for all: level differences stay visible.
    plot_sheet(items, sr, args.out, kind="linear", ncols=len(args.notes))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
