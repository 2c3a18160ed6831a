"""Build and load the C sampling kernel (``wavenet_step.c``) with the machine's compiler.

The kernel is compiled once per machine by :func:`waveloom.native.build.build` (``-O3
-march=native``, cached under ``$WAVELOOM_CACHE`` or ``~/.cache/waveloom``, keyed by a hash of
the source, the shared ``vector_gemv.h``, the flags and the compiler's version). Nothing is
downloaded: on a machine without a C compiler :func:`load` reports why and the engine uses
numba alone. This module holds the WaveNet kernel's structs and entry points.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

import numpy as np

from waveloom.native.build import build, cache_dir, panels  # noqa: F401 (re-exported)
from waveloom.native.build import pointer as _ptr

SOURCE = Path(__file__).with_name("wavenet_step.c")
MAX_KERNEL = 16  # taps per layer the C kernel supports (xs[16])

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


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


def load() -> tuple[Any, str | None]:
    """(the loaded library, None) or (None, why it is unavailable). Builds on first call."""
    with _lock:
        if "lib" in _loaded:
            return _loaded["lib"], _loaded["why"]
        lib, why = _build_and_load()
        _loaded["lib"], _loaded["why"] = lib, why
        return lib, why


def _build_and_load() -> tuple[Any, str | None]:
    lib, why, name = build(SOURCE)
    if lib is None:
        return None, why
    _loaded["name"] = name
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
