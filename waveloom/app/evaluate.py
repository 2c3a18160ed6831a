"""``waveloom evaluate`` and ``waveloom train-classifier``: numbers for checkpoints and audio.

evaluate scores a checkpoint (nll on a cache) or generated audio (a folder, a cache split, or
samples drawn from a checkpoint) with :func:`waveloom.evaluate.run.evaluate`; train-classifier
trains the instrument-family + pitch classifier that the ``classifier`` metric and the
``waveloom-classifier`` FAD embedding use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from waveloom.app.common import (
    DIFFUSION_ARGS,
    add_device_arg,
    add_quiet_arg,
    add_sampling_args,
    sampling_options,
    write_json,
)
from waveloom.shipped import checkpoint_path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    _add_evaluate(subparsers)
    tc = subparsers.add_parser("train-classifier",
                               help="train the family + pitch classifier used by evaluate")
    tc.add_argument("cache", type=Path, help="cache of labelled notes (train/valid splits)")
    tc.add_argument("--out", type=Path, required=True, help="classifier file (.safetensors)")
    tc.add_argument("--epochs", type=int, default=12)
    tc.add_argument("--max-minutes", type=float, default=None,
                    help="wall-clock budget; the best epoch so far is kept (default: none, "
                    "every epoch runs: a judge cut by a budget depends on the machine's load)")
    tc.add_argument("--seconds", type=float, default=1.0,
                    help="analysis window from each note's start")
    tc.add_argument("--batch-size", type=int, default=32)
    tc.add_argument("--truncate", type=float, default=0.0,
                    help="share of training crops cut short (0-1): for judging a melody's "
                    "short notes one by one (transfer_table); 0 keeps the notes whole")
    tc.add_argument("--seed", type=int, default=0)
    add_sampling_args(tc, ("threads",))
    add_device_arg(tc, default="cpu")
    add_quiet_arg(tc)
    tc.set_defaults(run=run)


_N_NEEDED = """\
which n each metric needs (n = clips per set; docs/evaluation.md has the sanity table):
  kid       unbiased at any n (two draws of one distribution average 0); read its interval:
            at n = 18 it separates white noise from real notes in any embedding; sines
            only with waveloom-classifier (crepe-tiny from n ~ 500: CREPE is mostly pitch);
            two SoundFonts only with the classifier at n ~ 500
  kad       KID's estimator with a Gaussian kernel (median-heuristic bandwidth of the
            reference): unbiased at any n like kid; separated what kid did, at the same n
  fad       biased upwards unless n >= 500 and n >= the embedding's dimension (256 for
            crepe-tiny, 2048 for crepe-full); below that a warning is printed and two real
            sets of 18 can score farther apart than real and sines: only FADs at equal n
            compare, and ranking needs n ~ 150+
  fad_inf   (printed with fad) FAD extrapolated to infinitely many frames: removes the
            covariance bias, not the luck of drawing few clips
  pitch     a 0/1 score per note: the interval is wide below ~100 notes
  classifier accuracy per clip with an interval; inception score wants many clips per class
  ndb       k <= n_generated / 20 bins; its interval (bootstrap over generated clips)
            moves in steps of 1/k
  spectral  paired clips; an interval over pairs
  nll       a whole split (no interval needed)
"""


def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser(
        "evaluate", help="score a checkpoint or a folder of generated audio",
        description="Metrics: nll (checkpoint on --data), fad, kid, kad, pitch, classifier, ndb, "
        "spectral (generated audio: a folder, a cache split, or samples drawn from a "
        "checkpoint). Means and distances carry confidence intervals and their n.",
        epilog=_N_NEEDED, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("target", type=checkpoint_path,
                    help="checkpoint (.safetensors), folder of audio files, or cache folder; "
                    "or the word nll followed by a checkpoint (`evaluate nll CKPT --data D`)")
    ev.add_argument("checkpoint", type=checkpoint_path, nargs="?", default=None,
                    help=argparse.SUPPRESS)
    ev.add_argument("--metrics", default=None,
                    help="comma-separated among nll,fad,kid,kad,pitch,classifier,ndb,spectral "
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
    ev.add_argument("--labels-from-names", default=None, metavar="nsynth|k|REGEX",
                    help="read pitch/family/instrument/velocity labels from file names "
                    "(k: MIDI pitch from ..._k060.wav)")
    _add_metric_args(ev)
    ev.add_argument("--n-generate", type=int, default=64,
                    help="samples to draw from a checkpoint TARGET")
    ev.add_argument("--seconds", type=float, default=4.0, help="length of each drawn sample")
    add_sampling_args(ev, ("seed", "temperature", "threads", *DIFFUSION_ARGS),
                      seed="seed of the drawn samples and of the bootstrap (default 0)",
                      threads="CPU threads for torch, the embedding models and the fast engine "
                              "(use 1 beside a training run; default: all cores)")
    ev.add_argument("--generated-out", type=Path, default=None,
                    help="keep the drawn samples (+ labels.json) here")
    ev.add_argument("--record", action="store_true",
                    help="keep the distances (kid, kad, fad) and pitch accuracy of a "
                    "checkpoint's samples on its card (waveloom models NAME; docs/models.md)")
    ev.add_argument("--json", default=None, metavar="FILE",
                    help="also write every number as JSON here ('-': stdout only)")
    add_device_arg(ev)
    add_quiet_arg(ev)
    ev.set_defaults(run=run)


def _add_metric_args(ev: argparse.ArgumentParser) -> None:
    """The knobs of the individual metrics (FAD, pitch, NDB, intervals)."""
    ev.add_argument("--embeddings", default=None,
                    help="FAD embeddings, comma-separated: crepe-tiny, crepe-full, "
                    "waveloom-classifier, torchscript:FILE (default crepe-tiny, plus "
                    "waveloom-classifier with --classifier)")
    ev.add_argument("--fad-pool", choices=["mean", "frames"], default="mean",
                    help="one embedding per clip (mean over frames) or every frame")
    ev.add_argument("--fad-bootstrap", type=int, default=200,
                    help="bootstrap resamples of FAD's interval (default 200, at most "
                    "--bootstrap; 0: none)")
    ev.add_argument("--fad-inf-points", type=int, default=15,
                    help="set sizes of the FAD-inf fit (default 15; 0: no FAD-inf)")
    ev.add_argument("--kid-subsets", type=int, default=100,
                    help="KID: subsets averaged when a set exceeds --kid-subset-size")
    ev.add_argument("--kid-subset-size", type=int, default=1000)
    ev.add_argument("--crepe-hop", type=float, default=0.05,
                    help="seconds between CREPE embedding frames (default 0.05)")
    ev.add_argument("--stats-cache", type=Path, default=None,
                    help="where reference embeddings are cached (default ~/.cache/waveloom)")
    ev.add_argument("--no-stats-cache", action="store_true", help="never cache embeddings")
    ev.add_argument("--pitch-estimator", choices=["crepe-tiny", "crepe-full", "pyin"],
                    default="crepe-tiny",
                    help="crepe-full is the strict judge (~20-60x slower than crepe-tiny)")
    ev.add_argument("--pitch-hop", type=float, default=0.02,
                    help="seconds between CREPE pitch frames (default 0.02; cost ~ 1/hop)")
    ev.add_argument("--pitch-decoder", choices=["weighted", "viterbi"], default="weighted",
                    help="CREPE frame decoder: per-frame argmax (weighted) or a smoothed "
                    "track (viterbi)")
    ev.add_argument("--pitch-targets", type=Path, default=None, metavar="CSV",
                    help="name,pitch rows: requested MIDI pitch per clip (else labels: "
                    "examples.json, labels.json or --labels-from-names nsynth|k|REGEX)")
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


def run(args: argparse.Namespace) -> int | None:
    from waveloom.device import set_threads

    set_threads(args.threads)
    if args.verb == "train-classifier":
        return _train_classifier(args)
    from waveloom.evaluate.report import format_report
    from waveloom.evaluate.run import evaluate

    # what a checkpoint records as measured (temperature, a diffusion model's steps and
    # sampler) for each flag not given; the card's data line then names them
    options = sampling_options(args, args.target)
    args.temperature, args.denoising_steps, args.sampler = (
        options.temperature, options.denoising_steps, options.sampler)

    def names(text: str | None) -> list[str] | None:
        return [t.strip() for t in text.split(",") if t.strip()] if text else None

    if str(args.target) == "nll" and args.checkpoint is not None:  # `evaluate nll CKPT`
        args.target, args.metrics = args.checkpoint, args.metrics or "nll"
    metrics = names(args.metrics) or (["nll"] if Path(args.target).is_file() else ["fad"])
    if args.json and args.json != "-":
        check_writable(Path(args.json))
    if args.record and not Path(args.target).is_file():
        from waveloom.errors import ConfigError

        raise ConfigError(f"--record keeps figures on a checkpoint's card; {args.target} is "
                          "not a checkpoint file (drop --record for audio folders)")
    report = evaluate(
        args.target, metrics=metrics, data=args.data, split=args.split,
        reference=args.reference, reference_split=args.reference_split,
        max_examples=args.max_examples, max_reference=args.max_reference,
        clip_seconds=args.clip_seconds, sample_rate=args.sr, device=args.device,
        progress=not args.quiet, labels=args.labels, name_pattern=args.labels_from_names,
        embeddings=names(args.embeddings), fad_pool=args.fad_pool, crepe_hop=args.crepe_hop,
        stats_cache=None if args.no_stats_cache else (args.stats_cache or "default"),
        pitch_estimator=args.pitch_estimator, tolerance_cents=args.tolerance_cents,
        pitch_hop=args.pitch_hop, pitch_decoder=args.pitch_decoder,
        pitch_targets=args.pitch_targets, fad_bootstrap=args.fad_bootstrap,
        fad_inf_points=args.fad_inf_points, kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size,
        classifier=args.classifier, ndb_k=args.ndb_k, ndb_features=args.ndb_features,
        ndb_seconds=args.ndb_seconds, bootstrap=args.bootstrap, level=args.ci, seed=args.seed,
        n_generate=args.n_generate, seconds=args.seconds, temperature=args.temperature,
        denoising_steps=args.denoising_steps, sampler=args.sampler,
        generated_out=args.generated_out,
    )
    if args.json != "-":
        print(format_report(report))
    if args.json:
        write_json(args.json, report)
    if args.record:
        _record(args, report)
    return 0


def _record(args: argparse.Namespace, report: dict) -> None:
    """Keep the report's card-worthy figures on the checkpoint's card (the command that
    reproduces them is the one typed, less --record)."""
    import shlex

    from waveloom.zoo.records import record
    from waveloom.zoo.report_records import describe_data, report_measurements

    command = shlex.join(["waveloom", *[a for a in args.argv if a != "--record"]])
    data = describe_data(report, args.seconds, args.temperature, args.denoising_steps,
                         args.sampler)
    found = report_measurements(report, data, command)
    for measurement in found:
        path = record(args.target, measurement)
    if found:
        print(f"recorded {len(found)} figure(s) in {path}")
    else:
        print("nothing to record: --record keeps kid, kad, fad and pitch")


def check_writable(path: Path) -> None:
    """Refuse ``--json FILE`` before the work (minutes of it) rather than after. Permission bits
    are not enough (root passes ``os.access`` on /proc, and a full or read-only file system
    refuses later), so the file is opened for appending, which creates nothing new but an
    empty file, removed again when it was not there before."""
    from waveloom.errors import ConfigError

    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    existed = path.exists()
    try:
        if path.is_dir() or not folder.is_dir():
            raise OSError("not a file in a folder")
        if folder != path.parent:  # write_json makes the missing folders: can it?
            import os

            if not os.access(folder, os.W_OK | os.X_OK):
                raise OSError("the folder is not writable")
        else:
            with open(path, "a"):
                pass
            if not existed:
                path.unlink()
    except OSError as err:
        raise ConfigError(f"--json {path}: cannot write there ({err.strerror or err}); choose a "
                          "writable file") from None


def _train_classifier(args: argparse.Namespace) -> int:
    from waveloom.device import pick_device
    from waveloom.evaluate.train_classifier import train_classifier

    budget = float("inf") if args.max_minutes is None else args.max_minutes * 60.0
    summary = train_classifier(args.cache, args.out, epochs=args.epochs, max_seconds=budget,
                               batch_size=args.batch_size, seconds=args.seconds, seed=args.seed,
                               truncate=args.truncate, device=str(pick_device(args.device)),
                               progress=not args.quiet)
    print(summary)
    if summary.epochs < args.epochs:
        print(f"warning: --max-minutes {args.max_minutes:g} stopped training after "
              f"{summary.epochs} of {args.epochs} epochs: this judge depends on the machine's "
              "load; drop --max-minutes for one that does not", file=sys.stderr)
    return 0
