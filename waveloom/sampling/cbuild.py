"""Build and load the C sampling kernel (``wavenet_step.c``) with the machine's compiler.

The kernel is compiled once per machine with ``-O3 -march=native`` (so it uses whatever
vector units the CPU has) and cached under ``$WAVELOOM_CACHE`` or ``~/.cache/waveloom``,
keyed by a hash of the source, the flags and the compiler's version. Nothing is downloaded:
on a machine without a C compiler :func:`load` reports why and the engine uses numba alone.

Flags: ``-ffp-contract=fast`` (FMA contraction), ``-fno-math-errno -fno-trapping-math``. No
``-ffast-math``: its finite-math and reciprocal assumptions could change results, and the
kernel is written so the compiler vectorises it without them.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

SOURCE = Path(__file__).with_name("wavenet_step.c")
FLAGS = [
    "-O3",
    "-march=native",
    "-fPIC",
    "-shared",
    "-ffp-contract=fast",
    "-fno-math-errno",
    "-fno-trapping-math",
]
MAX_KERNEL = 16  # taps per layer the C kernel supports (xs[16])

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def cache_dir() -> Path:
    root = os.environ.get("WAVELOOM_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "waveloom"


def _flags() -> list[str]:
    """FLAGS, with ``-march=native`` replaced by ``$WAVELOOM_CFLAGS`` when set (e.g. to
    build a portable ``-mavx2 -mfma`` kernel, or to test one ISA on another machine)."""
    extra = os.environ.get("WAVELOOM_CFLAGS")
    if not extra:
        return list(FLAGS)
    return [f for f in FLAGS if f != "-march=native"] + extra.split()


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


class NetC(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int64)
        for name in (
            "n_layers", "kernel", "res_ch", "dil_ch", "skip_ch", "end_ch", "n_params",
            "n_res", "wkind", "in_rows", "ring_rows", "loc_ch",
        )
    ] + [
        (name, ctypes.c_void_p)
        for name in (
            "in_table", "in_b", "conv_w", "res_w", "skip_w", "out1_w", "out2_w", "conv_s",
            "res_s", "skip_s", "out1_s", "out2_s", "res_b", "skip_b", "out1_b", "out2_b",
            "dil", "ring_off", "ring_len", "loc_w",
        )
    ]  # fmt: skip


class StateC(ctypes.Structure):
    _fields_ = [("batch", ctypes.c_int64)] + [
        (name, ctypes.c_void_p)
        for name in (
            "ring", "codes", "bias", "x", "h", "z2", "skip", "hid", "params", "probs", "acc",
            "nz",
        )
    ]  # fmt: skip


class HeadC(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_int64),
        ("components", ctypes.c_int64),
        ("levels", ctypes.c_int64),
        ("tempered", ctypes.c_int64),
        ("temperature", ctypes.c_float),
        ("log_temperature", ctypes.c_float),
        ("log_scale_min", ctypes.c_float),
        ("pad_", ctypes.c_float),
        ("input_map", ctypes.c_void_p),
    ]


def _ptr(a: np.ndarray) -> int:
    if not a.flags.c_contiguous:
        raise ValueError("the C kernel needs C-contiguous arrays")
    return a.ctypes.data


def load() -> tuple[Any, str | None]:
    """(the loaded library, None) or (None, why it is unavailable). Builds on first call."""
    with _lock:
        if "lib" in _loaded:
            return _loaded["lib"], _loaded["why"]
        lib, why = _build_and_load()
        _loaded["lib"], _loaded["why"] = lib, why
        return lib, why


def _build_and_load() -> tuple[Any, str | None]:
    if os.environ.get("WAVELOOM_NO_C"):
        return None, "disabled by WAVELOOM_NO_C"
    if not SOURCE.is_file():
        return None, f"{SOURCE.name} is not installed with the package"
    cc = _compiler()
    if cc is None:
        return None, "no C compiler (cc, gcc or clang) on PATH"
    try:
        version = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError) as err:
        return None, f"{cc} --version failed: {err}"
    flags = _flags()
    key = hashlib.sha256(
        "\0".join([SOURCE.read_text(), " ".join(flags), version, os.uname().machine]).encode()
    ).hexdigest()[:16]
    target = cache_dir() / f"wavenet_step-{key}.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                out = Path(tmp) / target.name
                proc = subprocess.run(
                    [cc, *flags, "-o", str(out), str(SOURCE), "-lm"],
                    capture_output=True, text=True, timeout=300,
                )  # fmt: skip
                if proc.returncode != 0:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                    return None, f"{cc} failed to build the kernel: {' | '.join(tail)}"
                os.replace(out, target)  # atomic: concurrent builders are harmless
        except (OSError, subprocess.SubprocessError) as err:
            return None, f"could not build the kernel in {target.parent}: {err}"
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as err:
        return None, f"could not load {target}: {err}"
    _loaded["name"] = target.name
    lib.wl_block.restype = ctypes.c_int64
    lib.wl_block.argtypes = []
    fn = lib.wl_run
    fn.restype = ctypes.c_int64
    i64, vp = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [
        ctypes.POINTER(NetC), ctypes.POINTER(HeadC), ctypes.POINTER(StateC),
        i64, i64, i64, i64, i64, vp, vp, i64, vp, vp, vp, i64, vp,
    ]  # fmt: skip
    front, back = lib.wl_pipe_front, lib.wl_pipe_back
    front.restype, back.restype = ctypes.c_int64, None
    front.argtypes = [
        ctypes.POINTER(NetC), ctypes.POINTER(StateC), i64, i64, i64, i64, i64, vp, vp, i64,
        vp, vp, vp,
    ]  # fmt: skip
    back.argtypes = [
        ctypes.POINTER(NetC), ctypes.POINTER(HeadC), ctypes.POINTER(StateC), i64, i64, i64,
        i64, vp, i64, vp, vp, i64, vp, vp,
    ]  # fmt: skip
    return lib, None


def library_name() -> str | None:
    """The built kernel's file name (its key hashes the source, flags, compiler and machine),
    or None when it is unavailable: what a packed model's panels were laid out for."""
    lib, _ = load()
    return None if lib is None else _loaded.get("name")


def block() -> int:
    """The panel width the built kernel expects (see ``gemv`` in wavenet_step.c)."""
    lib, why = load()
    if lib is None:
        raise RuntimeError(f"the C kernel is unavailable: {why}")
    return int(lib.wl_block())


def panels(w: np.ndarray, width: int) -> np.ndarray:
    """Matrices ``w`` [M, R, N] (row-major) -> the same values in the C kernel's panel layout.

    Columns are cut into panels of ``width`` (the last one narrower) and each panel is stored
    row-major on its own, so the kernel streams one contiguous panel per register block. The
    result keeps the shape [M, R, N]; only the order of the values inside each matrix changes.
    """
    m, r, n = w.shape
    full = n // width * width
    parts = [np.ascontiguousarray(
        w[:, :, :full].reshape(m, r, n // width, width).transpose(0, 2, 1, 3)
    ).reshape(m, -1)]
    if full < n:
        parts.append(np.ascontiguousarray(w[:, :, full:]).reshape(m, -1))
    return np.ascontiguousarray(np.concatenate(parts, axis=1).reshape(m, r, n))


def weight_kind(net: Any) -> int:
    """The kernel's weight-kind code (wavenet_step.c's W_*): 0 float32, 1 int8, 2 float16."""
    if net.conv_w.dtype == np.float16:
        return 2
    return 1 if net.scaled else 0


def net_struct(net: Any, ring_rows: int, loc_w: np.ndarray | None = None) -> NetC:
    """The C view of a packed ``numba_kernels.Net`` (the arrays must outlive it). ``loc_w``
    [n, L, 2D] (panel layout): the kernel projects L local features itself (the engine then
    passes features, not rows)."""
    d = net.conv_w.shape[2] // 2
    fields = {
        "n_layers": net.dil.shape[0], "kernel": net.kernel, "res_ch": net.in_b.shape[0],
        "dil_ch": d, "skip_ch": net.skip_w.shape[2], "end_ch": net.out1_w.shape[2],
        "n_params": net.out2_w.shape[2], "n_res": net.n_res, "wkind": weight_kind(net),
        "in_rows": net.in_table.shape[1], "ring_rows": ring_rows,
        "loc_ch": 0 if loc_w is None else loc_w.shape[1],
    }  # fmt: skip
    arrays = {
        name: _ptr(getattr(net, name))
        for name in (
            "in_table", "in_b", "conv_w", "res_w", "skip_w", "out1_w", "out2_w", "conv_s",
            "res_s", "skip_s", "out1_s", "out2_s", "res_b", "skip_b", "out1_b", "out2_b",
            "dil", "ring_off", "ring_len",
        )
    }  # fmt: skip
    arrays["loc_w"] = None if loc_w is None else _ptr(loc_w)
    return NetC(**fields, **arrays)


def state_struct(st: Any) -> StateC:
    """The C view of a ``numba_kernels.State`` (the arrays must outlive it)."""
    names = ("ring", "codes", "bias", "x", "h", "z2", "skip", "hid", "params", "probs", "acc")
    return StateC(batch=st.x.shape[0], nz=_ptr(st.nz), **{k: _ptr(getattr(st, k)) for k in names})


def head_struct(head: Any) -> HeadC:
    return HeadC(
        kind=head.kind, components=head.components, levels=head.levels,
        tempered=int(head.tempered), temperature=float(head.temperature),
        log_temperature=float(head.log_temperature), log_scale_min=float(head.log_scale_min),
        pad_=0.0, input_map=_ptr(head.input_map),
    )  # fmt: skip


def ptr_or_null(a: np.ndarray | None) -> int | None:
    """Data pointer of ``a``, or None (NULL) for a missing or empty array."""
    if a is None or a.size == 0:
        return None
    return _ptr(a)
