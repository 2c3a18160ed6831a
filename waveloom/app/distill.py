"""``waveloom distill TEACHER --data CACHE --out RUN``: train a parallel student of a Gaussian
WaveNet teacher (the ``student`` family, docs/distillation.md).

The verb is ``train`` with the student preset and ``model.teacher=TEACHER`` filled in: the run
folder, ``--minutes``, ``--resume`` and overrides behave exactly as they do there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from waveloom.app.train import add_run_args
from waveloom.shipped import checkpoint_path

#: The student preset used unless ``--config`` names another.
DEFAULT_PRESET = Path("configs/student/small.yaml")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    ds = subparsers.add_parser("distill", help="distil a Gaussian WaveNet into a parallel "
                               "IAF student (one pass per clip)")
    ds.add_argument("teacher", type=checkpoint_path,
                    help="WaveNet checkpoint trained with model.head=gaussian "
                         "model.input=scalar (e.g. configs/wavenet/teacher.yaml)")
    ds.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="config overrides, e.g. model.power_weight=0.5")
    ds.add_argument("--config", type=Path, default=DEFAULT_PRESET,
                    help=f"student preset (default {DEFAULT_PRESET})")
    add_run_args(ds)
    ds.set_defaults(run=run)


def run(args: argparse.Namespace) -> int | None:
    from waveloom.app.train import run as train
    from waveloom.errors import ConfigError

    if not Path(args.teacher).is_file():
        raise ConfigError(f"{args.teacher}: no such teacher checkpoint; train one with "
                          "`waveloom train configs/wavenet/teacher.yaml --data CACHE --out RUN`")
    if not Path(args.config).is_file():
        raise ConfigError(f"--config {args.config}: no such preset; run from the repository "
                          "root or pass --config PATH")
    # the teacher file is the truth: a preset's inline teacher_config (tests) is replaced
    args.overrides = [f"model.teacher={args.teacher}", 'model.teacher_config=""',
                      *args.overrides]
    return train(args)
