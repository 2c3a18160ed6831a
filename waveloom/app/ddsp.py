"""``waveloom transfer`` and ``waveloom perform``: play a trained DDSP model.

* ``transfer CKPT AUDIO... --out DIR``: the f0 and loudness of each input (any sample rate, mono
  or stereo, mixed down) drive the model: timbre transfer for a solo model, resynthesis (z from
  the encoder) for an ae model. ``--pitch-shift`` semitones, ``--loudness-shift`` dB.
* ``perform CKPT SONG.mid --out DIR``: notes become f0 curves (``--vibrato CENTS,HZ``,
  ``--portamento MS``), velocities loudness with attack and release; one voice per line,
  summed.

``CKPT`` is a ``model.safetensors``, or a folder of instruments with ``--instrument NAME``
picking ``NAME.safetensors`` (or ``ddsp-NAME.safetensors``) in it. Output: ``DIR/<stem>.wav``
per input. Warnings (silent input, f0 clipped to the model's range) go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from waveloom.app.common import add_device_arg, add_quiet_arg
from waveloom.errors import ConfigError
from waveloom.shipped import checkpoint_path

F0_METHODS = ("crepe-full", "crepe-tiny", "yin", "pyin")  # waveloom.audio.f0.METHODS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    tr = subparsers.add_parser("transfer", help="DDSP: play audio's pitch and loudness with a "
                               "trained instrument (timbre transfer / resynthesis)")
    tr.add_argument("checkpoint", type=checkpoint_path,
                    help="a ddsp model.safetensors, or a folder of them "
                    "with --instrument")
    tr.add_argument("audio", type=Path, nargs="+", help="input audio files")
    tr.add_argument("--pitch-shift", type=float, default=0.0, metavar="ST",
                    help="semitones added to the input's pitch (default 0)")
    tr.add_argument("--loudness-shift", type=float, default=0.0, metavar="DB",
                    help="dB added to the input's loudness (default 0)")
    tr.add_argument("--f0-method", default=None, metavar="|".join(F0_METHODS),
                    help="f0 tracker (default: the one the model was trained with; yin is the "
                         "fastest)")
    tr.add_argument("--stream", action="store_true",
                    help="play each file block by block as a live input would (10 ms blocks, "
                         "causal YIN f0 and loudness) and report the time of the worst block")
    pe = subparsers.add_parser("perform", help="DDSP: render a MIDI file with a trained "
                               "instrument")
    pe.add_argument("checkpoint", type=checkpoint_path,
                    help="a ddsp model.safetensors, or a folder of them "
                    "with --instrument")
    pe.add_argument("midi", type=Path, help="a .mid file (every pitched part is played)")
    pe.add_argument("--vibrato", default="0,0", metavar="CENTS,HZ",
                    help="vibrato depth in cents and rate in Hz, e.g. 30,5.5 (default none)")
    pe.add_argument("--portamento", type=float, default=0.0, metavar="MS",
                    help="glide into each note over this many milliseconds (default 0)")
    for parser in (tr, pe):
        parser.add_argument("--out", type=Path, required=True, help="output folder")
        parser.add_argument("--instrument", default=None,
                            help="with CKPT a folder: the instrument NAME to load from it")
        parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
        add_device_arg(parser, default="cpu")
        add_quiet_arg(parser)
        parser.set_defaults(run=run)


def resolve_checkpoint(checkpoint: Path, instrument: str | None) -> Path:
    """CKPT itself, or with ``--instrument`` the NAME's file in the folder CKPT."""
    if instrument is None:
        if checkpoint.is_dir():
            raise ConfigError(f"{checkpoint} is a folder; pick an instrument in it with "
                              "--instrument NAME (NAME.safetensors or ddsp-NAME.safetensors)")
        return checkpoint
    if not checkpoint.is_dir():
        raise ConfigError(f"--instrument {instrument}: CKPT must then be a folder of instruments, "
                          f"but {checkpoint} is not one")
    for name in (f"{instrument}.safetensors", f"ddsp-{instrument}.safetensors"):
        if (checkpoint / name).is_file():
            return checkpoint / name
    found = sorted(p.stem.removeprefix("ddsp-") for p in checkpoint.glob("*.safetensors"))
    raise ConfigError(f"--instrument {instrument}: not in {checkpoint} (it has: "
                      f"{', '.join(found) or 'no .safetensors files'})")


def parse_vibrato(text: str) -> tuple[float, float]:
    """'30,5.5' -> (30.0 cents, 5.5 Hz); a one-line error otherwise."""
    import math

    try:
        cents, hz = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--vibrato {text!r}: give CENTS,HZ, e.g. 30,5.5") from None
    if not (math.isfinite(cents) and math.isfinite(hz) and cents >= 0 and hz >= 0):
        raise ConfigError(f"--vibrato {text!r}: cents and Hz must be finite and >= 0")
    return cents, hz


def _load(args: argparse.Namespace):
    from waveloom.device import pick_device
    from waveloom.models.load import load_checkpoint

    path = resolve_checkpoint(args.checkpoint, args.instrument)
    model, _ = load_checkpoint(path, pick_device(args.device), expect_family="ddsp")
    return model


def _warn(notes: list[str]) -> None:
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)


@contextlib.contextmanager
def _threads() -> Iterator[None]:
    """Both cores for the harmonic synthesiser (its chunks on Python threads), one torch thread
    otherwise: on a 2-core machine with other work, torch's intra-op threads doubled the load
    and render times (each small parallel kernel waits for a core; docs/ddsp.md). Restored
    on exit (the tests call the CLI in-process)."""
    import torch

    from waveloom.nn.ddsp import harmonic

    before, synth = torch.get_num_threads(), harmonic.SYNTH_THREADS
    harmonic.SYNTH_THREADS = max(1, min(before, os.cpu_count() or 1))
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        harmonic.SYNTH_THREADS = synth


def run(args: argparse.Namespace) -> int | None:
    with _threads():
        return _run(args)


def _run(args: argparse.Namespace) -> int | None:
    from waveloom.audio.io import load_audio, save_audio
    from waveloom.models.ddsp.perform import audio_controls, midi_controls, render

    if args.verb == "perform":
        vibrato = parse_vibrato(args.vibrato)
        if not args.portamento >= 0:
            raise ConfigError(f"--portamento {args.portamento}: must be >= 0 milliseconds")
    if getattr(args, "f0_method", None) not in (None, *F0_METHODS):
        raise ConfigError(f"--f0-method {args.f0_method}: use one of {', '.join(F0_METHODS)}")
    model = _load(args)
    sr = model.config.sample_rate
    args.out.mkdir(parents=True, exist_ok=True)
    if args.verb == "perform":
        controls = midi_controls(model, args.midi, vibrato, args.portamento / 1000.0)
        _warn(controls.notes)
        path = save_audio(args.out / f"{args.midi.stem}.wav", render(model, controls, args.seed),
                          sr)
        print(path)
        return 0
    stems = [source.stem for source in args.audio]
    if len(set(stems)) < len(stems):
        raise ConfigError("transfer: two inputs share a file name ("
                          f"{sorted({s for s in stems if stems.count(s) > 1})}); their outputs "
                          "would overwrite each other; rename or run them separately")
    if args.stream:
        return _run_stream(args, model)
    for source in args.audio:
        audio, _ = load_audio(source, sr)
        controls = audio_controls(model, audio, str(source), args.pitch_shift,
                                  args.loudness_shift, args.f0_method)
        _warn(controls.notes)
        out = render(model, controls, args.seed, length=len(audio))
        print(save_audio(args.out / f"{source.stem}.wav", out, sr))
    return 0


def _run_stream(args: argparse.Namespace, model) -> int:
    """``transfer --stream``: each file through :func:`waveloom.models.ddsp.live.
    transfer_live`, with its block timings."""
    import numpy as np

    from waveloom.audio.io import load_audio, save_audio
    from waveloom.models.ddsp.live import transfer_live

    if args.f0_method not in (None, "yin"):
        raise ConfigError(f"--stream tracks f0 with yin, live; --f0-method {args.f0_method} "
                          "needs the whole file (drop --stream)")
    sr = model.config.sample_rate
    for source in args.audio:
        audio, _ = load_audio(source, sr)
        out, live = transfer_live(model, audio, pitch_shift=args.pitch_shift,
                                  loudness_shift=args.loudness_shift, seed=args.seed)
        peak = float(np.abs(out).max()) if out.size else 0.0
        print(save_audio(args.out / f"{source.stem}.wav", out / max(peak, 1.0), sr))
        ms = np.asarray(live.ms)
        print(f"stream: {len(ms)} blocks of 10 ms; median {np.median(ms):.2f} ms, worst "
              f"{ms.max():.2f} ms, {int((ms > 10.0).sum())} over the 10 ms budget; "
              f"latency {live.latency_ms:.0f} ms + the block")
    return 0
