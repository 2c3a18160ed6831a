"""SampleRNN's sampler on a C kernel (``samplernn_step.c``): the numpy stepper's weights and
steps, run a chunk of samples per call.

Why: the numpy stepper pays ~20 numpy calls per sample (the MLP, the softmax, the draw), 60 us
of overhead around a few us of arithmetic, so the shipped ``samplernn-notes`` ran at 0.8x real
time. The kernel runs the whole loop in C on the WaveNet kernel's register-blocked products
(``waveloom/native/vector_gemv.h``). :class:`CStepper` is a :class:`NumpyStepper` whose
``logits``/``draw``/``run`` go through the kernel: same arrays, same uniforms, the same codes
for a seed except where a uniform falls within float rounding of a CDF boundary (the sums
are reordered; ``tests/test_samplernn.py`` compares all three steppers).

Built on first use by :func:`waveloom.native.build.build`; where no C compiler exists
:func:`unavailable` says why and sampling keeps the numpy stepper.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

import numpy as np

from waveloom.models.samplernn_stepper import NumpyStepper
from waveloom.native.build import build, panels, pointer

SOURCE = Path(__file__).with_name("samplernn_step.c")
_I64, _F32, _VP = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p


class TierC(ctypes.Structure):
    _fields_ = [(k, _I64) for k in ("frame", "loc_in", "hid", "layers", "lstm", "ratio",
                                    "out_dim")] + [
        (k, _VP) for k in ("w_in", "b_in", "w_loc", "w_ih", "w_hh", "b_ih", "b_hh", "w_up",
                           "b_up", "g_bias", "h", "c", "vec")]


class SrnnC(ctypes.Structure):
    _fields_ = [(k, _I64) for k in ("n", "n_tiers", "ctx", "levels", "inputs", "mlp",
                                    "n_hidden", "loc_ch", "local_len", "stride")] + [
        ("scale", _F32), ("temperature", _F32), ("sizes", _VP),
        ("tiers", ctypes.POINTER(TierC))] + [
        (k, _VP) for k in ("table", "mlp_bias", "w_mloc", "w_hid", "b_hid", "w_out", "b_out",
                           "local", "x", "gi", "gh", "frame", "a", "b", "logits", "e")]


_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def _library() -> tuple[Any, str | None]:
    with _lock:
        if "lib" not in _loaded:
            lib, why, _ = build(SOURCE)
            if lib is not None:
                lib.srnn_block.restype, lib.srnn_block.argtypes = _I64, []
                lib.srnn_run.restype = None
                lib.srnn_run.argtypes = [ctypes.POINTER(SrnnC), _VP, _I64, _I64, _VP]
            _loaded["lib"], _loaded["why"] = lib, why
        return _loaded["lib"], _loaded["why"]


def unavailable() -> str | None:
    """None where the kernel builds and loads, else why not (one line)."""
    return _library()[1]


def _f32(a: Any) -> np.ndarray:
    return np.array(a, dtype=np.float32, order="C", copy=True)


class CStepper(NumpyStepper):
    """:class:`NumpyStepper` on the C kernel (see the module docstring). The recurrent state,
    the tiers' outputs and the scratch live in arrays this object owns; the struct points at
    them, so they must not be replaced."""

    def __init__(self, model: Any, g: Any, history: Any, state: Any, length: int,
                 local: Any = None) -> None:
        super().__init__(model, g, history, state, length, local)
        lib, why = _library()
        if lib is None:
            raise RuntimeError(f"the SampleRNN kernel is unavailable: {why}")
        self._lib, self._width, self._keep = lib, int(lib.srnn_block()), []
        n, levels = self.buf.shape[0], self.w_out.shape[1]
        tiers = [self._tier(tier, size, n) for tier, size in zip(self.tiers, self.sizes)]
        self._tiers_c = (TierC * len(tiers))(*tiers)
        self._logits = np.zeros((n, levels), np.float32)
        self._struct = SrnnC(**self._mlp_fields(n), **self._scratch(n, levels),
                             n=n, n_tiers=len(tiers), ctx=self.ctx, levels=levels,
                             inputs=self.inputs, stride=self.buf.shape[1],
                             scale=float(np.float32(self.scale)), temperature=1.0,
                             sizes=self._ptr(np.asarray(self.sizes, np.int64)),
                             tiers=self._tiers_c, logits=self._ptr(self._logits))

    def _ptr(self, a: np.ndarray | None) -> int | None:
        if a is not None:
            self._keep.append(a)
        return pointer(a)

    def _own(self, a: Any) -> int | None:
        """A float32 copy of ``a`` (None: NULL), kept alive: the kernel may write to it."""
        return None if a is None else self._ptr(_f32(a))

    def _panels(self, w: np.ndarray | None) -> int | None:
        """[R, N] or [M, R, N] row-major -> the kernel's panel layout, kept alive."""
        if w is None:
            return None
        w = np.asarray(w, np.float32)
        packed = panels(w[None] if w.ndim == 2 else w, self._width)
        return self._ptr(packed.reshape(w.shape))

    def _tier(self, tier: Any, size: int, n: int) -> TierC:
        h_dim, layers = tier.w_in.shape[1], tier.layers
        tier.h = [_f32(s) for s in tier.h]  # owned copies: the kernel updates them in place
        tier.vec = np.zeros((n, tier.ratio * tier.out_dim), np.float32)
        g_bias = None if tier.g_bias is None else np.broadcast_to(tier.g_bias, (n, h_dim))
        return TierC(
            frame=size, loc_in=0 if tier.w_loc is None else tier.w_loc.shape[0], hid=h_dim,
            layers=len(layers), lstm=int(tier.lstm), ratio=tier.ratio, out_dim=tier.out_dim,
            w_in=self._panels(tier.w_in), b_in=self._own(tier.b_in),
            w_loc=self._panels(tier.w_loc),
            w_ih=self._panels(np.stack([lay[0] for lay in layers])),
            w_hh=self._panels(np.stack([lay[1] for lay in layers])),
            b_ih=self._own(np.stack([lay[2] for lay in layers])),
            b_hh=self._own(np.stack([lay[3] for lay in layers])),
            w_up=self._panels(tier.w_up), b_up=self._own(tier.b_up),
            g_bias=self._own(g_bias), h=self._ptr(tier.h[0]),
            c=self._ptr(tier.h[1] if tier.lstm else None), vec=self._ptr(tier.vec))

    def _mlp_fields(self, n: int) -> dict[str, Any]:
        m = self.table.shape[1]
        hidden = self.hidden
        local = None if self.local is None else _f32(self.local)
        return dict(
            mlp=m, n_hidden=len(hidden), table=self._own(self.table),
            mlp_bias=self._own(np.broadcast_to(self.mlp_bias, (n, m))),
            w_mloc=self._panels(self.w_loc),
            w_hid=self._panels(np.stack([w for w, _ in hidden]) if hidden else None),
            b_hid=self._own(np.stack([b for _, b in hidden]) if hidden else None),
            w_out=self._panels(self.w_out), b_out=self._own(self.b_out),
            loc_ch=0 if local is None else local.shape[2],
            local_len=0 if local is None else local.shape[1], local=self._ptr(local))

    def _scratch(self, n: int, levels: int) -> dict[str, Any]:
        h_max = max(t.w_in.shape[1] for t in self.tiers)
        m = self.table.shape[1]
        shapes = {"x": (n, h_max), "gi": (n, 4 * h_max), "gh": (n, 4 * h_max),
                  "frame": (n, max(self.sizes)), "a": (n, m), "b": (n, m), "e": (levels,)}
        return {k: self._ptr(np.zeros(shape, np.float32)) for k, shape in shapes.items()}

    def logits(self) -> np.ndarray:
        """The next sample's logits [n, levels] (every tier whose frame starts here steps)."""
        self._lib.srnn_run(ctypes.byref(self._struct), self.buf.ctypes.data, self.t, 1, None)
        return self._logits.copy()

    def run(self, u: np.ndarray, temperature: float) -> None:
        """Draw ``len(u)`` samples with uniforms ``u`` [steps, n] and push them."""
        u = np.ascontiguousarray(u, np.float32)
        if u.ndim != 2 or u.shape[1] != self.buf.shape[0]:
            raise ValueError(f"uniforms of shape {u.shape}; expected [steps, "
                             f"{self.buf.shape[0]}]")
        if self.t + u.shape[0] > self.buf.shape[1] - self.ctx:
            raise ValueError(f"{u.shape[0]} more samples overrun the {self.buf.shape[1] - self.ctx}"
                             " this stepper was made for")
        self._struct.temperature = float(np.float32(temperature))
        self._lib.srnn_run(ctypes.byref(self._struct), self.buf.ctypes.data, self.t,
                           u.shape[0], u.ctypes.data)
        self.t += u.shape[0]

    def draw(self, u: np.ndarray, temperature: float) -> np.ndarray:
        """One sample's codes [n] from uniforms ``u`` [n], pushed."""
        self.run(np.asarray(u, np.float32)[None], temperature)
        return self.buf[:, self.ctx + self.t - 1]


#: Samples per kernel call between progress updates (~20-60 ms of work at batch 1).
CHUNK = 2048


def _rows(x: Any, lo: int, hi: int) -> Any:
    """Streams lo:hi of a per-stream tensor (None stays None)."""
    return None if x is None else x[lo:hi]


def _state_rows(state: Any, lo: int, hi: int) -> Any:
    """Streams lo:hi of a tier state list ([layers, n, H] tensors, or (h, c) pairs)."""
    if state is None:
        return None
    return [None if s is None else (tuple(x[:, lo:hi] for x in s) if isinstance(s, tuple)
                                    else s[:, lo:hi]) for s in state]


def sample_codes(model: Any, g: Any, history: Any, state: Any, length: int, local: Any,
                 u: np.ndarray, temperature: float, threads: int,
                 advance: Any = None) -> np.ndarray:
    """Codes [n, length] drawn on the CPU with uniforms ``u`` [length, n]: the C kernel with
    the streams split into up to ``threads`` groups run side by side (ctypes releases the
    GIL; streams are independent, so the codes are those of one group), or the numpy stepper
    where the kernel is unavailable. ``advance(k)`` is told of every ``k`` samples done."""
    from concurrent.futures import ThreadPoolExecutor

    from waveloom.models.samplernn_stepper import one_blas_thread

    n = history.shape[0]
    if unavailable() is not None:
        numpy_stepper = NumpyStepper(model, g, history, state, length, local)
        with one_blas_thread():
            for t in range(length):
                numpy_stepper.draw(u[t], temperature)
                if advance is not None:
                    advance(1)
        return numpy_stepper.codes().copy()
    bounds = np.linspace(0, n, min(n, max(1, threads)) + 1).astype(int)
    steppers = [CStepper(model, _rows(g, lo, hi), history[lo:hi], _state_rows(state, lo, hi),
                         length, _rows(local, lo, hi)) for lo, hi in zip(bounds, bounds[1:])]
    with ThreadPoolExecutor(len(steppers)) as pool:
        for t in range(0, length, CHUNK):
            c = min(CHUNK, length - t)
            part = u[t : t + c]
            list(pool.map(lambda s, lo, hi, part=part: s.run(part[:, lo:hi], temperature),
                          steppers, bounds[:-1], bounds[1:]))
            if advance is not None:
                advance(c)
    return np.concatenate([s.codes() for s in steppers])
