"""The ``waveloom`` command: one verb per arrow of the design's flow.

    waveloom data render-notes|render-midi   built-in offline data (SoundFont renders)
    waveloom prepare SRC OUT                 decode any source once into a cache
    waveloom train CONFIG --data CACHE --out RUN
    waveloom generate CKPT --out DIR
    waveloom encode CKPT FILES... --out DIR  autoencoder codes (.npy + image) of audio files
    waveloom decode CKPT EMB.npy... --out DIR   audio from autoencoder codes
    waveloom interpolate CKPT A.wav B.wav --out DIR   mix two sounds' codes, decode each step
    waveloom vocode CKPT MEL.npy... --out DIR   audio from log mels (MelGAN or mel WaveNet)
    waveloom encode-codes CKPT --data CACHE --out CODES   a cache of an ADA level's codes
    waveloom hierarchy --prior P --levels TOP.. BOTTOM --out H.json   string levels together
    waveloom evaluate CKPT|DIR [--data CACHE] --metrics nll,fad,pitch,classifier,ndb,spectral
    waveloom train-classifier CACHE --out CKPT   instrument-family + pitch classifier (metrics)
    waveloom listen DIR_A DIR_B ...          blind listening test page; --report for MOS
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
    from waveloom.errors import ConfigError
    from waveloom.train.trainer import train

    overrides = list(args.overrides)
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    cfg = load_config(args.config, overrides)
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    if args.minutes is not None:
        if args.resume or args.max_steps is not None or args.devices != 1 or args.nodes != 1:
            raise ConfigError("--minutes sets the step count of a new single-device run; drop "
                              "--resume/--max-steps/--devices/--nodes or drop --minutes")
        from waveloom.train.budget import steps_for_minutes

        steps, per_step = steps_for_minutes(cfg, args.data, args.minutes, args.accelerator)
        print(f"calibrated: {per_step * 1000:.1f} ms/step -> train.max_steps={steps} "
              f"for {args.minutes:g} min")
        cfg.train.max_steps = steps
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
        engine=args.engine,
        threads=args.threads,
        weights=args.weights,
        interpolate=args.interpolate,
    )
    for path in paths:
        print(path)


def cmd_vocode(args: argparse.Namespace) -> None:
    from waveloom.vocode import vocode_files

    for path in vocode_files(args.checkpoint, args.mels, args.out, device=args.device,
                             threads=args.threads, seed=args.seed):
        print(path)


def cmd_encode(args: argparse.Namespace) -> None:
    from waveloom.autoencode import encode_files

    for path in encode_files(args.checkpoint, args.files, args.out, seconds=args.seconds,
                             device=args.device):
        print(path)


def cmd_decode(args: argparse.Namespace) -> None:
    from waveloom.autoencode import decode_files

    for path in decode_files(args.checkpoint, args.embeddings, args.out, pitch=args.pitch,
                             seconds=args.seconds, temperature=args.temperature,
                             seed=args.seed, engine=args.engine, threads=args.threads,
                             weights=args.weights, device=args.device,
                             progress=not args.quiet):
        print(path)


def cmd_interpolate(args: argparse.Namespace) -> None:
    from waveloom.autoencode import interpolate_files

    for path in interpolate_files(args.checkpoint, args.a, args.b, args.out, steps=args.steps,
                                  pitch=args.pitch, seconds=args.seconds,
                                  temperature=args.temperature, seed=args.seed,
                                  engine=args.engine, threads=args.threads,
                                  weights=args.weights, device=args.device,
                                  progress=not args.quiet):
        print(path)


def cmd_encode_codes(args: argparse.Namespace) -> None:
    from waveloom.encode_codes import encode_cache

    print(encode_cache(args.checkpoint, args.data, args.out, device=args.device,
                       progress=not args.quiet))


def cmd_hierarchy(args: argparse.Namespace) -> None:
    from waveloom.sampling.hierarchy import write_manifest

    print(write_manifest(args.out, args.prior, args.levels))


def _write_json(target: str, payload: dict) -> None:
    """``--json FILE`` (or ``-`` for stdout): the machine-readable report."""
    import json

    text = json.dumps(payload, indent=2, allow_nan=False)
    if target == "-":
        print(text)
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(text + "\n")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from waveloom.evaluate.report import format_report
    from waveloom.evaluate.run import evaluate

    def names(text: str | None) -> list[str] | None:
        return [t.strip() for t in text.split(",") if t.strip()] if text else None

    metrics = names(args.metrics) or (["nll"] if Path(args.target).is_file() else ["fad"])
    report = evaluate(
        args.target,
        metrics=metrics,
        data=args.data,
        split=args.split,
        reference=args.reference,
        reference_split=args.reference_split,
        max_examples=args.max_examples,
        max_reference=args.max_reference,
        clip_seconds=args.clip_seconds,
        sample_rate=args.sr,
        device=args.device,
        progress=not args.quiet,
        labels=args.labels,
        name_pattern=args.labels_from_names,
        embeddings=names(args.embeddings),
        fad_pool=args.fad_pool,
        crepe_hop=args.crepe_hop,
        stats_cache=None if args.no_stats_cache else (args.stats_cache or "default"),
        pitch_estimator=args.pitch_estimator,
        tolerance_cents=args.tolerance_cents,
        classifier=args.classifier,
        ndb_k=args.ndb_k,
        ndb_features=args.ndb_features,
        ndb_seconds=args.ndb_seconds,
        bootstrap=args.bootstrap,
        level=args.ci,
        seed=args.seed,
        n_generate=args.n_generate,
        seconds=args.seconds,
        temperature=args.temperature,
        generated_out=args.generated_out,
    )
    if args.json != "-":
        print(format_report(report))
    if args.json:
        _write_json(args.json, report)


def cmd_train_classifier(args: argparse.Namespace) -> None:
    from waveloom.evaluate.train_classifier import train_classifier
    from waveloom.generate import pick_device

    summary = train_classifier(
        args.cache,
        args.out,
        epochs=args.epochs,
        max_seconds=args.max_minutes * 60.0,
        batch_size=args.batch_size,
        seconds=args.seconds,
        seed=args.seed,
        device=str(pick_device(args.device)),
        progress=not args.quiet,
    )
    print(summary)


def cmd_listen(args: argparse.Namespace) -> None:
    from waveloom.errors import ConfigError
    from waveloom.listening import format_listening_report, listening_report, serve
    from waveloom.listening.server import default_db

    db = args.db if args.db is not None else (default_db(args.dirs) if args.dirs else None)
    if args.report:
        if db is None:
            raise ConfigError("--report needs --db FILE (or the folders the test served)")
        report = listening_report(db, resamples=args.bootstrap, level=args.ci)
        if args.json != "-":
            print(format_listening_report(report))
        if args.json:
            from waveloom.evaluate.report import jsonable

            _write_json(args.json, jsonable(report))
        return
    if not args.dirs:
        raise ConfigError("give the folders to compare: waveloom listen DIR_A DIR_B ...")
    serve(args.dirs, db=db, port=args.port, seed=args.seed, quiet=not args.verbose)


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
    tr.add_argument("--minutes", type=float, default=None,
                    help="fit train.max_steps to this wall-clock budget (timed by two short "
                         "calibration runs first) so the LR schedule completes")
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
    ge.add_argument("checkpoint", type=Path, help="model.safetensors from a run, or a "
                    "hierarchy manifest (.json, from `waveloom hierarchy`)")
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
    ge.add_argument("--engine", default="auto", choices=["auto", "torch", "fast", "cuda-graph"],
                    help="sampling engine: auto (fastest available: cuda-graph on a GPU, the "
                         "compiled fast engine on a CPU), torch (the plain reference), fast, "
                         "cuda-graph; all give the same audio for a seed")
    ge.add_argument("--threads", type=int, default=None,
                    help="CPU threads for torch and the fast engine (default: all cores)")
    ge.add_argument("--weights", default="float32", choices=["float32", "int8"],
                    help="fast engine only: int8 weights with per-column scales (faster on "
                         "large models, slightly different audio)")
    ge.add_argument("--interpolate", type=int, default=None, metavar="N",
                    help="GANs: N samples along a spherical interpolation from latent --seed to "
                         "latent --seed + 1 (replaces --n)")
    quiet(ge)
    ge.set_defaults(func=cmd_generate)

    # vocode (MelGAN checkpoints, mel-conditioned WaveNets)
    vo = sub.add_parser("vocode", help="audio from log-mel spectrograms with a MelGAN or a "
                        "mel-conditioned WaveNet",
                        description="Write NAME.wav and a spectrogram NAME.png per mel file. A "
                        "mel is float [n_mels, frames] (or [n, n_mels, frames]) as "
                        "waveloom.audio.spectral.mel_spectrogram makes it with the checkpoint's "
                        "sample rate, n_fft, hop and n_mels.")
    vo.add_argument("checkpoint", type=Path,
                    help="a melgan run's model.safetensors, or a WaveNet's with model.local=mel")
    vo.add_argument("mels", type=Path, nargs="+", metavar="MEL.npy", help="log-mel arrays")
    vo.add_argument("--out", type=Path, required=True, help="output folder")
    vo.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    vo.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    vo.add_argument("--seed", type=int, default=0,
                    help="a WaveNet's sampling seed (MelGAN is deterministic)")
    vo.set_defaults(func=cmd_vocode)

    # hierarchies of ADA levels (waveloom.models.ada, docs/hierarchy.md)
    ec = sub.add_parser("encode-codes", help="encode a cache with an ADA level into a code "
                        "cache (the next level's or the prior's training data)")
    ec.add_argument("checkpoint", type=Path, help="model.safetensors of an 'ada' run")
    ec.add_argument("--data", type=Path, required=True, help="the cache the level was trained on")
    ec.add_argument("--out", type=Path, required=True, help="folder of the code cache")
    ec.add_argument("--device", default="cpu", help="cpu | cuda")
    quiet(ec)
    ec.set_defaults(func=cmd_encode_codes)
    hi = sub.add_parser("hierarchy", help="write a manifest stringing a code prior and ADA "
                        "levels together (then: waveloom generate H.json)")
    hi.add_argument("--prior", type=Path, required=True, help="model.safetensors of a "
                    "'code_prior' run")
    hi.add_argument("--levels", type=Path, nargs="+", required=True,
                    help="'ada' checkpoints, top level first, the waveform level last")
    hi.add_argument("--out", type=Path, required=True, help="manifest to write (.json)")
    hi.set_defaults(func=cmd_hierarchy)

    # encode / decode / interpolate (autoencoder checkpoints)
    def decoding(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--pitch", type=int, default=None,
                        help="MIDI pitch for a pitch-conditioned autoencoder")
        sp.add_argument("--seconds", type=float, default=None,
                        help="use at most this many seconds (default: all)")
        sp.add_argument("--temperature", type=float, default=1.0,
                        help="WaveNet decoder: sampling temperature")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--engine", default="auto", choices=["auto", "torch", "fast", "cuda-graph"],
                        help="WaveNet decoder: sampling engine (auto: the compiled fast engine "
                             "on a CPU, CUDA graphs on a GPU); all give the same audio")
        sp.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch and the fast engine (default: all cores)")
        sp.add_argument("--weights", default="float32", choices=["float32", "int8"],
                        help="fast engine only: int8 weights")
        sp.add_argument("--device", default="auto", help="auto | cpu | cuda")
        quiet(sp)

    en = sub.add_parser("encode", help="autoencoder codes of audio files (.npy + image)",
                        description="Write NAME.npy (float32 [D, frames], one frame per hop "
                        "samples) and NAME.png for each audio file.")
    en.add_argument("checkpoint", type=Path, help="an autoencoder's model.safetensors")
    en.add_argument("files", type=Path, nargs="+", metavar="FILE", help="audio files")
    en.add_argument("--out", type=Path, required=True, help="output folder")
    en.add_argument("--seconds", type=float, default=None,
                    help="encode at most this many seconds of each file (default: all)")
    en.add_argument("--device", default="auto", help="auto | cpu | cuda")
    en.set_defaults(func=cmd_encode)
    dc = sub.add_parser("decode", help="audio from autoencoder codes (.npy from encode)",
                        description="Write NAME.wav and a spectrogram NAME.png per code file.")
    dc.add_argument("checkpoint", type=Path, help="the autoencoder's model.safetensors")
    dc.add_argument("embeddings", type=Path, nargs="+", metavar="EMB.npy",
                    help="code files ([D, frames] or [n, D, frames])")
    dc.add_argument("--out", type=Path, required=True, help="output folder")
    decoding(dc)
    dc.set_defaults(func=cmd_decode)
    ip = sub.add_parser("interpolate", help="mix the codes of two sounds, decode each step",
                        description="Decode (1-a) z_A + a z_B for --steps values of a from 0 to "
                        "1: interp-i.wav per step and rainbowgrams.png comparing A, the steps "
                        "and B.")
    ip.add_argument("checkpoint", type=Path, help="an autoencoder's model.safetensors")
    ip.add_argument("a", type=Path, metavar="A", help="first audio file (a = 0)")
    ip.add_argument("b", type=Path, metavar="B", help="second audio file (a = 1)")
    ip.add_argument("--steps", type=int, default=5, help="mixes from A to B (default 5)")
    ip.add_argument("--out", type=Path, required=True, help="output folder")
    decoding(ip)
    ip.set_defaults(func=cmd_interpolate)

    # evaluate
    ev = sub.add_parser(
        "evaluate", help="score a checkpoint or a folder of generated audio",
        description="Metrics: nll (checkpoint on --data), fad, pitch, classifier, ndb, "
        "spectral (generated audio: a folder, a cache split, or samples drawn from a "
        "checkpoint). Means carry bootstrap confidence intervals.")
    ev.add_argument("target", type=Path,
                    help="checkpoint (.safetensors), folder of audio files, or cache folder")
    ev.add_argument("--metrics", default=None,
                    help="comma-separated among nll,fad,pitch,classifier,ndb,spectral "
                    "(default: nll for a checkpoint, fad for audio)")
    ev.add_argument("--data", type=Path, default=None,
                    help="cache for nll (and the default --reference)")
    ev.add_argument("--split", default=None,
                    help="split of --data for nll (default test) and of TARGET when it is a "
                    "cache or NSynth folder (default: all clips); a,b joins splits")
    ev.add_argument("--reference", type=Path, default=None,
                    help="real audio to compare with (cache or folder; default --data)")
    ev.add_argument("--reference-split", default=None, help="split of --reference (e.g. train)")
    ev.add_argument("--max-examples", type=int, default=None, help="cap the examples scored")
    ev.add_argument("--max-reference", type=int, default=None, help="cap the reference clips")
    ev.add_argument("--sr", type=int, default=16000, help="read all audio at this rate (Hz)")
    ev.add_argument("--labels", type=Path, default=None,
                    help="labels JSON for TARGET (default: TARGET/labels.json if present)")
    ev.add_argument("--labels-from-names", default=None, metavar="nsynth|REGEX",
                    help="read pitch/family/instrument/velocity labels from file names")
    ev.add_argument("--embeddings", default=None,
                    help="FAD embeddings, comma-separated: crepe-tiny, crepe-full, "
                    "waveloom-classifier, torchscript:FILE (default crepe-tiny, plus "
                    "waveloom-classifier with --classifier)")
    ev.add_argument("--fad-pool", choices=["mean", "frames"], default="mean",
                    help="one embedding per clip (mean over frames) or every frame")
    ev.add_argument("--crepe-hop", type=float, default=0.05,
                    help="seconds between CREPE embedding frames (default 0.05)")
    ev.add_argument("--stats-cache", type=Path, default=None,
                    help="where reference embeddings are cached (default ~/.cache/waveloom)")
    ev.add_argument("--no-stats-cache", action="store_true", help="never cache embeddings")
    ev.add_argument("--pitch-estimator", choices=["crepe-tiny", "crepe-full", "pyin"],
                    default="crepe-tiny")
    ev.add_argument("--tolerance-cents", type=float, default=50.0,
                    help="a note is on pitch within this many cents (default 50)")
    ev.add_argument("--classifier", type=Path, default=None,
                    help="classifier from `waveloom train-classifier`")
    ev.add_argument("--ndb-k", type=int, default=50, help="k-means bins for NDB (default 50)")
    ev.add_argument("--ndb-features", default="logmel",
                    help="logmel (default) or an embedding name")
    ev.add_argument("--clip-seconds", type=float, default=None,
                    help="judge only the first S seconds of every clip, generated and real "
                         "(e.g. 1.024 for one-second GAN notes against 4 s real notes)")
    ev.add_argument("--ndb-seconds", type=float, default=None,
                    help="log-mel image length (default: shorter median clip, at most 4 s)")
    ev.add_argument("--bootstrap", type=int, default=1000,
                    help="bootstrap resamples for intervals (0: none)")
    ev.add_argument("--ci", type=float, default=0.95, help="interval level (default 0.95)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--n-generate", type=int, default=64,
                    help="samples to draw from a checkpoint TARGET")
    ev.add_argument("--seconds", type=float, default=4.0, help="length of each drawn sample")
    ev.add_argument("--temperature", type=float, default=1.0)
    ev.add_argument("--generated-out", type=Path, default=None,
                    help="keep the drawn samples (+ labels.json) here")
    ev.add_argument("--json", default=None, metavar="FILE",
                    help="also write every number as JSON here ('-': stdout only)")
    ev.add_argument("--device", default="auto", help="auto | cpu | cuda")
    quiet(ev)
    ev.set_defaults(func=cmd_evaluate)

    # train-classifier
    tc = sub.add_parser("train-classifier",
                        help="train the family + pitch classifier used by evaluate")
    tc.add_argument("cache", type=Path, help="cache of labelled notes (train/valid splits)")
    tc.add_argument("--out", type=Path, required=True, help="classifier file (.safetensors)")
    tc.add_argument("--epochs", type=int, default=12)
    tc.add_argument("--max-minutes", type=float, default=5.0,
                    help="wall-clock budget; the best epoch so far is kept")
    tc.add_argument("--seconds", type=float, default=1.0,
                    help="analysis window from each note's start")
    tc.add_argument("--batch-size", type=int, default=32)
    tc.add_argument("--seed", type=int, default=0)
    tc.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    quiet(tc)
    tc.set_defaults(func=cmd_train_classifier)

    # listen
    li = sub.add_parser("listen", help="blind listening test in the browser, or its report",
                        description="Serve a local page (127.0.0.1) for blind 1-5 ratings "
                        "and A/B preferences of the clips in the given folders; ratings go to "
                        "SQLite. --report prints MOS and win rates with confidence intervals.")
    li.add_argument("dirs", type=Path, nargs="*", metavar="DIR",
                    help="folders of audio, one per condition")
    li.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free)")
    li.add_argument("--db", type=Path, default=None,
                    help="ratings database (default: listening.sqlite beside the first DIR)")
    li.add_argument("--report", action="store_true", help="print MOS and A/B win rates")
    li.add_argument("--bootstrap", type=int, default=1000, help="resamples for the intervals")
    li.add_argument("--ci", type=float, default=0.95, help="interval level (default 0.95)")
    li.add_argument("--json", default=None, metavar="FILE",
                    help="with --report: also write the report as JSON ('-': stdout only)")
    li.add_argument("--seed", type=int, default=None, help="seed of the trial order")
    li.add_argument("--verbose", action="store_true", help="log every request")
    li.set_defaults(func=cmd_listen)

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
