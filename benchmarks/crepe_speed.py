"""How fast can CREPE full judge pitch on this CPU? FLOPs, the matmul peak and the measured curve.

Issue #20 asks for a 35-note folder of 4 s notes at a 10 ms hop in under 60 s on 2 cores. One
run measures, at ``--threads`` (default 2):

* the machine's float32 matmul peak (``torch.mm`` of 2048 x 2048, best of 5): the ceiling for
  any exact float32 network on these cores;
* CREPE's FLOPs per frame, counted from the layer shapes (2 x multiply-adds of the six convs and
  the dense layer);
* frames/s and GFLOP/s of the exact forward variants (torchcrepe's 2-d graph, the 1-d graph the
  judge uses under ``no_grad`` / ``inference_mode``, channels-last 2-d), and of the 1-d graph at
  several batch sizes and thread counts; bfloat16 autocast is timed for reference (not exact);
* with ``--root``, the judge end to end on ``ROOT/pitch35`` (made as in
  ``benchmarks/pitch_judge_speed.py``) at ``--hop``: frames above the silence threshold, seconds,
  accuracy, and the time the same frames would take at the matmul peak (the judge itself runs
  only with ``--judge``: minutes at a 10 ms hop; without it the time is projected from the
  measured frames/s).

    python benchmarks/crepe_speed.py --root out/smalln --hop 0.01 [--judge]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from functools import partial
from pathlib import Path

import torch

from waveloom.audio.crepe import load_crepe, penultimate

POSITIONS = (256, 128, 64, 32, 16, 8)  # output length of each conv layer (1024-sample frame)


def flops_per_frame(model: torch.nn.Module) -> float:
    """2 x multiply-adds of the six convolutions and the 360-way dense layer, per frame."""
    convs = (model.conv1, model.conv2, model.conv3, model.conv4, model.conv5, model.conv6)
    total = sum(2.0 * c.weight.numel() * pos for c, pos in zip(convs, POSITIONS))
    return total + 2.0 * model.classifier.weight.numel()


def mm_peak(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """Best float32 ``torch.mm`` rate in GFLOP/s at ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * size ** 3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _variants(model) -> dict[str, object]:
    """name -> (callable(frames), exact?)."""
    last = load_crepe.__wrapped__("full").to(memory_format=torch.channels_last)

    def two_d(frames):
        return model(frames)

    def one_d(frames):
        x = penultimate(model, frames)
        return torch.sigmoid(model.classifier(x))

    def channels_last(frames):
        return last(frames)

    def bf16(frames):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return one_d(frames)

    return {"torchcrepe 2-d, no_grad": (two_d, True, torch.no_grad),
            "1-d (the judge), no_grad": (one_d, True, torch.no_grad),
            "1-d (the judge), inference_mode": (one_d, True, torch.inference_mode),
            "2-d channels-last, inference_mode": (channels_last, True, torch.inference_mode),
            "1-d bfloat16 autocast (not exact)": (bf16, False, torch.inference_mode)}


def time_variant(fn, ctx, frames: torch.Tensor, repeats: int) -> float:
    """Best seconds per frame over ``repeats`` calls on ``frames`` ``[B, 1024]``."""
    with ctx():
        fn(frames)
        best = min(_timed(lambda: fn(frames)) for _ in range(repeats))
    return best / len(frames)


def micro(model, flops: float, peak: float, args) -> tuple[float, float]:
    """Print the variants and the batch/thread curve; return (the judge's frames/s, peak).

    The variants and the matmul peak are timed in interleaved rounds (best of ``repeats``
    each), so a change in the machine's load during the run hits them alike.
    """
    frames = torch.randn(args.batch, 1024)
    frames = (frames - frames.mean(1, keepdim=True)) / frames.std(1, keepdim=True)
    variants = _variants(model)
    best = {name: math.inf for name in variants}
    for fn, _, ctx in variants.values():
        with ctx():
            fn(frames[:4])  # warm-up
    for _ in range(args.repeats):
        peak = max(peak, mm_peak(args.threads, repeats=2))
        for name, (fn, _, ctx) in variants.items():
            with ctx():
                best[name] = min(best[name], _timed(partial(fn, frames)) / len(frames))
    print(f"\nvariants at batch {args.batch}, {args.threads} threads, best of {args.repeats} "
          f"interleaved rounds; mm peak {peak:.0f} GFLOP/s "
          "(ms/frame, frames/s, GFLOP/s, % of the mm peak):")
    for name, (_, exact, _) in variants.items():
        s = best[name]
        print(f"  {name:38s} {1e3 * s:7.2f} ms {1 / s:7.1f}/s {flops / s / 1e9:7.1f} "
              f"{100 * flops / s / 1e9 / peak:5.1f} %" + ("" if exact else "  (not exact)"))
    one_d = variants["1-d (the judge), inference_mode"][0]
    print("\n1-d inference_mode by batch and threads (ms/frame | GFLOP/s):")
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        cells = []
        for b in (1, 16, 64):
            x = frames[:b] if b <= len(frames) else frames.repeat(b // len(frames) + 1, 1)[:b]
            s = time_variant(one_d, torch.inference_mode, x, args.repeats)
            cells.append(f"B={b}: {1e3 * s:.1f} | {flops / s / 1e9:.0f}")
        print(f"  {threads} thread(s): " + ", ".join(cells))
    torch.set_num_threads(args.threads)
    return 1.0 / best["1-d (the judge), no_grad"], peak


def end_to_end(root: Path, flops: float, peak: float, rate: float, args) -> None:
    """Frames of the 35-note folder above the silence threshold, the time they take at the
    measured ``rate`` (frames/s) and at the mm peak; with ``--judge``, the judge run itself."""
    from pitch_judge_speed import make_folder

    from waveloom.audio.crepe import SILENCE_DB, frame_audio
    from waveloom.audio.io import load_audio
    from waveloom.evaluate.pitch import CrepePitch, pitch_accuracy

    folder = make_folder(root)
    paths = sorted(folder.glob("*.wav"))
    clips = [load_audio(p, 16000)[0] for p in paths]
    targets = [int(p.stem.rsplit("_k", 1)[1]) for p in paths]
    counts = [frame_audio(c, 16000, args.hop) for c in clips]
    total = sum(len(db) for _, db in counts)
    loud = sum(int((db > SILENCE_DB).sum()) for _, db in counts)
    print(f"\n{len(clips)} notes at a {args.hop:g} s hop: {total} frames, {loud} above -60 dBFS; "
          f"at the measured {rate:.1f} frames/s they take {loud / rate:.0f} s, at the mm peak "
          f"{flops * loud / peak / 1e9:.0f} s (the goal is 60 s: {flops * loud / 60e9:.0f} "
          "GFLOP/s)")
    for decoder in args.decoders if args.judge else ():
        judge = CrepePitch("full", hop_seconds=args.hop, decoder=decoder,
                           batch_frames=args.batch)
        t0 = time.perf_counter()
        r = pitch_accuracy(clips, targets, 16000, 50.0, judge)
        wall = time.perf_counter() - t0
        n = judge.frames_run
        print(f"\njudge crepe-full, hop {args.hop:g} s, {decoder}: {len(clips)} notes, {n} frames "
              f"above -60 dBFS, {wall:.1f} s ({1e3 * wall / n:.1f} ms/frame, "
              f"{flops * n / wall / 1e9:.0f} GFLOP/s), accuracy {r['accuracy']:.3f}, "
              f"errors {r['errors']}; at the mm peak these frames need "
              f"{flops * n / peak / 1e9:.0f} s")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=256, help="frames per network call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--root", type=Path, default=None,
                   help="time the judge on ROOT/pitch35 (ROOT/real rendered as in the docs)")
    p.add_argument("--hop", type=float, default=0.01)
    p.add_argument("--decoders", nargs="+", default=["viterbi"])
    p.add_argument("--judge", action="store_true",
                   help="also run the judge on the folder (minutes at a 10 ms hop)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_crepe("full")
    flops = flops_per_frame(model)
    peak = mm_peak(args.threads)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; float32 mm peak at "
          f"{args.threads} threads: {peak:.0f} GFLOP/s; CREPE full: {flops / 1e9:.2f} GFLOP a "
          f"frame ({flops / 2e9:.2f} G multiply-adds), so at most {peak * 1e9 / flops:.0f} "
          "frames/s on these cores")
    rate, peak = micro(model, flops, peak, args)
    if args.root is not None:
        end_to_end(args.root, flops, peak, rate, args)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
