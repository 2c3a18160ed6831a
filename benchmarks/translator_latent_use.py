"""Does each decoder of a translator read its latent? Teacher-forced NLL three ways.

A translator whose encoder collapsed (z one vector for every input) still trains: its decoders
become unconditional WaveNets and the loss keeps falling, but a translation is then noise. This
scores every domain's decoder on validation windows of that domain (bits a sample, evaluation
mode) with each window's own latent, with another window's latent (the batch rolled by one)
and with zeros (the latent's mean after standardisation). Own well below the other two means
the decoder follows z. Also prints the latent's spread (std over clips and frames, mean over
channels; ~0 for a collapsed encoder). A translator with an f0 source (model.f0_excitation)
gets the window's own tracked f0 in every case, and one more column: its own z with the source
silenced (f0 0), i.e. how much the decoder leans on the f0.

    python benchmarks/translator_latent_use.py runs/translator-chorales/model.safetensors \\
        data/domains-soprano --windows 4
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np


def domain_windows(folder: Path, domain: str, split: str, count: int, start_s: float,
                   length: int) -> np.ndarray:
    """``[count, length]`` windows, one per render of ``domain`` in ``split`` (its rows'
    ``instrument_str``), each from ``start_s`` seconds in."""
    from waveloom.audio.io import load_audio
    from waveloom.data.synth.midi import render_rows

    files = [r["audio_filename"] for r in render_rows(folder)
             if r.get("split") == split and r.get("instrument_str") == domain][:count]
    if not files:
        raise SystemExit(f"{folder}: no {split!r} render of domain {domain!r}")
    start = int(start_s * 16000)
    clips = [load_audio(folder / f, 16000)[0][start:start + length] for f in files]
    return np.stack([np.pad(c, (0, length - len(c))) for c in clips]).astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("renders", type=Path, help="the render-midi folder the domains come from")
    p.add_argument("--split", default="validation")
    p.add_argument("--windows", type=int, default=4, help="windows (renders) per domain")
    p.add_argument("--samples", type=int, default=4096, help="scored samples per window")
    p.add_argument("--start", type=float, default=5.0, help="seconds into each render")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import torch

    from waveloom.app.translate import domain_names
    from waveloom.models.load import load_checkpoint
    from waveloom.models.translator import latent_spread

    torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.checkpoint, map_location="cpu", expect_family="translator")
    model.eval()
    names = domain_names(args.checkpoint) or [str(d) for d in range(model.config.domains)]
    bits = 1.0 / math.log(2.0)
    sourced = bool(model.config.f0_excitation)
    print("| domain | own z | another window's z | zeros |"
          + (" own z, silent f0 source |" if sourced else "") + " latent spread |")
    print("|---|---:|---:|---:|" + ("---:|" if sourced else "") + "---:|")
    for d, name in enumerate(names):
        audio = torch.from_numpy(domain_windows(args.renders, name, args.split, args.windows,
                                                args.start, model.context + args.samples))
        with torch.no_grad():
            z, f0 = model.encode(audio), model.source_f0(audio)
            cases = [(z, f0), (z.roll(1, 0), f0), (torch.zeros_like(z), f0)]
            if sourced:
                cases.append((z, torch.zeros_like(f0)))
            nll = [model.decoders[d].loss({"audio": audio, "latent": lat,
                                           **({} if f0 is None else {"f0_hz": hz})}
                                          )["loss"].item() * bits for lat, hz in cases]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in nll)
              + f" | {float(latent_spread(z)):.3f} |")


if __name__ == "__main__":
    main()
