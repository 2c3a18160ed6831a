"""``waveloom compose --seconds S --out DIR``: a new piece, from notes to a neural performance.

Two stages of Wave2Midi2Wave (issue #23): a Music Transformer draws performance events until S
seconds (:mod:`waveloom.sampling.compose`, after ``--prime MIDI`` if given), and the DDSP
instruments play its voices (:func:`waveloom.sampling.score.render_score`: voices by register,
top first, voice i on ``--instruments``' i-th modulo their number). Writes ``DIR/piece.mid``
(one track per voice, as composed), ``DIR/piece.wav`` and ``DIR/piece.png`` (the piano roll, one
colour per voice, over the render's constant-Q spectrogram), and prints each stage's seconds.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from waveloom.app.common import add_device_arg, add_quiet_arg, add_sampling_args, check_positive
from waveloom.errors import ConfigError
from waveloom.shipped import checkpoint_path

#: The chorale Music Transformer ``compose`` uses by default (shipped by the lead).
DEFAULT_MODEL = (Path(__file__).resolve().parents[1] / "assets"
                 / "music-transformer-chorales.safetensors")
MAX_SECONDS = 600.0  # ten minutes: past that the O(L^2) attention makes a round minutes long
DEFAULT_VOICES = "violin,flute,trumpet,trumpet"  # soprano, alto, tenor, bass (docs/compose.md)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("compose", help="a new piece: Music Transformer notes played by "
                              "DDSP instruments (piece.mid, piece.wav, piece.png)")
    p.add_argument("--seconds", type=float, default=30.0,
                   help=f"length of the piece in seconds, the prime included (default 30, at "
                        f"most {MAX_SECONDS:g})")
    p.add_argument("--prime", type=Path, default=None, metavar="MIDI",
                   help="a MIDI file the piece starts with (the model continues it)")
    p.add_argument("--instruments", default=DEFAULT_VOICES, metavar="a,b,c,d",
                   help="DDSP instruments by voice, top first: shipped names (violin, flute, "
                        "trumpet) or .safetensors files; voice i plays the i-th modulo their "
                        f"number (default {DEFAULT_VOICES})")
    p.add_argument("--voices", type=int, default=4,
                   help="at most this many voices: a note past them cuts off the oldest held "
                        "note (default 4, the chorales' SATB)")
    p.add_argument("--reverb", type=float, default=0.0, metavar="WET",
                   help="a shared room for all voices: its wet share 0..1 (default 0: off; "
                        "0.2 is a small hall)")
    p.add_argument("--model", type=checkpoint_path, default=DEFAULT_MODEL, metavar="CKPT",
                   help="a music_transformer model.safetensors (default: the shipped chorale "
                        "model)")
    p.add_argument("--top-k", type=int, default=0, help="keep the k likeliest events (0: all)")
    p.add_argument("--top-p", type=float, default=0.95,
                   help="nucleus: keep the likeliest events up to this mass (default 0.95)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_sampling_args(p, ("seed", "temperature"))
    add_device_arg(p, default="cpu")
    add_quiet_arg(p)
    p.set_defaults(run=run)


def _check(args: argparse.Namespace) -> list[str]:
    """The instrument list, after every flag is checked (before any model loads)."""
    from waveloom.app.common import sampling_options
    from waveloom.sampling.score import instrument_path

    check_positive("--seconds", args.seconds)
    check_positive("--voices", args.voices)
    if not 0.0 <= args.reverb <= 1.0:
        raise ConfigError(f"--reverb {args.reverb}: the wet share must be in 0..1")
    if args.seconds > MAX_SECONDS:
        raise ConfigError(f"--seconds {args.seconds:g}: at most {MAX_SECONDS:g} (ten minutes); "
                          "compose longer pieces in parts with --prime")
    args.temperature = sampling_options(args).temperature  # --seed checked; None -> 1
    if args.top_k < 0 or not 0 < args.top_p <= 1:
        raise ConfigError(f"--top-k {args.top_k} / --top-p {args.top_p}: need k >= 0 and p "
                          "in (0, 1]")
    names = [n.strip() for n in args.instruments.split(",") if n.strip()]
    if not names:
        raise ConfigError("--instruments: give at least one name, e.g. violin,flute")
    for name in names:
        instrument_path(name)
    if args.prime is not None and not args.prime.is_file():
        raise ConfigError(f"--prime {args.prime}: no such MIDI file")
    return names


MISSING = ("no Music Transformer at {path}: the chorale model is not shipped yet; train one "
           "(docs/music_transformer.md: build_symbolic('corpus', chorales=300), then waveloom "
           "train configs/music_transformer/chorales.yaml --data corpus --out runs/mt) and pass "
           "--model runs/mt/model.safetensors")


@dataclass
class Piece:
    """What :func:`compose_piece` wrote and measured: ``paths`` (mid, wav, png), ``times``
    (stage -> seconds, in order), ``tokens`` events, the render, notes to print."""

    paths: list[Path]
    times: dict[str, float]
    tokens: int
    rendered: object
    notes: list[str]

    def summary(self) -> str:
        """One line: events, voices, peak, each stage's seconds and the total."""
        r = self.rendered
        peak_db = 20 * math.log10(max(r.peak * r.gain, 1e-12))
        spans = ", ".join(f"{k} {v:.1f} s" for k, v in self.times.items())
        return (f"{self.tokens} events, {len(r.lines)} voices ({', '.join(r.voices)}); peak "
                f"{peak_db:.1f} dBFS (gain {r.gain:.2f}); {spans}; total "
                f"{sum(self.times.values()):.1f} s")


def _load_composer(path: Path, device: str):
    from waveloom.device import pick_device
    from waveloom.models.load import load_checkpoint

    if not Path(path).is_file():
        raise ConfigError(MISSING.format(path=path))
    model, _ = load_checkpoint(path, pick_device(device), expect_family="music_transformer")
    return model


def _write(out: Path, rendered) -> list[Path]:
    """piece.mid (as composed, before any octave moves), piece.wav, piece.png."""
    from waveloom.audio.io import save_audio
    from waveloom.audio.plots import plot_score
    from waveloom.data.voices import lines_to_midi
    from waveloom.sampling.score import PROGRAMS

    programs = [PROGRAMS.get(name, 0) for name in rendered.voices]
    midi = lines_to_midi(rendered.score, rendered.voices, programs)
    out.mkdir(parents=True, exist_ok=True)
    midi.write(str(out / "piece.mid"))
    wav = save_audio(out / "piece.wav", rendered.audio, rendered.sample_rate)
    png = plot_score(rendered.audio, rendered.sample_rate, rendered.lines, out / "piece.png",
                     rendered.voices, title=f"piece: {len(rendered.lines)} voices")
    return [out / "piece.mid", Path(wav), Path(png)]


def compose_piece(model: Path, seconds: float, out: Path, *, prime: Path | None = None,
                  instruments: list[str] | None = None, seed: int = 0,
                  temperature: float = 1.0, top_k: int = 0, top_p: float = 0.95,
                  voices: int = 4, reverb: float = 0.0, device: str = "cpu") -> Piece:
    """The whole command (flags already checked): load the composer, draw events for
    ``seconds`` (after ``prime``'s), render them per voice, write ``out/piece.{mid,wav,png}``.

    Runs on one torch thread (the DDSP synthesiser's chunks still use every core): the
    composer's one-event steps are tiny kernels, and two intra-op threads on a busy 2-core
    machine made drawing 460 events take 12-18 s instead of 2.1 s (measured 2026-12-05)."""
    from waveloom.app.ddsp import _threads

    with _threads():
        return _compose_piece(model, seconds, out, prime, instruments, seed, temperature, top_k,
                              top_p, voices, reverb, device)


def _compose_piece(model, seconds, out, prime, instruments, seed, temperature, top_k, top_p,
                   voices, reverb, device) -> Piece:
    from waveloom.data.events import events_to_midi, midi_to_events
    from waveloom.sampling.compose import compose_tokens
    from waveloom.sampling.score import render_score

    clock = [time.perf_counter()]
    times: dict[str, float] = {}

    def lap(stage: str) -> None:
        clock.append(time.perf_counter())
        times[stage] = clock[-1] - clock[-2]

    composer = _load_composer(model, device)
    lap("load")
    first = None if prime is None else midi_to_events(prime)
    tokens, notes = compose_tokens(composer, seconds, first, seed=seed, temperature=temperature,
                                   top_k=top_k, top_p=top_p)
    lap("compose")
    rendered = render_score(events_to_midi(tokens), instruments or DEFAULT_VOICES.split(","),
                            seed=seed, device=device, what="piece", max_voices=voices,
                            reverb=reverb)
    lap("render")
    paths = _write(out, rendered)
    lap("write")
    return Piece(paths, times, len(tokens), rendered, notes + rendered.notes)


def run(args: argparse.Namespace) -> int:
    names = _check(args)
    piece = compose_piece(args.model, args.seconds, args.out, prime=args.prime,
                          instruments=names, seed=args.seed, temperature=args.temperature,
                          top_k=args.top_k, top_p=args.top_p, voices=args.voices,
                          reverb=args.reverb, device=args.device)
    for note in piece.notes:
        print(f"warning: {note}", file=sys.stderr)
    for path in piece.paths:
        print(path)
    print(piece.summary())
    return 0
