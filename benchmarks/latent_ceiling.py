"""The ceiling of latent diffusion: how close does its autoencoder bring audio back?

A latent diffusion model can at best sample latents as good as real ones, so its audio is
bounded by the autoencoder's reconstruction. For ``--clips`` clips of ``--seconds`` from a
cache's ``--split`` (the pieces the model never trained on), each is scored against the
original by the multi-scale spectral distance (blind to phase; lower is better, mean with a
95 % bootstrap interval):

* ``autoencoder``: encode, decode (the checkpoint may be the autoencoder itself, a
  ``spectral_ae`` or ``codec``, or a ``latent_diffusion`` model, whose frozen autoencoder is
  used);
* ``Griffin-Lim of the true magnitudes`` (spectral AE only): the phase recovery alone, at the
  autoencoder's STFT and iterations: the floor a perfect spectral decoder would reach;
* ``silence``: what a decoder that says nothing scores.

    python benchmarks/latent_ceiling.py runs/ld-chorales/model.safetensors \\
        cache/chorales-timgm-4ens --split test --clips 24 --seconds 10

``--write DIR --renders FOLDER`` also writes, per ensemble of a ``render-midi`` FOLDER, its
first ``--per`` renders of ``--split`` through the autoencoder as ``DIR/<ensemble>/k.wav``
(``--seconds`` each): a set laid out like ``scripts/latent_diffusion_sweep.sh``'s, so the
ensemble judge and KID can score the ceiling beside the samples; with ``--as-is`` the same
clips are written untouched (the real reference at the samples' length).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.spectral import griffin_lim, multiscale_spectral_distance, stft
from waveloom.data.cache import AudioCache
from waveloom.evaluate.bootstrap import bootstrap_mean
from waveloom.models.latent_autoencoder import FrozenAutoencoder
from waveloom.models.load import load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from codec_eval import held_out_clips  # noqa: E402


def autoencoder_of(path: str) -> FrozenAutoencoder:
    """The frozen autoencoder of a latent diffusion checkpoint, or one around an AE's own."""
    model, run = load_checkpoint(path)
    if run.family == "latent_diffusion":
        return model.autoencoder
    frozen = FrozenAutoencoder(run)
    frozen.load_weights(model.state_dict(), path)
    return frozen


def write_reconstructions(ae: FrozenAutoencoder, renders: Path, split: str, per: int,
                          seconds: float, out: Path, as_is: bool = False) -> None:
    """The first ``per`` renders of each ensemble, through the autoencoder (or untouched),
    into ``out``."""
    from ensemble_timbre import render_rows

    from waveloom.audio.io import load_audio, save_audio

    rows = render_rows(renders)
    length = int(seconds * ae.sample_rate) // ae.hop * ae.hop
    for e in sorted({r["instrument_str"] for r in rows}):
        chosen = [r for r in rows if r["split"] == split and r["instrument_str"] == e][:per]
        for k, r in enumerate(chosen):
            audio, _ = load_audio(renders / r["audio_filename"], ae.sample_rate)
            clip = torch.zeros(1, length)
            clip[0, : min(length, len(audio))] = torch.from_numpy(audio[:length])
            decoded = clip if as_is else ae.decode(ae.encode(clip), length)
            save_audio(out / e / f"{k}.wav", decoded[0].numpy(), ae.sample_rate)


def score(originals: np.ndarray, decoded: np.ndarray) -> str:
    d = [float(multiscale_spectral_distance(torch.from_numpy(a), torch.from_numpy(b)))
         for a, b in zip(originals, decoded)]
    r = bootstrap_mean(np.asarray(d))
    return f"{r.mean:.2f} [{r.low:.2f}, {r.high:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("cache")
    ap.add_argument("--split", default="test")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--write", type=Path, help="folder for <ensemble>/k.wav reconstructions")
    ap.add_argument("--renders", type=Path, help="the render-midi folder --write reads")
    ap.add_argument("--per", type=int, default=4, help="renders per ensemble for --write")
    ap.add_argument("--as-is", action="store_true", help="--write the clips untouched")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.write:
        if args.renders is None:
            raise SystemExit("--write needs --renders FOLDER (a render-midi folder)")
        write_reconstructions(autoencoder_of(args.checkpoint), args.renders, args.split,
                              args.per, args.seconds, args.write, args.as_is)
        print(f"wrote the reconstructions into {args.write}")
        return
    cache = AudioCache(args.cache)
    clips = held_out_clips(cache, args.split, args.clips, args.seconds)
    ae = autoencoder_of(args.checkpoint)
    audio = torch.from_numpy(clips)
    length = audio.shape[-1] - audio.shape[-1] % ae.hop
    audio = audio[:, :length]
    originals = audio.numpy()
    decoded = torch.cat([ae.decode(ae.encode(a[None]), length) for a in audio]).numpy()
    print(f"{len(originals)} clips of {length / cache.sample_rate:.1f} s, split {args.split}")
    print("| reconstruction | multi-scale spectral distance |\n|---|---|")
    print(f"| {ae.family} encode + decode | {score(originals, decoded)} |")
    if ae.family == "spectral_ae":
        c = ae.module.config
        phase_only = torch.stack([griffin_lim(stft(a, c.n_fft, c.stft_hop).abs(),
                                              c.griffin_lim_iters, hop=c.stft_hop,
                                              length=length, seed=0, progress=False)
                                  for a in audio])
        print(f"| Griffin-Lim of the true magnitudes | "
              f"{score(originals, phase_only.numpy())} |")
    print(f"| silence | {score(originals, np.zeros_like(originals))} |")


if __name__ == "__main__":
    main()
