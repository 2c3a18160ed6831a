"""``waveloom transcribe CKPT AUDIO... --out DIR``: audio in, notes out (the transcriber family).

Writes ``DIR/NAME.mid`` (the notes, one piano track) and ``DIR/NAME.png`` (the notes as boxes over
the audio's constant-Q spectrogram) per input, and prints one line per file: notes found, seconds of
audio, seconds taken.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from waveloom.app.common import add_device_arg, add_quiet_arg
from waveloom.errors import ConfigError, DataError
from waveloom.shipped import checkpoint_path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    tr = subparsers.add_parser("transcribe", help="notes (.mid + piano-roll image) from audio "
                               "with a transcriber checkpoint")
    tr.add_argument("checkpoint", type=checkpoint_path, help="a transcriber's model.safetensors")
    tr.add_argument("audio", type=Path, nargs="+", help="audio files (any rate; resampled)")
    tr.add_argument("--out", type=Path, required=True, help="output folder")
    tr.add_argument("--onset-threshold", type=float, default=0.5,
                    help="onset probability that starts a note (default 0.5)")
    tr.add_argument("--frame-threshold", type=float, default=0.5,
                    help="frame probability that keeps it sounding (default 0.5)")
    add_device_arg(tr, default="cpu")
    add_quiet_arg(tr)
    tr.set_defaults(run=run)


def write_midi(notes, path: Path) -> Path:
    """Notes ``[N, 4]`` (onset s, offset s, pitch, velocity) -> a one-track MIDI file."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    track = pretty_midi.Instrument(program=0, name="transcription")
    track.notes = [pretty_midi.Note(int(v), int(p), float(a), float(b)) for a, b, p, v in notes]
    midi.instruments.append(track)
    midi.write(str(path))
    return path


def run(args: argparse.Namespace) -> int | None:
    from waveloom.audio.io import load_audio
    from waveloom.audio.plots import plot_score
    from waveloom.evaluate.transcription import load_transcriber, transcribe_audio

    for flag in ("onset_threshold", "frame_threshold"):
        if not 0.0 < getattr(args, flag) < 1.0:
            raise ConfigError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: give a "
                              "probability between 0 and 1")
    model = load_transcriber(args.checkpoint, args.device)
    sr = model.config.sample_rate
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.audio:
        started = time.perf_counter()
        audio, _ = load_audio(path, sr)
        try:
            notes = transcribe_audio(model, audio, args.onset_threshold, args.frame_threshold)
        except DataError as err:  # one bad file among many: say which, go on with the rest
            print(f"error: {path}: {err}", file=sys.stderr)
            failed += 1
            continue
        midi = write_midi(notes, args.out / f"{path.stem}.mid")
        plot_score(audio, sr, [[tuple(n) for n in notes]], args.out / f"{path.stem}.png",
                   names=["transcribed notes"], title=f"{path.name}: transcription over CQT")
        print(f"{midi}: {len(notes)} notes in {len(audio) / sr:.1f} s of audio "
              f"({time.perf_counter() - started:.1f} s)")
    return 2 if failed else 0
