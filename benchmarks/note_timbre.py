"""Does a generated note sound like the instrument it was asked for? A nearest-real-note judge.

The pitch grid (``benchmarks/pitch_grid.py --wavs``) says whether a note model's notes are on
pitch; it cannot say whether the "flute" at MIDI 60 is a flute. Here every generated note
``<instrument>_k<pitch>.wav`` is compared, by the multi-scale spectral distance
(:func:`waveloom.audio.spectral.multiscale_spectral_distance`, blind to phase), with the real
rendered notes of the same pitch on every instrument of the model (all velocities of a
``render-notes`` folder): the note's **instrument is recognised** when its nearest real note
is of the asked instrument. Reported with Wilson intervals:

* ``generated``: recognised share over all cells, and the mean distance to the nearest real
  note of the asked instrument;
* ``real`` (the ceiling): each real note at ``--query-velocity`` judged the same way against
  the other velocities (itself left out), i.e. how well the judge separates the instruments
  when the answer is a real note.

    PYTHONPATH=. python benchmarks/note_timbre.py out/grid --real data/demo-notes-v5 \\
        --seconds 2 [--record CKPT]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from waveloom.audio.io import load_audio
from waveloom.audio.spectral import multiscale_spectral_distance
from waveloom.evaluate.bootstrap import wilson_interval

SR = 16000
GENERATED = re.compile(r"(?P<inst>.+)_k(?P<pitch>\d+)\.wav$")
REAL = re.compile(r"(?P<inst>.+)-(?P<pitch>\d{3})-(?P<vel>\d{3})\.wav$")


def read(path: Path, seconds: float) -> np.ndarray:
    audio, _ = load_audio(path, SR)
    clip = np.zeros(int(seconds * SR), dtype=np.float32)
    clip[: min(len(clip), len(audio))] = audio[: len(clip)]
    return clip


def real_notes(folder: Path, seconds: float) -> dict[tuple[str, int], dict[int, np.ndarray]]:
    """{(instrument, pitch): {velocity: clip}} of a render-notes folder's audio/."""
    notes: dict[tuple[str, int], dict[int, np.ndarray]] = {}
    for path in sorted((folder / "audio").glob("*.wav")):
        m = REAL.match(path.name)
        if m:
            key = (m["inst"], int(m["pitch"]))
            notes.setdefault(key, {})[int(m["vel"])] = read(path, seconds)
    return notes


def judge(clip: np.ndarray, pitch: int, asked: str, instruments: list[str], real: dict,
          leave_out: int | None = None) -> tuple[bool, float] | None:
    """(nearest real note is of ``asked``, distance to the nearest ``asked`` note), or None
    where the folder lacks the cell."""
    best: dict[str, float] = {}
    for inst in instruments:
        cell = real.get((inst, pitch), {})
        dists = [float(multiscale_spectral_distance(ref, clip)) for vel, ref in cell.items()
                 if not (inst == asked and vel == leave_out)]
        if dists:
            best[inst] = min(dists)
    if asked not in best:
        return None
    return min(best, key=best.get) == asked, best[asked]


def summary(results: list[tuple[bool, float]]) -> dict:
    hits = sum(r[0] for r in results)
    lo, hi = wilson_interval(hits, len(results))
    return {"recognised": hits / len(results), "interval": [lo, hi], "n": len(results),
            "nearest_own_distance": float(np.mean([r[1] for r in results]))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("grid", type=Path, help="pitch_grid.py --wavs output folder")
    p.add_argument("--real", type=Path, required=True, help="render-notes folder")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--query-velocity", type=int, default=90)
    p.add_argument("--exclude-velocity", type=int, default=None, metavar="V",
                   help="leave the real notes of velocity V out of the reference (to judge "
                        "resyntheses of those notes, e.g. benchmarks/envelope_roundtrip.py)")
    p.add_argument("--out", type=Path, default=None, help="JSON report (default GRID/timbre.json)")
    p.add_argument("--figure", type=Path, default=None, metavar="PNG",
                   help="draw real (top) and generated (bottom) notes of --figure-pitch")
    p.add_argument("--figure-pitch", type=int, default=60)
    p.add_argument("--record", type=Path, default=None, metavar="CKPT",
                   help="add the generated notes' recognised share to CKPT's card")
    args = p.parse_args()
    real = real_notes(args.real, args.seconds)
    reference = {key: {v: clip for v, clip in cell.items() if v != args.exclude_velocity}
                 for key, cell in real.items()}
    generated = [(m["inst"], int(m["pitch"]), path) for path in sorted(args.grid.glob("*.wav"))
                 if (m := GENERATED.match(path.name))]
    instruments = sorted({inst for inst, _, _ in generated})
    gen_results = [r for inst, pitch, path in generated
                   if (r := judge(read(path, args.seconds), pitch, inst, instruments, reference))]
    pitches = sorted({pitch for _, pitch, _ in generated})
    real_results = [r for inst in instruments for pitch in pitches
                    if args.query_velocity in real.get((inst, pitch), {})
                    and (r := judge(real[(inst, pitch)][args.query_velocity], pitch, inst,
                                    instruments, real, leave_out=args.query_velocity))]
    report = {"generated": summary(gen_results), "real": summary(real_results),
              "instruments": instruments, "seconds": args.seconds, "grid": str(args.grid),
              "reference": str(args.real)}
    out = args.out or args.grid / "timbre.json"
    out.write_text(json.dumps(report, indent=1))
    for name in ("generated", "real"):
        s = report[name]
        print(f"{name}: instrument recognised {100 * s['recognised']:.1f} % "
              f"[{100 * s['interval'][0]:.1f}, {100 * s['interval'][1]:.1f}] of {s['n']}; "
              f"mean distance to the nearest real note of its instrument "
              f"{s['nearest_own_distance']:.2f}")
    if args.record:
        print(f"recorded in {record_timbre(args, report)}")
    if args.figure:
        draw(args, real, instruments)
        print(f"figure: {args.figure}")


def draw(args: argparse.Namespace, real: dict, instruments: list[str]) -> None:
    """Log spectrograms (n_fft 1024, hop 256, 0..4.7 kHz): per instrument, the real note of
    ``--figure-pitch`` at ``--query-velocity`` above the generated one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from waveloom.audio.spectral import stft

    pitch = args.figure_pitch
    fig, axes = plt.subplots(2, len(instruments), figsize=(3 * len(instruments), 5),
                             squeeze=False, sharey=True)
    for j, inst in enumerate(instruments):
        path = args.grid / f"{inst}_k{pitch:03d}.wav"
        rows = [real.get((inst, pitch), {}).get(args.query_velocity),
                read(path, args.seconds) if path.is_file() else None]
        for i, clip in enumerate(rows):
            ax = axes[i, j]
            ax.set_xticks([])
            if clip is None:
                continue
            db = 20 * np.log10(np.abs(stft(clip, 1024, 256).numpy())[:300] + 1e-5)
            ax.imshow(db, origin="lower", aspect="auto", vmin=db.max() - 90, vmax=db.max(),
                      cmap="magma", extent=(0, args.seconds, 0, 300 * SR / 1024))
            rms = float(np.sqrt(np.mean(clip ** 2)))
            ax.set_title(f"{'real' if i == 0 else 'generated'} {inst.split('_')[0]} "
                         f"(RMS {rms:.3f})", fontsize=9)
    axes[0, 0].set_ylabel("Hz")
    axes[1, 0].set_ylabel("Hz")
    fig.suptitle(f"MIDI {pitch}: real renders (velocity {args.query_velocity}) above "
                 f"generated notes ({args.grid.name})", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.figure, dpi=80)


def record_timbre(args: argparse.Namespace, report: dict) -> Path:
    """The recognised share, with its interval and the real notes' ceiling, on the card."""
    import sys

    from waveloom.zoo.records import Measurement, command_line, record

    gen, real = report["generated"], report["real"]
    data = (f"{gen['n']} generated notes ({args.grid}) vs the real renders of each pitch in "
            f"{args.real} ({len(report['instruments'])} instruments, every velocity), first "
            f"{args.seconds:g} s; real notes at velocity {args.query_velocity} against the "
            f"others: {100 * real['recognised']:.1f} % of {real['n']}")
    return record(args.record, Measurement(
        metric="instrument recognised (nearest real note, multi-scale spectral distance)",
        value=round(100 * gen["recognised"], 1), unit="%", data=data,
        command=command_line(sys.argv[1:], "benchmarks/note_timbre.py"), n=gen["n"],
        interval=(round(100 * gen["interval"][0], 1), round(100 * gen["interval"][1], 1)),
        higher_is_better=True))


if __name__ == "__main__":
    main()
