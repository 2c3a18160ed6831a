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
from waveloom.models.load import load_checkpoint


def log_spectrogram(clip: np.ndarray) -> np.ndarray:
    """dB magnitude [bins, frames] of a 1024-point STFT, hop 256 (16 kHz: 64 ms, 16 ms)."""
    spec = torch.stft(torch.from_numpy(clip), 1024, 256, window=torch.hann_window(1024),
                      return_complex=True).abs()
    return 20 * np.log10(spec.numpy() + 1e-5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("codec", type=Path)
    p.add_argument("--notes", type=Path, nargs="+", required=True)
    p.add_argument("--lm-notes", type=Path, nargs="*", default=[])
    p.add_argument("--bandwidth", type=float, default=2.0)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    codec, _ = load_checkpoint(args.codec)
    sr, length = codec.config.sample_rate, int(args.seconds * codec.config.sample_rate)
    real = [np.pad(c := load_audio(f, sr)[0][:length], (0, length - len(c))) for f in args.notes]
    decoded = codec.eval().decode(codec.encode(torch.from_numpy(np.stack(real)), args.bandwidth),
                                  length=length).numpy()
    rows = [("held out", real), (f"codec {args.bandwidth:g} kbps", list(decoded))]
    if args.lm_notes:
        rows.append(("LM", [load_audio(f, sr)[0][:length] for f in args.lm_notes]))
    cols = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(3.2 * cols, 2.4 * len(rows)),
                             squeeze=False)
    for i, (label, clips) in enumerate(rows):
        for j in range(cols):
            ax = axes[i][j]
            if j >= len(clips):
                ax.axis("off")
                continue
            name = (args.notes if i < 2 else args.lm_notes)[j].stem
            rms = float(np.sqrt(np.mean(np.square(clips[j], dtype=np.float64))))
            ax.imshow(log_spectrogram(np.asarray(clips[j], np.float32))[:256], origin="lower",
                      aspect="auto", vmin=-60, vmax=40, extent=(0, args.seconds, 0, 4000))
            ax.set_title(f"{label}: {name[:34]}\nRMS {rms:.3f}", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.supylabel("Hz (0-4 kHz)", fontsize=8)
    fig.supxlabel("seconds", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
