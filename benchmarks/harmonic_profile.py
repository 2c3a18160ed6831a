"""Which partials does a timbre transfer play? Harmonic profiles of held-out melodies, note by note.

``transfer_table.py`` says whether a transfer is on pitch and which family a classifier hears;
when the family is wrong (the translator's strings heard as brass, issue #27) it cannot say
*what* in the sound is wrong. Here each note of the score (``--pieces``, the same held-out
MIDI files; each span less 60 ms at both ends) is cut from every rendering and reduced to

* its harmonic profile: the level of partials 1..``--harmonics`` in dB relative to the
  note's strongest partial, each the peak of a Hann-windowed spectrum within 50 cents of
  ``h x f0``, f0 the score's pitch. Why not the note's own f0: on a noisy output a tracker
  errs more often than the note does (tried with YIN: the medians smeared flat). An
  off-pitch note shows as a low profile (the pitch count reports how many there are), an
  octave-low one as its even partials, its odd ones counted as noise;
* its harmonic-to-noise ratio: the energy within 50 cents of the partials (up to 4 kHz)
  against the energy between them, in dB (a broadband floor lowers it);
* its spectral centroid in Hz (brightness).

Medians over the notes, per rendering, as a table, and the profiles as a figure: the input,
the target instrument's own rendering and each transfer on one panel (``--render
"GROUP/NAME=FOLDER"`` puts rows on GROUP's panel), so a wrong harmonic balance (a clarinet's
weak even partials kept) or a floor is seen at once.

    python benchmarks/harmonic_profile.py --pieces data/xlate-pieces6 --seconds 20 \\
        --render "input=data/xlate-clarinet-fluid" --render "violin=data/xlate-target-40" \\
        --render "translator=out/s32-xlate-all-t05/soprano strings" --out out/harmonics \\
        --figure docs/img/translator-s32-harmonics.png

A ``--render`` folder holds one WAV per piece named as the pieces' inputs are (``render-midi``
folders, or a ``transfer_table.py`` output folder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SR = 16000
CENTS = 50.0
NOISE_BAND_HZ = 4000.0


def note_features(clip: np.ndarray, pitch: int, harmonics: int) -> tuple[np.ndarray, float, float]:
    """(profile [harmonics] dB re the strongest partial, HNR dB, centroid Hz) of one note."""
    n = max(len(clip), 4096)
    spec = np.abs(np.fft.rfft(clip * np.hanning(len(clip)), n)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / SR)
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    width = 2.0 ** (CENTS / 1200.0)
    levels, near = np.full(harmonics, 1e-12), np.zeros(len(freqs), bool)
    for h in range(1, harmonics + 1):
        band = (freqs >= h * f0 / width) & (freqs <= h * f0 * width)
        if h * f0 * width < SR / 2 and band.any():
            levels[h - 1] = spec[band].max() + 1e-12
        if h * f0 < NOISE_BAND_HZ:
            near |= band
    below = freqs < NOISE_BAND_HZ
    hnr = 10 * np.log10((spec[near].sum() + 1e-12) / (spec[below & ~near].sum() + 1e-12))
    centroid = float((freqs * spec).sum() / (spec.sum() + 1e-12))
    return 10 * np.log10(levels / levels.max()), float(hnr), centroid


def profile(folder: Path, items, seconds: float | None, harmonics: int) -> dict:
    """Medians over every note of ``folder``'s renderings of the held-out pieces."""
    from transfer_table import clip_spans, load_clip, note_spans

    profiles, hnrs, centroids = [], [], []
    for wav, midi in items:
        found = next(iter(sorted(folder.rglob(wav.name))), None)
        if found is None:
            raise SystemExit(f"{folder}: no {wav.name} (render the held-out pieces there)")
        audio = load_clip(found, SR, seconds)
        for pitch, a, b in clip_spans(note_spans(midi), seconds):
            clip = audio[int(a * SR): int(b * SR)]
            if len(clip) < 256 or not np.any(clip):
                continue
            p, hnr, c = note_features(clip.astype(np.float64), pitch, harmonics)
            profiles.append(p)
            hnrs.append(hnr)
            centroids.append(c)
    return {"notes": len(profiles), "profile_db": np.median(profiles, 0).round(1).tolist(),
            "hnr_db": round(float(np.median(hnrs)), 1),
            "centroid_hz": round(float(np.median(centroids)))}


def draw(rows: dict, path: Path) -> Path:
    """The profiles, partial number against median dB re the strongest. A row named
    ``GROUP/NAME`` goes on GROUP's panel (its first row solid, the others dashed, so a target
    and its transfers sit together); a row without a group is drawn dotted on every panel."""
    from matplotlib.figure import Figure

    common = {k: r for k, r in rows.items() if "/" not in k}
    groups: dict[str, dict] = {}
    for k, r in rows.items():
        if "/" in k:
            group, _, name = k.partition("/")
            groups.setdefault(group, {})[name] = r
    groups = groups or {"": {}}
    cols = min(2, len(groups))
    nrows = -(-len(groups) // cols)
    fig = Figure(figsize=(6.0 * cols, 3.6 * nrows))
    h = np.arange(1, len(next(iter(rows.values()))["profile_db"]) + 1)
    for i, (group, members) in enumerate(groups.items()):
        ax = fig.add_subplot(nrows, cols, i + 1)
        for name, r in common.items():
            ax.plot(h, r["profile_db"], ":", color="0.45", marker=".", label=_label(name, r))
        for j, (name, r) in enumerate(members.items()):
            ax.plot(h, r["profile_db"], "-" if j == 0 else "--", marker="o", ms=4,
                    label=_label(name, r))
        ax.set_title(group)
        ax.set_xticks(h)
        ax.set_ylim(-75, 3)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
        ax.set_xlabel("partial (multiple of the score's f0)")
        ax.set_ylabel("median dB re the strongest")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _label(name: str, r: dict) -> str:
    return f"{name} (HNR {r['hnr_db']:.0f} dB, centroid {r['centroid_hz']} Hz)"


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from transfer_table import held_out_inputs, named_pairs

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pieces", type=Path, required=True, help="folder of the held-out .mid")
    p.add_argument("--render", action="append", default=[], help="NAME=FOLDER (repeat); the "
                   "first names the inputs whose file names the others share")
    p.add_argument("--seconds", type=float, default=None, help="only each piece's first s")
    p.add_argument("--harmonics", type=int, default=10)
    p.add_argument("--figure", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    renders = named_pairs(args.render, "--render")
    if not renders:
        raise SystemExit("give at least one --render NAME=FOLDER")
    items = held_out_inputs(Path(next(iter(renders.values()))), args.pieces)
    for _wav, midi in items:
        if not midi.is_file():
            raise SystemExit(f"{midi}: missing; the first --render folder must hold each "
                             "piece's .midi beside its .wav (a render-midi folder)")
    rows = {name: profile(Path(folder), items, args.seconds, args.harmonics)
            for name, folder in renders.items()}
    lines = [f"| rendering | notes | partials 1-{args.harmonics}, dB re the strongest | HNR dB "
             "| centroid Hz |", "|---|---:|---|---:|---:|"]
    lines += [f"| {name} | {r['notes']} | {' '.join(f'{v:.0f}' for v in r['profile_db'])} | "
              f"{r['hnr_db']:.1f} | {r['centroid_hz']} |" for name, r in rows.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    if args.figure is not None:
        draw(rows, args.figure)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
