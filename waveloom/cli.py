"""The ``waveloom`` command: one verb per arrow of the design's flow.

    waveloom data render-notes|render-midi   built-in offline data (SoundFont renders)
    waveloom prepare SRC OUT                 decode any source once into a cache
    waveloom train CONFIG --data CACHE --out RUN
    waveloom generate CKPT --out DIR
    waveloom evaluate CKPT --data CACHE
    waveloom demo                            the README's main job

Errors a user can cause are printed as one line (``error: ...``) with exit status 2; heavy
imports (torch, lightning) happen inside the verbs so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from waveloom.errors import WaveloomError


def _int_list(text: str) -> list[int]:
    """'0-7' -> [0..7]; '50,100' -> [50, 100]; '36-84,96' mixes ranges and single values."""
    values: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list like 0-7 or 50,100")
        lo, hi = int(match[1]), int(match[2] or match[1])
        if hi < lo:
            raise argparse.ArgumentTypeError(f"{part!r}: the range runs backwards")
        values.extend(range(lo, hi + 1))
    return values


# --------------------------------------------------------------------------- verbs


def cmd_render_notes(args: argparse.Namespace) -> None:
    from waveloom.data.synth import render_notes

    summary = render_notes(
        args.out,
        soundfont=args.soundfont,
        programs=args.programs,
        pitches=args.pitches,
        velocities=args.velocities,
        sample_rate=args.sr,
        progress=not args.quiet,
    )
    print(summary)


def cmd_render_midi(args: argparse.Namespace) -> None:
    from waveloom.data.synth import render_midi

    summary = render_midi(
        args.out,
        chorales=args.chorales,
        midi_dir=args.midi,
        soundfont=args.soundfont,
        sample_rate=args.sr,
        progress=not args.quiet,
    )
    print(summary)


def cmd_prepare(args: argparse.Namespace) -> None:
    from waveloom.data.prepare import prepare

    summary = prepare(args.src, args.out, format=args.format, sample_rate=args.sr,
                      progress=not args.quiet)
    print(summary)


def cmd_train(args: argparse.Namespace) -> None:
    from waveloom.config import load_config
    from waveloom.train.trainer import train

    overrides = list(args.overrides)
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    cfg = load_config(args.config, overrides)
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    result = train(
        cfg,
        args.data,
        args.out,
        resume=args.resume,
        accelerator=args.accelerator,
        devices=args.devices,
        num_nodes=args.nodes,
        strategy=args.strategy,
        progress=not args.quiet,
    )
    if not result.is_global_zero:  # under DDP only rank 0 reports
        return
    state = "interrupted" if result.interrupted else "done"
    print(f"{state}: step {result.step}, loss {result.last_loss:.4f}, "
          f"{result.seconds:.0f} s; weights in {result.run_dir / 'model.safetensors'}")


def cmd_generate(args: argparse.Namespace) -> None:
    from waveloom.generate import generate_to_folder

    paths = generate_to_folder(
        args.checkpoint,
        args.out,
        n=args.n,
        seconds=args.seconds,
        pitch=args.pitch,
        instrument=args.instrument,
        temperature=args.temperature,
        seed=args.seed,
        prime=args.prime,
        device=args.device,
        progress=not args.quiet,
    )
    for path in paths:
        print(path)


def cmd_evaluate(args: argparse.Namespace) -> None:
    import json

    from waveloom.evaluate.run import evaluate

    report = evaluate(
        args.checkpoint,
        data=args.data,
        split=args.split,
        metrics=args.metrics.split(","),
        max_examples=args.max_examples,
        device=args.device,
        progress=not args.quiet,
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")


def cmd_demo(args: argparse.Namespace) -> None:
    from waveloom.demo import run_demo

    index = run_demo(args.out, progress=not args.quiet)
    print(f"open {index} to listen")


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="waveloom",
        description="Music generation in the waveform domain.",
    )
    from waveloom import __version__

    p.add_argument("--version", action="version", version=f"waveloom {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def quiet(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    # data
    data = sub.add_parser("data", help="render the built-in offline data sets")
    dsub = data.add_subparsers(dest="data_verb", metavar="WHAT", required=True)
    rn = dsub.add_parser("render-notes", help="NSynth-style notes from a SoundFont")
    rn.add_argument("out", type=Path, help="output folder (NSynth json/wav layout)")
    rn.add_argument("--soundfont", type=Path, default=None,
                    help="a .sf2/.sf3 file (default: TimGM6mb.sf2 shipped by pretty_midi)")
    rn.add_argument("--programs", type=_int_list, default=list(range(8)),
                    help="General MIDI programs, e.g. 0-7 or 0,24,40 (default 0-7)")
    rn.add_argument("--pitches", type=_int_list, default=list(range(36, 85)),
                    help="MIDI pitches, e.g. 36-84 (default)")
    rn.add_argument("--velocities", type=_int_list, default=[50, 100],
                    help="MIDI velocities, e.g. 50,100 (default)")
    rn.add_argument("--sr", type=int, default=16000, help="sample rate in Hz (default 16000)")
    quiet(rn)
    rn.set_defaults(func=cmd_render_notes)
    rm = dsub.add_parser("render-midi", help="Bach chorales / MIDI files rendered, MAESTRO layout")
    rm.add_argument("out", type=Path, help="output folder (MAESTRO csv/midi/wav layout)")
    rm.add_argument("--chorales", type=int, default=0, help="how many of music21's Bach chorales")
    rm.add_argument("--midi", type=Path, default=None, help="a folder of .mid files to render too")
    rm.add_argument("--soundfont", type=Path, default=None, help="a .sf2/.sf3 file")
    rm.add_argument("--sr", type=int, default=16000, help="sample rate in Hz (default 16000)")
    quiet(rm)
    rm.set_defaults(func=cmd_render_midi)

    # prepare
    pr = sub.add_parser("prepare", help="decode a source once into a training cache")
    pr.add_argument("src", type=Path, help="a folder of audio, an NSynth or a MAESTRO folder")
    pr.add_argument("out", type=Path, help="cache folder to write")
    pr.add_argument("--format", choices=["auto", "folder", "nsynth", "maestro"], default="auto")
    pr.add_argument("--sr", type=int, default=16000, help="cache sample rate (default 16000)")
    quiet(pr)
    pr.set_defaults(func=cmd_prepare)

    # train
    tr = sub.add_parser("train", help="train a model from a preset")
    tr.add_argument("config", type=Path, help="preset YAML, e.g. configs/wavenet/tiny.yaml")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="config overrides, e.g. model.stacks=2 train.lr=3e-4")
    tr.add_argument("--data", type=Path, required=True, help="cache folder from `prepare`")
    tr.add_argument("--out", type=Path, required=True, help="run folder")
    tr.add_argument("--max-steps", type=int, default=None, help="shortcut for train.max_steps")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--accelerator", default="auto", help="auto | cpu | cuda")
    tr.add_argument("--devices", default=1, type=lambda s: s if s == "auto" else int(s),
                    help="devices per node (default 1)")
    tr.add_argument("--nodes", type=int, default=1, help="number of nodes (default 1)")
    tr.add_argument("--strategy", default="auto", help="auto | ddp | ...")
    tr.add_argument("--threads", type=int, default=None,
                    help="CPU threads per process (use 1 when the machine is shared: "
                         "intra-op threads stall when another job holds a core)")
    quiet(tr)
    tr.set_defaults(func=cmd_train)

    # generate
    ge = sub.add_parser("generate", help="sample audio from a checkpoint")
    ge.add_argument("checkpoint", type=Path, help="model.safetensors from a run")
    ge.add_argument("--out", type=Path, required=True, help="output folder")
    ge.add_argument("--n", type=int, default=4, help="how many samples")
    ge.add_argument("--seconds", type=float, default=2.0, help="length of each sample")
    ge.add_argument("--pitch", type=int, default=None, help="MIDI pitch (pitch-conditioned models)")
    ge.add_argument("--instrument", default=None,
                    help="instrument id or name (instrument-conditioned models)")
    ge.add_argument("--temperature", type=float, default=1.0)
    ge.add_argument("--seed", type=int, default=0)
    ge.add_argument("--prime", type=Path, default=None, help="audio file to continue from")
    ge.add_argument("--device", default="auto", help="auto | cpu | cuda")
    quiet(ge)
    ge.set_defaults(func=cmd_generate)

    # evaluate
    ev = sub.add_parser("evaluate", help="score a checkpoint on a cache split")
    ev.add_argument("checkpoint", type=Path)
    ev.add_argument("--data", type=Path, required=True, help="cache folder from `prepare`")
    ev.add_argument("--split", default="test")
    ev.add_argument("--metrics", default="nll", help="comma-separated: nll")
    ev.add_argument("--max-examples", type=int, default=None, help="cap the examples scored")
    ev.add_argument("--json", type=Path, default=None, help="also write the report here")
    ev.add_argument("--device", default="auto", help="auto | cpu | cuda")
    quiet(ev)
    ev.set_defaults(func=cmd_evaluate)

    # demo
    de = sub.add_parser("demo", help="the main job: render data, generate with the demo model")
    de.add_argument("--out", type=Path, default=Path("out/demo"))
    quiet(de)
    de.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may come after options (`train CFG --data D k=v`): argparse leaves
    # those unparsed, so collect them here instead of failing.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        args.func(args)
    except WaveloomError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
