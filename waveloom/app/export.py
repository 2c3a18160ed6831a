"""``waveloom export CKPT --format onnx|torchscript --out FILE``: a model for other hosts.

The family says what is exported (:meth:`~waveloom.models.base.Generative.export_spec`): DDSP's
streaming block with its state as inputs and outputs, MelGAN's mel -> audio generator, the
WaveNet's single step with its caches as state. The file
is traced from the spec's first example, then every example (other lengths along the dynamic
axes) runs through the file and through the module, and the largest difference is printed and
kept: a file that disagrees with torch by more than ``--tolerance`` is not written.

ONNX uses torch's TorchScript-based exporter (``dynamo=False``): the torch.export one unrolls
the DDSP decoder's GRU over the example's frame count, so a block of any other length fails in
ONNX Runtime (measured with torch 2.13; docs/export.md). The check needs onnxruntime
(``pip install 'waveloom[export]'``); without it the file is written unchecked, and says so.

Beside FILE, ``FILE.json`` holds what a host needs: input and output names, shapes and dtypes
(symbolic axes named), the state pairs to feed back, sample rate, hop, latency and units.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from waveloom.errors import ConfigError
from waveloom.shipped import checkpoint_path

FORMATS = ("onnx", "torchscript")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    ex = subparsers.add_parser(
        "export", help="write a ddsp, melgan or wavenet checkpoint as ONNX or TorchScript",
        description="DDSP: the streaming block (frames + state in, audio + state out; any "
        "block length). MelGAN: log mel in, audio out. WaveNet: one sample, its caches in and "
        "out. The file is checked against torch on "
        "inputs of several lengths; FILE.json describes its inputs, outputs and state.")
    ex.add_argument("checkpoint", type=checkpoint_path,
                    help="a ddsp, melgan or wavenet checkpoint")
    ex.add_argument("--format", choices=FORMATS, required=True)
    ex.add_argument("--out", type=Path, required=True, help="the file to write (.onnx / .pt)")
    ex.add_argument("--tolerance", type=float, default=1e-4,
                    help="largest difference from torch allowed on the check (default 1e-4)")
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    ex.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = export_checkpoint(args.checkpoint, args.format, args.out,
                               tolerance=args.tolerance, opset=args.opset)
    checked = result["check"]
    what = (f"max |file - torch| {checked['max_abs_diff']:.2e} over {checked['examples']} "
            f"inputs" if checked["ran"] else checked["why"])
    print(f"{result['file']} ({result['bytes'] / 1e6:.1f} MB, {result['seconds']:.1f} s): {what}")
    print(f"{result['file']}.json: inputs {', '.join(result['inputs'])}")
    return 0


def export_checkpoint(checkpoint: str | Path, fmt: str, out: str | Path, *,
                      tolerance: float = 1e-4, opset: int = 17) -> dict[str, Any]:
    """Export, check against torch, write FILE and FILE.json; returns the sidecar's dict."""
    import torch

    from waveloom.models.load import load_checkpoint

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    model, run_config = load_checkpoint(checkpoint, "cpu")
    spec = model.export_spec()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    t0 = time.monotonic()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (_write_onnx if fmt == "onnx" else _write_torchscript)(spec, tmp, opset)
            check = _check(spec, tmp, fmt)
        if check["ran"] and check["max_abs_diff"] > tolerance:
            raise ConfigError(f"{out}: the exported file differs from torch by "
                              f"{check['max_abs_diff']:.2e} > --tolerance {tolerance:g}; "
                              "nothing written")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    sidecar = {"file": str(out), "format": fmt, "family": run_config.family,
               "checkpoint": str(checkpoint), "bytes": out.stat().st_size,
               "seconds": round(time.monotonic() - t0, 2), "inputs": spec.inputs,
               "outputs": spec.outputs, "tensors": _describe(spec), "state": spec.state,
               "info": spec.info, "check": check}
    Path(f"{out}.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    return sidecar


def _write_onnx(spec: Any, path: Path, opset: int) -> None:
    import torch

    try:
        import onnx  # noqa: F401  (the exporter writes through it)
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install "
                          "'waveloom[export]'") from None
    names = set(spec.inputs) | set(spec.outputs)
    try:
        torch.onnx.export(spec.module, spec.examples[0], str(path), input_names=spec.inputs,
                          output_names=spec.outputs, opset_version=opset, dynamo=False,
                          dynamic_axes={k: v for k, v in spec.dynamic.items() if k in names})
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"ONNX export failed ({first}); try --format torchscript or another "
                          "--opset") from None


def _write_torchscript(spec: Any, path: Path, opset: int) -> None:
    import torch

    traced = torch.jit.trace(spec.module, spec.examples[0], check_trace=False)
    info = json.dumps({"inputs": spec.inputs, "outputs": spec.outputs, "info": spec.info})
    torch.jit.save(traced, str(path), _extra_files={"waveloom.json": info})


def _check(spec: Any, path: Path, fmt: str) -> dict[str, Any]:
    """Run every example through the file and the module: the largest output difference."""
    import torch

    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            return {"ran": False, "why": "unchecked: onnxruntime is not installed (pip install "
                                         "'waveloom[export]')"}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run_file(example: tuple) -> list:
            feed = {name: x.numpy() for name, x in zip(spec.inputs, example)}
            return [torch.from_numpy(y) for y in session.run(None, feed)]
    else:
        loaded = torch.jit.load(str(path))

        def run_file(example: tuple) -> list:
            out = loaded(*example)
            return list(out) if isinstance(out, (tuple, list)) else [out]
    worst, seconds = 0.0, []
    for example in spec.examples:
        want = spec.module(*example)
        want = list(want) if isinstance(want, (tuple, list)) else [want]
        t0 = time.perf_counter()
        got = run_file(example)
        seconds.append(time.perf_counter() - t0)
        for a, b in zip(got, want):
            worst = max(worst, float((a.double() - b.double()).abs().max()))
    return {"ran": True, "examples": len(spec.examples), "max_abs_diff": worst,
            "ms_per_call": [round(1000 * s, 3) for s in seconds]}


def _describe(spec: Any) -> dict[str, Any]:
    """Name -> {shape with the dynamic axes named, dtype} for every input and output."""
    import torch

    with torch.no_grad():
        outs = spec.module(*spec.examples[0])
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    table = {}
    for name, x in [*zip(spec.inputs, spec.examples[0]), *zip(spec.outputs, outs)]:
        axes = spec.dynamic.get(name, {})
        table[name] = {"shape": [axes.get(i, int(d)) for i, d in enumerate(x.shape)],
                       "dtype": str(x.dtype).replace("torch.", "")}
    return table
