"""``waveloom train CONFIG --data CACHE --out RUN``: a preset (plus ``key=value`` overrides)
trained by :func:`waveloom.train.trainer.train`.

``--minutes`` asks :mod:`waveloom.train.budget` for the step count that fits a wall-clock
budget (timed by short calibration runs) so the learning-rate schedule completes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from waveloom.app.common import add_quiet_arg, add_sampling_args
from waveloom.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    tr = subparsers.add_parser("train", help="train a model from a preset")
    tr.add_argument("config", type=Path, help="preset YAML, e.g. configs/wavenet/tiny.yaml")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="config overrides, e.g. model.stacks=2 train.lr=3e-4")
    add_run_args(tr)
    tr.set_defaults(run=run)


def add_run_args(tr: argparse.ArgumentParser) -> None:
    """The flags of a training run (data, run folder, budget, devices), shared with
    ``distill``."""
    tr.add_argument("--data", type=Path, required=True, help="cache folder from `prepare`")
    tr.add_argument("--out", type=Path, required=True, help="run folder")
    tr.add_argument("--max-steps", type=int, default=None, help="shortcut for train.max_steps")
    tr.add_argument("--minutes", type=float, default=None,
                    help="fit train.max_steps to this wall-clock budget (timed by two short "
                         "calibration runs first) so the LR schedule completes")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace the run or model already in --out (default: refuse)")
    tr.add_argument("--override", action="store_true",
                    help="with --resume: continue even though the lr, model, data folder or "
                         "other training keys changed (default: refuse, naming them)")
    tr.add_argument("--accelerator", default="auto", help="auto | cpu | cuda")
    tr.add_argument("--devices", default=1, type=lambda s: s if s == "auto" else int(s),
                    help="devices per node (default 1)")
    tr.add_argument("--nodes", type=int, default=1, help="number of nodes (default 1)")
    tr.add_argument("--strategy", default="auto", help="auto | ddp | ...")
    add_sampling_args(tr, ("threads",),
                      threads="CPU threads per process (use 1 when the machine is shared: "
                              "intra-op threads stall when another job holds a core)")
    add_quiet_arg(tr)


def run(args: argparse.Namespace) -> int | None:
    from waveloom.device import set_threads
    from waveloom.models.load import load_config
    from waveloom.train.trainer import train

    overrides = list(args.overrides)
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    cfg = load_config(args.config, overrides)
    set_threads(args.threads)
    if args.minutes is not None:
        cfg.train.max_steps = _budget_steps(cfg, args)
    result = train(cfg, args.data, args.out, resume=args.resume, accelerator=args.accelerator,
                   devices=args.devices, num_nodes=args.nodes, strategy=args.strategy,
                   progress=not args.quiet, overwrite=args.overwrite, override=args.override)
    # A run stopped by a signal exits as a killed process would (130 SIGINT, 143 SIGTERM), so
    # a job scheduler or a shell loop sees it did not finish, though it saved.
    code = 128 + result.signum if result.interrupted else 0
    if not result.is_global_zero:  # under DDP only rank 0 reports
        return code
    state = "interrupted" if result.interrupted else "done"
    print(f"{state}: step {result.step}, loss {result.last_loss:.4f}, "
          f"{result.seconds:.0f} s; weights in {result.run_dir / 'model.safetensors'}")
    return code


def _budget_steps(cfg: object, args: argparse.Namespace) -> int:
    """``--minutes``: the step count of a new single-device run that fits the budget."""
    # an explicit train.max_steps=N among the overrides would be silently replaced
    steps_given = args.max_steps is not None or any(
        o.replace(" ", "").startswith("train.max_steps=") for o in args.overrides)
    if args.resume or steps_given or args.devices != 1 or args.nodes != 1:
        raise ConfigError("--minutes sets the step count of a new single-device run; drop "
                          "--resume/--max-steps/train.max_steps=/--devices/--nodes or drop "
                          "--minutes")
    from waveloom.train.budget import steps_for_minutes

    steps, per_step = steps_for_minutes(cfg, args.data, args.minutes, args.accelerator)
    print(f"calibrated: {per_step * 1000:.1f} ms/step -> train.max_steps={steps} "
          f"for {args.minutes:g} min")
    return steps
