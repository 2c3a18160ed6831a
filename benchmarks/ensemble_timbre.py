"""Does a generated piece sound like the ensemble it was asked for? A nearest-centroid judge.

For music (where ``note_timbre.py``'s nearest real note of the same pitch does not exist),
every clip becomes its long-term spectral profile: per band of a 64-band log-mel spectrogram
(1024 / 256 at 16 kHz), the mean and the standard deviation over frames (128 numbers; the
first half says which partials and formants an ensemble has, the second how they move),
standardised by the real clips' spread. Each ensemble's centroid is the mean profile of its
real clips (``--real``: a ``render-midi`` folder, its ``--split`` renders); a clip is
**recognised** when the nearest centroid is that of the ensemble it was asked for. Reported
with Wilson intervals:

* ``generated``: ``GEN/<ensemble>/*.wav``, recognised share and mean distance to the asked
  centroid;
* ``real`` (the ceiling): each real clip against centroids made without it (leave one out).

    python benchmarks/ensemble_timbre.py out/ld-sweep/ddim-25 --real data/chorales-timgm-4ens \\
        --seconds 20 [--figure docs/img/ld.png]

``--figure`` draws, per ensemble, a real test render beside the first generated clip (mel
spectrograms, one colour scale).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from waveloom.audio.io import load_audio
from waveloom.audio.spectral import mel_spectrogram
from waveloom.evaluate.bootstrap import wilson_interval

SR = 16000


def profile(path: Path, seconds: float) -> np.ndarray:
    """The clip's first ``seconds`` -> [128] per-band mean and std of its log-mel frames."""
    audio, _ = load_audio(path, SR)
    audio = audio[: int(seconds * SR)]
    mel = mel_spectrogram(torch.from_numpy(np.ascontiguousarray(audio)), SR, n_mels=64,
                          eps=1e-4).numpy()
    return np.concatenate([mel.mean(1), mel.std(1)])


def render_rows(folder: Path) -> list[dict]:
    """The rows of a ``render-midi`` folder (split, audio_filename, instrument_str, ...)."""
    from waveloom.data.synth.midi import render_rows as rows

    return rows(folder)


def real_profiles(folder: Path, split: str, seconds: float) -> tuple[np.ndarray, list[str]]:
    """Profiles [N, 128] and ensemble names of a render-midi folder's ``split`` renders."""
    rows = [r for r in render_rows(folder) if r["split"] == split]
    feats = [profile(folder / r["audio_filename"], seconds) for r in rows]
    return np.stack(feats), [r["instrument_str"] for r in rows]


def figure(path: Path, generated: Path, real: Path, split: str, seconds: float) -> None:
    """Per ensemble: the first real ``split`` render beside the first generated clip."""
    from waveloom.audio.plots import plot_sheet

    rows = render_rows(real)
    items = []
    for e in sorted({r["instrument_str"] for r in rows}):
        first = next(r for r in rows if r["split"] == split and r["instrument_str"] == e)
        gen = sorted((generated / e).glob("*.wav"))
        if not gen:
            continue
        for title, wav in ((f"real {e} ({first['canonical_title']})", real /
                            first["audio_filename"]), (f"generated {e}", gen[0])):
            audio, _ = load_audio(wav, SR)
            items.append((audio[: int(seconds * SR)], title))
    plot_sheet(items, SR, path, kind="mel", ncols=2)
    from PIL import Image

    Image.open(path).convert("RGB").quantize(256).save(path)  # a third of the bytes


def nearest(x: np.ndarray, centroids: dict[str, np.ndarray]) -> tuple[str, dict[str, float]]:
    dist = {k: float(np.linalg.norm(x - c)) for k, c in centroids.items()}
    return min(dist, key=dist.get), dist


def share(hits: list[bool]) -> str:
    lo, hi = wilson_interval(sum(hits), len(hits))
    return f"{sum(hits)}/{len(hits)} ({100 * np.mean(hits):.1f} % [{100 * lo:.1f}, {100 * hi:.1f}])"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("generated", type=Path, help="folder of <ensemble>/*.wav")
    ap.add_argument("--real", type=Path, required=True, help="a render-midi folder")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--figure", type=Path, help="PNG: real beside generated, per ensemble")
    args = ap.parse_args()
    if args.figure:
        figure(args.figure, args.generated, args.real, args.split, args.seconds)
    feats, names = real_profiles(args.real, args.split, args.seconds)
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mu) / sd
    ensembles = sorted(set(names))
    labels = np.array(names)
    real_hits, real_dist = [], []
    for i, (x, name) in enumerate(zip(z, names)):
        keep = np.arange(len(z)) != i
        cents = {e: z[keep & (labels == e)].mean(0) for e in ensembles}
        guess, dist = nearest(x, cents)
        real_hits.append(guess == name)
        real_dist.append(dist[name])
    cents = {e: z[labels == e].mean(0) for e in ensembles}
    gen_hits, gen_dist, per = [], [], {}
    for e in ensembles:
        for path in sorted((args.generated / e).glob("*.wav")):
            guess, dist = nearest((profile(path, args.seconds) - mu) / sd, cents)
            gen_hits.append(guess == e)
            gen_dist.append(dist[e])
            per.setdefault(e, []).append(guess)
    if not gen_hits:
        raise SystemExit(f"{args.generated}: no <ensemble>/*.wav for {', '.join(ensembles)}")
    print(f"generated: recognised {share(gen_hits)}, distance to the asked centroid "
          f"{np.mean(gen_dist):.2f}")
    print(f"real ({args.split}, leave one out): recognised {share(real_hits)}, distance "
          f"{np.mean(real_dist):.2f}")
    for e, guesses in per.items():
        print(f"  {e}: judged as {', '.join(guesses)}")


if __name__ == "__main__":
    main()
