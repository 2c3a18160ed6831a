"""The ``waveloom`` command: one verb per arrow of the design's flow.

    waveloom data render-notes|render-midi   built-in offline data (SoundFont renders)
    waveloom prepare SRC OUT                 decode any source once into a cache
    waveloom train CONFIG --data CACHE --out RUN
    waveloom distill TEACHER --data CACHE --out RUN   a parallel IAF student of a Gaussian WaveNet
    waveloom generate CKPT --out DIR          (--list: the checkpoint's instruments)
    waveloom encode CKPT FILES... --out DIR  autoencoder codes (.npy + image) of audio files
    waveloom decode CKPT EMB.npy... --out DIR   audio from autoencoder codes
    waveloom interpolate CKPT A.wav B.wav --out DIR   mix two sounds' codes, decode each step
    waveloom vocode CKPT MEL.npy... --out DIR   audio from log mels (MelGAN or mel WaveNet)
    waveloom encode-codes CKPT --data CACHE --out CODES   a cache of ADA-level or codec codes
    waveloom hierarchy --prior P --levels TOP.. BOTTOM --out H.json   string levels together
    waveloom transfer CKPT AUDIO... --out DIR   DDSP: play audio's pitch/loudness on an instrument
    waveloom perform CKPT SONG.mid --out DIR    DDSP: render a MIDI file with an instrument
    waveloom transcribe CKPT AUDIO... --out DIR  notes (.mid + piano roll) from audio
    waveloom translate CKPT AUDIO... --domain NAME --out DIR   audio into another instrument
    waveloom compose --seconds S --out DIR      a new piece: Music Transformer + DDSP voices
    waveloom evaluate CKPT|DIR [--data CACHE] --metrics nll,fad,pitch,classifier,ndb,spectral
    waveloom train-classifier CACHE --out CKPT   instrument-family + pitch classifier (metrics)
    waveloom models [NAME] [--dir RUNS]      the model zoo: shipped checkpoints and their cards
    waveloom export CKPT --format onnx|torchscript --out FILE   DDSP block, MelGAN, WaveNet step
    waveloom listen DIR_A DIR_B ...          blind listening test page; --report for MOS
    waveloom studio [--port P] [--no-browser]   a local web app over every model
    waveloom demo                            the README's main job

Each verb group lives in one module of :mod:`waveloom.app` (``add_parser`` + ``run``); this
module only builds the top parser, lets every app module add its verbs and dispatches. Errors a
user can cause are printed as one line (``error: ...``) with exit status 2; heavy imports (torch,
lightning) happen inside the verbs so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
from collections.abc import Sequence

import waveloom
from waveloom.app import (
    autoencode,
    codes,
    compose,
    data,
    ddsp,
    demo,
    distill,
    evaluate,
    export,
    generate,
    listen,
    models,
    studio,
    train,
    transcribe,
    translate,
    vocode,
)
from waveloom.errors import WaveloomError

#: The verb groups, in the order ``--help`` lists them.
APP_MODULES = (data, train, distill, generate, vocode, codes, autoencode, ddsp, transcribe,
               translate, compose, evaluate, listen, models, export, studio, demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``waveloom`` parser: every app module's verbs under one VERB."""
    parser = argparse.ArgumentParser(prog="waveloom",
                                     description="Music generation in the waveform domain.")
    parser.add_argument("--version", action="version", version=f"waveloom {waveloom.__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for module in APP_MODULES:
        module.add_parser(sub)
    return parser


#: Seconds of start-up run without Python's cyclic garbage collector. A verb's first seconds are
#: imports (torch, matplotlib, the model), which allocate ~10^6 long-lived objects; the
#: collector traverses them again and again to free almost nothing (measured: 0.15 s of
#: ``import torch``'s 1.6 s of CPU, 0.3 s of ``generate``'s imports). Reference counting still
#: frees everything acyclic meanwhile, and the collector is back on after this long however
#: long the verb runs, so a training run's cycles are collected as always.
START_UP_WITHOUT_GC_S = 5.0


def main(argv: Sequence[str] | None = None) -> int:
    if not gc.isenabled():  # a caller that manages the collector itself keeps its choice
        return _dispatch(argv)
    gc.disable()
    resume = threading.Timer(START_UP_WITHOUT_GC_S, gc.enable)
    resume.daemon = True
    resume.start()
    try:
        return _dispatch(argv)
    finally:
        resume.cancel()
        gc.enable()


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    # key=value overrides may come after options (`train CFG --data D k=v`): argparse leaves
    # those unparsed, so collect them here instead of failing.
    args, extra = parser.parse_known_args(argv)
    # the command as typed, for verbs that record how to reproduce a figure (evaluate --record)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code = args.run(args)
    except WaveloomError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `waveloom models | head`: the reader left; not an error of ours
        sys.stdout = None  # nothing more to flush into the closed pipe at exit
        return 0
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
