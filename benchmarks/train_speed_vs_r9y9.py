"""Training speed of waveloom's WaveNet stack against r9y9/wavenet_vocoder's, side by side.

r9y9/wavenet_vocoder is the most-used PyTorch WaveNet. Its code is NOT part of this repository
and is never copied into it: export its ``wavenet_vocoder/`` package to a folder outside the
checkout and pass that folder, e.g.::

    git --git-dir=/work/.mirror/r9y9+wavenet_vocoder/repo archive HEAD wavenet_vocoder \\
        | tar -x -C /tmp/r9y9
    PYTHONPATH=. python benchmarks/train_speed_vs_r9y9.py --r9y9 /tmp/r9y9

It imports with torch and numpy alone (nothing is stubbed).

Both networks are built at the same architecture from a waveloom preset (``wavenet/small`` and
``wavenet/paper-size``, see ``train_speed.py``): waveloom's ``WaveNetStack`` exactly as the
preset builds it, and r9y9's ``WaveNet`` with the same layers, stacks, kernel, residual / gate /
skip channels, and global (``gin_channels``) and sample-rate local (``cin_channels``)
conditioning of the same widths; the parameter counts are printed, with and without weight
norm's per-channel gains (a reparametrisation; without them they agree within 1.5 %). Each is
used as its own code ships it: r9y9 with its weight norm, its dropout (its default 0.05;
``--r9y9-dropout``) and a one-hot float input, which its data loader delivers; waveloom with an
embedding of integer codes. Conditioning tensors and inputs are made once, outside the timing (a
data loader's work on both sides).

A timed step, the same on both sides: zero grads, forward, ``F.cross_entropy`` over 256 mu-law
classes, backward, ``torch.optim.AdamW.step``. Per batch shape B x T (T samples per window):

* r9y9 scores every one of the T positions (causal zero padding: the first RF - 1 of them see
  a partial history);
* waveloom "as shipped" runs ``padded=False``: it computes and scores only the T - RF + 1
  positions with a full receptive field (RF = the stack's receptive field);
* waveloom "same work" runs ``padded=True``: every position, as r9y9 (nearly the same FLOPs: r9y9
  adds a 256 x C_res product per position for its one-hot input and projects the global vector
  at every position; waveloom adds its kernel-2 input conv).

Reported: window samples/s (B x T per second), scored targets/s, and the waveloom/r9y9 ratios
of both; one process, ``--threads`` threads (default 2), ``--warmup`` steps, then ``--rounds``
interleaved rounds (every model and shape in turn each round, the order reversed every other
round); step times are medians over rounds, ratios the median of the rounds' own ratios (each
from steps run seconds apart, so a load change on a shared machine cancels).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from train_speed import preset_config, timed

from waveloom.device import set_threads
from waveloom.models.registry import build_model
from waveloom.nn.wavenet import WaveNetStack

SHAPES = ((4, 8000), (1, 16000))
VARIANTS = ("r9y9", "shipped", "same work")


def import_r9y9(folder: str) -> Any:
    """r9y9's ``WaveNet`` class from ``folder/wavenet_vocoder`` (a one-line exit if absent)."""
    if not (Path(folder) / "wavenet_vocoder" / "wavenet.py").is_file():
        sys.exit(f"--r9y9 {folder}: no wavenet_vocoder/wavenet.py there; export the package "
                 "from github:r9y9/wavenet_vocoder (see this script's docstring)")
    sys.path.insert(0, str(Path(folder).resolve()))
    # r9y9's Conv1d registers a (non-full) backward hook and uses nn.utils.weight_norm; torch
    # warns about both on every build and first backward. The behaviour is r9y9's as shipped.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*weight_norm.*")
    from wavenet_vocoder import WaveNet

    return WaveNet


def build_pair(preset: str, r9y9_class: Any, dropout: float) -> tuple[WaveNetStack, Any]:
    """(waveloom stack, r9y9 WaveNet) at the preset's architecture, both seeded alike."""
    torch.manual_seed(0)
    stack = build_model(preset_config(preset)).stack
    blocks = stack.blocks
    torch.manual_seed(0)
    r9y9 = r9y9_class(
        out_channels=stack.out2.out_channels, layers=len(blocks),
        stacks=stack.dilations.count(1), residual_channels=stack.residual_channels,
        gate_channels=2 * stack.dilation_channels, skip_out_channels=stack.skip_channels,
        kernel_size=blocks[0].conv.kernel_size[0], dropout=dropout,
        cin_channels=stack.local_channels or -1, gin_channels=stack.global_channels or -1,
        upsample_conditional_features=False, scalar_input=False)
    return stack, r9y9


def params(module: torch.nn.Module, gains: bool = True) -> int:
    """Parameter count; ``gains=False`` leaves out weight norm's per-channel gains
    (``weight_g``: a reparametrisation of the same weights, not a wider network)."""
    return sum(p.numel() for name, p in module.named_parameters()
               if gains or not name.endswith("weight_g"))


def make_steps(stack: WaveNetStack, r9y9: Any, b: int, t: int, precision: str = "32"
               ) -> dict[str, tuple[Callable[[], Any], int]]:
    """Variant -> (one training step, targets it scores) on a B x T batch. ``precision``
    ``bf16-mixed`` runs both networks' forward under CPU bfloat16 autocast (weights, optimiser
    and loss in float32: what ``train.precision=bf16-mixed`` does through Fabric)."""
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 256, (b, t + 1), generator=g)
    inputs, targets = codes[:, :-1], codes[:, 1:]
    gc = torch.randn(b, stack.global_channels, generator=g) if stack.global_channels else None
    lc = torch.randn(b, stack.local_channels, t, generator=g) if stack.local_channels else None
    onehot = F.one_hot(inputs, 256).float().transpose(1, 2).contiguous()
    opt_w = torch.optim.AdamW(stack.parameters(), lr=1e-3)
    opt_r = torch.optim.AdamW(r9y9.parameters(), lr=1e-3)
    valid = t - stack.receptive_field + 1

    def update(opt: torch.optim.Optimizer, logits: torch.Tensor, y: torch.Tensor) -> None:
        F.cross_entropy(logits.float(), y).backward()
        opt.step()

    def autocast() -> Any:
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed")

    def r9y9_step() -> None:
        opt_r.zero_grad(set_to_none=True)
        with autocast():
            logits = r9y9(onehot, lc, None if gc is None else gc[:, :, None])
        update(opt_r, logits, targets)

    def ours(padded: bool) -> Callable[[], None]:
        def step() -> None:
            opt_w.zero_grad(set_to_none=True)
            y = targets if padded else targets[:, t - valid:]  # l: the stack crops it
            with autocast():
                logits = stack(inputs, gc, lc, padded=padded)
            update(opt_w, logits, y)
        return step

    return {"r9y9": (r9y9_step, b * t), "shipped": (ours(False), b * valid),
            "same work": (ours(True), b * t)}


def measure(preset: str, r9y9_class: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Interleaved rounds over every shape and variant of one preset -> result rows."""
    stack, r9y9 = build_pair(preset, r9y9_class, args.r9y9_dropout)
    stack.train()
    r9y9.train()
    n_w, n_r, n_rw = params(stack), params(r9y9), params(r9y9, gains=False)
    print(f"{preset}: parameters waveloom {n_w:,}, r9y9 {n_r:,} ({100 * (n_w / n_r - 1):+.2f} %); "
          f"without weight norm's gains {n_rw:,} ({100 * (n_w / n_rw - 1):+.2f} %); receptive "
          f"field {stack.receptive_field} (r9y9 {r9y9.receptive_field})")
    if abs(n_w / n_rw - 1) > 0.015:
        print("  warning: the parameter counts differ by more than 1.5 %")
    steps = {(b, t, v): fn for b, t in args.shapes
             for v, fn in make_steps(stack, r9y9, b, t, args.precision).items()}
    times = time_rounds({key: fn for key, (fn, _) in steps.items()}, args.rounds, args.warmup)
    rows = []
    for b, t in args.shapes:
        row = {"preset": preset, "shape": f"{b}x{t}", "precision": args.precision,
               "params_waveloom": n_w,
               "params_r9y9": n_r, "params_r9y9_without_gains": n_rw,
               "receptive_field": stack.receptive_field}
        sec = {v: statistics.median(times[(b, t, v)]) for v in VARIANTS}
        for v in VARIANTS:
            row[f"{v} ms"] = 1e3 * sec[v]
            row[f"{v} window samples/s"] = b * t / sec[v]
            row[f"{v} targets/s"] = steps[(b, t, v)][1] / sec[v]
        for v in ("shipped", "same work"):
            paired = [r / w for r, w in zip(times[(b, t, "r9y9")], times[(b, t, v)])]
            row[f"ratio window samples/s, {v}"] = statistics.median(paired)
            row[f"ratio targets/s, {v}"] = (row[f"ratio window samples/s, {v}"]
                                            * steps[(b, t, v)][1] / (b * t))
        rows.append(row)
    return rows


def time_rounds(steps: dict[tuple, Callable[[], Any]], rounds: int, warmup: int
                ) -> dict[tuple, list[float]]:
    """Seconds of each step in each round, after ``warmup`` calls of each. Every round runs
    every step once, in reverse order on odd rounds, so neighbours share the load of the
    moment and no step always runs first; ratios are then taken round by round."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[tuple, list[float]] = {key: [] for key in steps}
    for r in range(rounds):
        for key in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            times[key].append(timed(steps[key], torch.device("cpu")))
    return times


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'preset':<20}{'BxT':>9}{'r9y9 ms':>9}{'ours ms':>9}{'same ms':>9}"
          f"{'r9y9 smp/s':>12}{'ratio smp/s':>13}{'ratio tgt/s':>13}{'ratio same':>12}")
    for r in rows:
        print(f"{r['preset']:<20}{r['shape']:>9}{r['r9y9 ms']:>9.0f}{r['shipped ms']:>9.0f}"
              f"{r['same work ms']:>9.0f}{r['r9y9 window samples/s']:>12,.0f}"
              f"{r['ratio window samples/s, shipped']:>13.2f}"
              f"{r['ratio targets/s, shipped']:>13.2f}"
              f"{r['ratio window samples/s, same work']:>12.2f}")
    print("ratios are waveloom / r9y9; 'smp/s' window samples, 'tgt/s' scored targets "
          "(as shipped: valid positions only); 'same' every position scored")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--r9y9", required=True, help="folder holding r9y9's wavenet_vocoder/")
    ap.add_argument("--presets", nargs="+", default=["wavenet/small", "wavenet/paper-size"])
    ap.add_argument("--shapes", nargs="+", default=[f"{b}x{t}" for b, t in SHAPES])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--r9y9-dropout", type=float, default=0.05,
                    help="r9y9's dropout (its default hparams: 1 - 0.95)")
    ap.add_argument("--precision", choices=("32", "bf16-mixed"), default="32",
                    help="bf16-mixed: both sides under CPU bfloat16 autocast")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    args.shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes]
    set_threads(args.threads)
    r9y9_class = import_r9y9(args.r9y9)
    print(f"torch {torch.__version__}, {args.threads} thread(s), precision {args.precision}, "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = [row for preset in args.presets for row in measure(preset, r9y9_class, args)]
    print_rows(rows)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
