"""Latency of the exported DDSP block, per 10 ms block on one core, in every runtime.

A plugin host calls the model once per audio buffer and must get the buffer back before the
next one is due: the figure that matters is the *worst* block, not the mean. The shipped
instrument (default ``ddsp-violin``) runs ``--seconds`` of frames in 10 ms blocks (2 and 3
frames alternately at 250 frames/s) through:

* ``DDSPStream``, the Python streaming path ``waveloom transfer`` uses (the reference);
* ``DDSPBlock`` in eager torch (the function that is exported);
* the TorchScript file and the ONNX file ``waveloom export`` writes (ONNX Runtime, one
  intra-op thread).

Each prints median, 99th percentile and worst ms per block, and the real-time factor of the
median (10 ms / median). ``--wavenet CKPT`` instead times the exported WaveNet step in ONNX
Runtime (one thread), drawing each next code in numpy as a host would: samples per second.
Features are a slow glide 220 -> 660 Hz at varying loudness; the noise
is drawn per block, as a host would. Run::

    .venv/bin/python benchmarks/export_latency.py --seconds 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from waveloom.app.export import export_checkpoint
from waveloom.models.ddsp.block import STATE_NAMES, DDSPBlock
from waveloom.models.ddsp.stream import DDSPStream
from waveloom.models.load import load_checkpoint
from waveloom.shipped import checkpoint_path


def block_sizes(frames: int, frame_rate: int) -> list[int]:
    """Frames per 10 ms block: as many as are complete by the end of each 10 ms."""
    sizes, done, k = [], 0, 1
    while done < frames:
        end = min(frames, (k * frame_rate) // 100)
        if end > done:
            sizes.append(end - done)
            done = end
        k += 1
    return sizes


def features(frames: int, hop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = torch.linspace(0, 1, frames)[None]
    f0 = 220.0 * 3.0 ** t
    loud = -40.0 + 15.0 * torch.sin(2 * torch.pi * 3 * t)
    noise = torch.rand(1, frames * hop, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return f0, loud, noise


def time_blocks(step, sizes: list[int], hop: int, f0, loud, noise) -> np.ndarray:
    """Milliseconds of each call of ``step(f0, loud, noise)`` over the blocks."""
    times, i = [], 0
    for n in sizes:
        args = (f0[:, i : i + n], loud[:, i : i + n], noise[:, i * hop : (i + n) * hop])
        t0 = time.perf_counter()
        step(*args)
        times.append(1000.0 * (time.perf_counter() - t0))
        i += n
    return np.asarray(times)


def runners(model, folder: Path) -> dict[str, object]:
    """name -> step function, each carrying its own state across calls."""
    import onnxruntime as ort

    block = DDSPBlock(model).eval()
    stream = DDSPStream(model)
    state = {"eager": block.initial_state(1), "ts": block.initial_state(1),
             "onnx": {k: v.numpy() for k, v in block.initial_state(1).items()}}
    export_checkpoint(model.source, "torchscript", folder / "b.pt")
    export_checkpoint(model.source, "onnx", folder / "b.onnx")
    scripted = torch.jit.load(str(folder / "b.pt"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(folder / "b.onnx"), options,
                                   providers=["CPUExecutionProvider"])

    def torch_step(fn, key):
        def step(f, lo, no):
            with torch.no_grad():
                out = fn(f, lo, no, *(state[key][k] for k in STATE_NAMES))
            state[key] = dict(zip(STATE_NAMES, out[1:]))
        return step

    def onnx_step(f, lo, no):
        feed = {"f0_hz": f.numpy(), "loudness_db": lo.numpy(), "noise": no.numpy(),
                **state["onnx"]}
        state["onnx"] = dict(zip(STATE_NAMES, session.run(None, feed)[1:]))

    return {"DDSPStream (Python, reference)": lambda f, lo, no: stream.push(f, lo, None, no),
            "DDSPBlock, eager torch": torch_step(block, "eager"),
            "TorchScript file": torch_step(scripted, "ts"),
            "ONNX file (onnxruntime)": onnx_step}


def wavenet_rate(checkpoint: str, samples: int = 2000) -> float:
    """Samples per second of the exported WaveNet step in ONNX Runtime, sampling in numpy."""
    import json

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "step.onnx"
        export_checkpoint(checkpoint_path(checkpoint), "onnx", path)
        info = json.loads(Path(f"{path}.json").read_text())["info"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    queues = {k: np.zeros([1, *v], np.float32) for k, v in info["queues"].items()}
    code, rng = np.array([info["silence_code"]]), np.random.default_rng(0)
    labels = {"pitch": np.array([60]), "instrument": np.array([0]), "onset": np.array([0])}
    t0 = time.perf_counter()
    for t in range(samples):
        out = session.run(None, {"code": code, "position": np.array([t]), **labels, **queues})
        logits = out[0][0] - out[0][0].max()
        p = np.exp(logits) / np.exp(logits).sum()
        code = np.array([rng.choice(len(p), p=p)])
        queues = dict(zip(queues, out[1:]))
    return samples / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="ddsp-violin")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--wavenet", default=None, metavar="CKPT",
                    help="time the exported WaveNet step instead (e.g. wavenet-small-notes)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.wavenet:
        rate = wavenet_rate(args.wavenet)
        print(f"{args.wavenet}: exported step in onnxruntime, one thread: {rate:,.0f} samples/s")
        return
    path = checkpoint_path(args.checkpoint)
    model, _ = load_checkpoint(path)
    model.source = path
    c = model.config
    frames = int(args.seconds * c.frame_rate)
    f0, loud, noise = features(frames, model.hop)
    sizes = block_sizes(frames, c.frame_rate)
    print(f"{path.name}: {len(sizes)} blocks of 10 ms ({args.seconds:g} s), one thread, "
          f"torch {torch.__version__}")
    print("| runtime | median ms | p99 ms | worst ms | real-time factor (median) |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, step in runners(model, Path(tmp)).items():
            time_blocks(step, sizes[:20], model.hop, f0, loud, noise)  # warm-up
            ms = time_blocks(step, sizes, model.hop, f0, loud, noise)
            print(f"| {name} | {np.median(ms):.2f} | {np.percentile(ms, 99):.2f} | "
                  f"{ms.max():.2f} | {10.0 / np.median(ms):.1f}x |")


if __name__ == "__main__":
    main()
