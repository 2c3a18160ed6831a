"""Training step of the WaveNet stack alone: the fast forward against the reference, A/B.

One forward + backward (cross-entropy over 256 classes, the WaveNet loss) of
``WaveNetStack`` in valid mode (``padded=False``: the input carries the receptive field before
the predicted samples), timed for the default fast path (``waveloom/nn/wavenet_fast.py``) and
for ``reference=True`` (the layer-by-layer ``nn.Conv1d`` path) in interleaved rounds in one
process, so drift in what else the machine runs hits both alike; the median of each and
their ratio are printed. Variants (``--variants``) swap one piece of the fast path back to
its plain form, to measure what each piece pays:

* ``two_gemm``: the dilated conv as K products of the shifted views, summed, instead of one
  product of the views stacked along channels;
* ``layer_skip``: each layer's skip 1x1 applied and summed per layer instead of one product.

Sizes: ``paper`` = 3 stacks x 10 layers, residual/dilation 64, skip/end 256 (the default
stack, ~7.5 MFLOP per predicted sample for forward + backward); ``small`` = the demo preset's
2 x 9 layers of 32, skip/end 128. ``--cond`` adds a global vector (16) and local features
(6 channels) to every layer, as the demo WaveNet has.

    PYTHONPATH=. .venv/bin/python benchmarks/stack_step.py [--sizes paper small]
        [--shapes 4x8000 1x16000] [--threads 2] [--rounds 7] [--cond] [--variants ...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from waveloom.device import set_threads
from waveloom.nn import wavenet_fast
from waveloom.nn.wavenet import WaveNetStack

SIZES = {
    "paper": dict(residual_channels=64, dilation_channels=64, skip_channels=256,
                  end_channels=256, layers_per_stack=10, stacks=3),
    "small": dict(residual_channels=32, dilation_channels=32, skip_channels=128,
                  end_channels=128, layers_per_stack=9, stacks=2),
}
G_DIM, L_DIM = 16, 6


def two_gemm_block(block, x, bias, l, padded, tail):
    """The fast block with the dilated conv as K separate products (variant ``two_gemm``)."""
    conv = block.conv
    k, d = conv.kernel_size[0], conv.dilation[0]
    ctx = (k - 1) * d
    if padded and ctx:
        x = F.pad(x, (0, 0, ctx, 0))
    b, t_in, c = x.shape
    t_out = t_in - ctx
    h = torch.matmul(x[:, (k - 1) * d :], conv.weight[:, :, k - 1].t()) + conv.bias
    for j in range(k - 1):
        h = h + torch.matmul(x[:, j * d : j * d + t_out], conv.weight[:, :, j].t())
    if l is not None:
        h = h + torch.matmul(l[:, l.shape[1] - t_out :], block.local_proj.weight[:, :, 0].t())
    if bias is not None:
        h = h + bias
    z = wavenet_fast.gate(h)
    if block.res is None:
        return None, z[:, t_out - tail :]
    res = torch.addmm(block.res.bias, z.reshape(b * t_out, -1), block.res.weight[:, :, 0].t())
    return res.view(b, t_out, c).add_(x[:, ctx:]), z[:, t_out - tail :]


def variant(name: str) -> Callable[[], None]:
    """A context-free patch of wavenet_fast for one variant; returns the undo."""
    saved = dict(vars(wavenet_fast))
    if name == "two_gemm":
        wavenet_fast._block = two_gemm_block
    elif name == "layer_skip":
        wavenet_fast.fast_forward = layer_skip_forward
    elif name not in ("fast", "reference"):
        raise SystemExit(f"unknown variant {name!r}")

    def undo() -> None:
        for key in ("gate", "_block", "fast_forward"):
            setattr(wavenet_fast, key, saved[key])
    return undo


def layer_skip_forward(stack, codes, g, l, padded):
    """The fast forward with each layer's skip 1x1 summed per layer (variant ``layer_skip``)."""
    x = wavenet_fast._input_conv(stack, wavenet_fast._inputs(stack, codes), padded)
    b, t = x.shape[0], codes.shape[-1]
    t_final = t if padded else t - stack.receptive_field + 1
    l_tm = None if l is None else l.transpose(1, 2)
    skip = None
    for block, bias in zip(stack.blocks, wavenet_fast._global_biases(stack, g)):
        x_next, z = wavenet_fast._block(block, x, bias, l_tm, padded, t_final)
        s = torch.addmm(block.skip.bias, z.reshape(b * t_final, -1),
                        block.skip.weight[:, :, 0].t())
        skip = s if skip is None else skip + s
        if x_next is not None:
            x = x_next
    skip = skip.relu()
    hidden = torch.addmm(stack.out1.bias, skip, stack.out1.weight[:, :, 0].t()).relu_()
    out = torch.addmm(stack.out2.bias, hidden, stack.out2.weight[:, :, 0].t())
    return out.view(b, t_final, -1).transpose(1, 2)


def make_step(size: str, shape: str, cond: bool, name: str) -> Callable[[], None]:
    torch.manual_seed(0)
    stack = WaveNetStack(out_channels=256, kernel_size=2, global_channels=G_DIM if cond else 0,
                         local_channels=L_DIM if cond else 0, **SIZES[size]).train()
    batch, predicted = (int(v) for v in shape.split("x"))
    total = predicted + stack.receptive_field - 1
    codes = torch.randint(0, 256, (batch, total))
    targets = torch.randint(0, 256, (batch, predicted))
    g = torch.randn(batch, G_DIM) if cond else None
    l = torch.randn(batch, L_DIM, total) if cond else None

    def step() -> None:
        undo = variant(name)
        try:
            out = stack(codes, g, l, padded=False, reference=name == "reference")
            F.cross_entropy(out, targets).backward()
        finally:
            undo()
        stack.zero_grad(set_to_none=True)
    return step


def run(size: str, shape: str, cond: bool, names: list[str], rounds: int) -> None:
    steps = {n: make_step(size, shape, cond, n) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for step in steps.values():
        step()  # warm-up
    for _ in range(rounds):
        for n, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[n].append(time.perf_counter() - t0)
    batch, predicted = (int(v) for v in shape.split("x"))
    ref = statistics.median(times["reference"])
    for n in names:
        med = statistics.median(times[n])
        print(f"{size:6s} {shape:8s} cond={int(cond)} {n:11s} {med * 1000:8.1f} ms "
              f"{batch * predicted / med:9.0f} samples/s  reference/this {ref / med:5.2f}x",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["paper", "small"], choices=list(SIZES))
    parser.add_argument("--shapes", nargs="+", default=["4x8000", "1x16000"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cond", action="store_true")
    parser.add_argument("--variants", nargs="*", default=[],
                        choices=["two_gemm", "layer_skip"])
    args = parser.parse_args()
    set_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for size in args.sizes:
        for shape in args.shapes:
            run(size, shape, args.cond, ["reference", "fast", *args.variants], args.rounds)


if __name__ == "__main__":
    main()
