"""Are composed pieces played on pitch? Each voice of ``waveloom compose``'s piece.mid is
rendered alone by its DDSP instrument (the same ``render_score`` path, one line at a time) and
every note of at least ``--min-seconds`` is judged by crepe-full, strictly: its span less 60 ms
at both ends, the periodicity-weighted median pitch within 50 cents of the note as played
(after any octave fitting); octave errors count as errors. Also prints each mix's RMS.

    python benchmarks/compose_pitch.py out/structure/compose-s0 out/structure/compose-s1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pretty_midi


def judge_piece(folder: Path, judge, min_seconds: float) -> tuple[int, int, float]:
    """(notes on pitch, notes judged, RMS of the piece's mix) of ``folder/piece.mid``."""
    from waveloom.audio.io import load_audio
    from waveloom.sampling.score import render_score

    midi = pretty_midi.PrettyMIDI(str(folder / "piece.mid"))
    mix, _ = load_audio(folder / "piece.wav")
    ok = total = 0
    for part in midi.instruments:
        solo = pretty_midi.PrettyMIDI()
        solo.instruments.append(part)
        name = part.name.split(":")[-1].strip() or "violin"
        rendered = render_score(solo, [name], seed=0)
        sr = rendered.sample_rate
        for start, end, pitch, _ in rendered.lines[0]:
            if end - start < min_seconds:
                continue
            clip = rendered.audio[int((start + 0.06) * sr) : int((end - 0.06) * sr)]
            estimate = judge(clip, sr)
            total += 1
            ok += int(estimate.cents_off(pitch) <= 50.0)
    return ok, total, float(np.sqrt(np.mean(mix.astype(np.float64) ** 2)))


def main(argv: list[str] | None = None) -> int:
    from waveloom.evaluate.pitch import get_estimator

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pieces", type=Path, nargs="+", help="compose output folders")
    ap.add_argument("--min-seconds", type=float, default=0.3)
    args = ap.parse_args(argv)
    judge = get_estimator("crepe-full", hop_seconds=0.02)
    all_ok = all_n = 0
    print("| piece | notes on pitch (crepe-full, strict) | mix RMS |\n|---|---:|---:|")
    for folder in args.pieces:
        ok, n, rms = judge_piece(folder, judge, args.min_seconds)
        all_ok, all_n = all_ok + ok, all_n + n
        print(f"| {folder.name} | {ok}/{n} | {rms:.3f} |")
    print(f"| all | {all_ok}/{all_n} ({all_ok / max(all_n, 1):.1%}) | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
