"""Render fidelity (issue #23, part 4): how close the DDSP per-voice render of a score is to a
SoundFont render of the same notes.

For each ``.mid`` in MIDI_FOLDER: ``render_score`` plays it with the DDSP instruments (voices by
register, ``--instruments`` top first); the lines *as played* (after any octave moves) are
written as one track per voice with each instrument's GM program (violin 40, flute 73, trumpet
56) and rendered with the reference SoundFont (FluidR3, which no shipped model trained on) and,
as a yardstick, with a second SoundFont (TimGM6mb, the one the instruments learned from). Each
render is scaled to the same RMS (the distance should not score loudness), both are cut to the
shorter, and the multi-scale spectral distance (``waveloom.audio.spectral``, lower is closer) to
the reference is printed per piece with the mean.

``--roll CKPT`` adds the piano-roll WaveNet (``configs/wavenet/chorale-roll.yaml``, trained on
organ renders): it plays the written score, all voices at once, and is compared with the
FluidR3 render of the same notes on the church organ (GM 19), TimGM6mb's organ the yardstick.
``--transcriber CKPT`` adds the transcription half: the note F1 (50 ms onsets, mir_eval) of
each render, transcribed, against the notes it was asked to play, beside the F1 of the FluidR3
reference itself (what the transcriber allows).

    PYTHONPATH=. python benchmarks/render_fidelity.py MIDI_FOLDER [--seconds 20] \\
        [--instruments violin,flute,trumpet,trumpet] [--out DIR] [--json FILE]

Chorale MIDI files for MIDI_FOLDER: ``--write-chorales N`` writes the first N music21 chorales
there first (one part per voice, 80 quarters a minute, as the renders of the corpus use),
after the first ``--skip 30`` (the shipped instruments trained on the lines of the first 30).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

FLUID = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RMS = 0.1


def write_chorales(folder: Path, count: int, skip: int) -> None:
    """The music21 chorales ``skip`` .. ``skip + count - 1`` as MIDI files in ``folder``."""
    from waveloom.data.synth.chorales import chorale_ids, chorale_midi, name_of

    folder.mkdir(parents=True, exist_ok=True)
    for chorale in chorale_ids(skip + count)[skip:]:
        chorale_midi(chorale, (0,), 80.0).write(str(folder / f"{name_of(chorale)}.mid"))


def soundfont_render(midi, font_path, sample_rate: int) -> np.ndarray:
    from waveloom.data.synth.engine import load_soundfont, render_rate_for
    from waveloom.data.synth.performance import render_midi_audio

    rate = render_rate_for(sample_rate)
    font, _ = load_soundfont(font_path, rate)
    return render_midi_audio(midi, font, rate, sample_rate, tail_seconds=0.5)


def _level(audio: np.ndarray) -> np.ndarray:
    return (audio * RMS / max(1e-9, float(np.sqrt(np.mean(np.square(audio)))))).astype(
        np.float32)


def distance(reference: np.ndarray, other: np.ndarray) -> float:
    from waveloom.audio.spectral import multiscale_spectral_distance

    n = min(len(reference), len(other))
    return float(multiscale_spectral_distance(_level(reference[:n]), _level(other[:n])))


def cut_score(path: Path, seconds: float | None):
    """The score, without notes starting after ``seconds`` (shortened to end there)."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(path))
    if seconds is not None:
        for part in midi.instruments:
            part.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, min(n.end, seconds))
                          for n in part.notes if n.start < seconds]
    return midi


def _notes(midi) -> np.ndarray:
    """Every note of a PrettyMIDI as float ``[N, 4]``: onset s, offset s, pitch, velocity."""
    from waveloom.data.roll import pretty_midi_notes

    return pretty_midi_notes(midi, sustain=False)


def _f1(args, audio: np.ndarray, notes: np.ndarray) -> float:
    from waveloom.evaluate.transcription import score, transcribe_audio

    return score(notes, transcribe_audio(args.transcriber_model, audio))["note"][2]


def _roll_row(path: Path, args, sr: int) -> dict:
    """The roll WaveNet's render of the written score against FluidR3's organ."""
    from waveloom.config import SamplingOptions
    from waveloom.sampling.roll_render import render_roll

    written = cut_score(path, args.seconds)
    for part in written.instruments:
        part.program = 19  # church organ: what the roll WaveNet learned
    notes = _notes(written)
    audio = render_roll(args.roll_model, notes, SamplingOptions(seed=0, progress=False)).numpy()
    organ = soundfont_render(written, args.soundfont, sr)
    row = {"roll": distance(organ, audio), "timgm6mb_organ": distance(
        organ, soundfont_render(written, None, sr))}
    if args.transcriber_model is not None:
        row["roll_f1"] = _f1(args, audio, notes)
        row["fluid_organ_f1"] = _f1(args, organ, notes)
    return row


def score_one(path: Path, args) -> dict:
    from waveloom.data.voices import lines_to_midi
    from waveloom.sampling.score import PROGRAMS, render_score

    start = time.perf_counter()
    rendered = render_score(cut_score(path, args.seconds), args.instruments.split(","),
                            what=path.name, max_voices=args.voices)
    played = lines_to_midi(rendered.lines, rendered.voices,
                           [PROGRAMS.get(v, 0) for v in rendered.voices])
    sr = rendered.sample_rate
    fluid = soundfont_render(played, args.soundfont, sr)
    other = soundfont_render(played, None, sr)
    row = {"piece": path.stem, "voices": len(rendered.lines),
           "ddsp": distance(fluid, rendered.audio), "timgm6mb": distance(fluid, other),
           "seconds": round(len(rendered.audio) / sr, 2),
           "wall_s": round(time.perf_counter() - start, 2), "notes": rendered.notes}
    if args.transcriber_model is not None:
        row["ddsp_f1"] = _f1(args, rendered.audio, _notes(played))
        row["fluid_f1"] = _f1(args, fluid, _notes(played))
    if args.roll_model is not None:
        row.update(_roll_row(path, args, sr))
    if args.out:
        from waveloom.audio.io import save_audio

        args.out.mkdir(parents=True, exist_ok=True)
        save_audio(args.out / f"{path.stem}-ddsp.wav", rendered.audio, sr)
        save_audio(args.out / f"{path.stem}-fluidr3.wav", _level(fluid), sr)
    return row


def _load_models(args) -> None:
    from waveloom.models.load import load_checkpoint

    args.roll_model = args.transcriber_model = None
    if args.roll is not None:
        args.roll_model = load_checkpoint(args.roll, expect_family="wavenet")[0].eval()
    if args.transcriber is not None:
        from waveloom.evaluate.transcription import load_transcriber

        args.transcriber_model = load_transcriber(args.transcriber)


def _table(rows: list[dict]) -> dict:
    keys = [k for k in ("ddsp", "timgm6mb", "roll", "timgm6mb_organ", "ddsp_f1", "fluid_f1",
                        "roll_f1", "fluid_organ_f1") if k in rows[0]]
    print("| piece | voices | " + " | ".join(keys) + " | seconds | wall s |")
    print("| --- | --- | " + " | ".join("---" for _ in keys) + " | --- | --- |")
    for r in rows:
        cells = " | ".join(f"{r[k]:.2f}" for k in keys)
        print(f"| {r['piece']} | {r['voices']} | {cells} | {r['seconds']} | {r['wall_s']} |")
    mean = {k: statistics.fmean(r[k] for r in rows) for k in keys}
    print(f"| mean of {len(rows)} | | " + " | ".join(f"{mean[k]:.2f}" for k in keys) + " | | |")
    return mean


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("midi_folder", type=Path)
    p.add_argument("--instruments", default="violin,flute,trumpet,trumpet")
    p.add_argument("--voices", type=int, default=None, help="cap the voices (default: no cap)")
    p.add_argument("--seconds", type=float, default=20.0, help="the first S seconds of each score")
    p.add_argument("--soundfont", type=Path, default=FLUID, help="the reference SoundFont")
    p.add_argument("--write-chorales", type=int, default=0, metavar="N")
    p.add_argument("--skip", type=int, default=30, help="chorales skipped by --write-chorales")
    p.add_argument("--out", type=Path, default=None, help="also write the renders here")
    p.add_argument("--roll", type=Path, default=None, help="a roll WaveNet checkpoint too")
    p.add_argument("--transcriber", type=Path, default=None, help="score renders by note F1")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    _load_models(args)
    if args.write_chorales:
        write_chorales(args.midi_folder, args.write_chorales, args.skip)
    if not args.soundfont.is_file():
        print(f"error: reference SoundFont {args.soundfont} missing (fluid-soundfont-gm)",
              file=sys.stderr)
        return 2
    paths = sorted(args.midi_folder.glob("*.mid")) + sorted(args.midi_folder.glob("*.midi"))
    if not paths:
        print(f"error: no .mid files in {args.midi_folder}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    rows = [score_one(path, args) for path in paths]
    mean = _table(rows)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "mean": mean}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
