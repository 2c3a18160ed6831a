"""The fast sampling engine: a WaveNet stack and head packed for compiled kernels.

:class:`FastWaveNet` reads the weights of a :class:`~waveloom.nn.wavenet.WaveNetStack` and its
head (the plain module attributes listed by ``describe()``), packs them into the layout of
:mod:`waveloom.sampling.numba_kernels` and drives those kernels chunk by chunk. It does what
:func:`~waveloom.sampling.incremental.sample_incremental` does -- same priming, same
conditioning, same pre-drawn uniforms, same inverse-CDF draws -- so for one seed both engines
give the same codes, except where a uniform lands within float rounding (~1e-6) of a CDF
boundary (see ``tests/test_sampling_fast.py`` for how that is checked).

What it does differently, and why:

* the history is primed by ONE parallel torch pass (forward pre-hooks catch every layer's
  input), which is exact and far cheaper than stepping through a long prefix;
* local conditioning is projected for a chunk of samples at a time with one product (as the
  reference does), and the kernel adds the rows;
* the loop over samples runs inside the kernel: Python is entered once per chunk (for the
  progress bar, Ctrl-C and the next local-conditioning chunk), never per sample;
* ``weights='int8'`` stores every streamed matrix as int8 with a float32 scale per output
  column (symmetric, round to nearest), quartering the weight traffic that bounds big models
  at batch 1; ``weights='float16'`` (C backend only) halves it with no scales, which on the
  shipped small model keeps the weights in L2 beside the rings. On the C backend priming runs
  on the kernel with the same weights (numba primes with a float32 torch pass). The accuracy
  cost is measured by ``benchmarks/sampling.py`` (max logit error, code agreement).

Backends (``backend=``): ``'c'`` is ``wavenet_step.c``, built once per machine with the local C
compiler (:mod:`waveloom.sampling.cbuild`); ``'numba'`` is :mod:`waveloom.sampling.numba_kernels`.
One packing routine serves both (the C kernel gets each matrix in its panel layout); they give
the same results to float rounding. ``'auto'`` takes C when it builds -- it is the faster of
the two, 1.5-2x at batch 1 (BENCHMARKS.md) -- and numba otherwise.

Threads: numba's thread count (``numba.set_num_threads``, or ``--threads``) picks the driver:
one thread -> serial; several threads and several streams -> streams split into independent
groups, one per thread (C: Python threads around GIL-free kernel calls; numba: ``prange``);
several threads and one stream of a large model -> each layer's output columns split across
threads (numba backend only); several threads and one stream on the C backend -> a two-thread
pipeline (``'pipe'``): one thread runs every layer's conv, gate and residual, the other
follows it layer by layer with the skip products, the end stack and the draw (the same sums
in the same order, so the same audio as one thread). It needs both cores: when another
process holds one, it is slower than one thread, so the engine times both on its chunks and
runs the faster (:mod:`~waveloom.sampling.driver_race`).
"""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from waveloom.errors import ConfigError
from waveloom.nn.heads import (
    CategoricalHead,
    DiscretizedGaussianHead,
    DiscretizedLogisticMixtureHead,
)
from waveloom.nn.wavenet import WaveNetStack
from waveloom.sampling.driver_race import DriverRace, cores_look_busy
from waveloom.sampling.incremental import Samplable, _check, draw_uniforms

WEIGHT_KINDS = ("float32", "float16", "int8")
BACKENDS = ("auto", "c", "numba")
# Per-layer multiply-adds above which splitting one stream's layer across threads pays for
# the two fork/joins per layer (~10 us each): the NSynth decoder's 1.5 M does, 32-channel
# layers (4 k) do not.
CHANNEL_PARALLEL_MIN_MACS = 1 << 18
CHUNK_WORK = 1 << 30  # multiply-adds per kernel call (~0.05-0.2 s): progress + Ctrl-C
CHUNK_LOCAL_FLOATS = 1 << 23  # cap on one chunk of local-conditioning rows (32 MB)
# A priming pass below this many multiply-adds (~0.1 s on one core) runs on one torch thread:
# the small model's 4 x 1024-sample prime took 0.19 s on one thread and 2-11 s on two on a
# loaded 2-core machine (every op of an OpenMP region waits for a time slice of each thread).
PRIME_ONE_THREAD_MACS = 1 << 31
# Local features up to this many are projected inside the C kernel (L x 2D per layer and
# step), not precomputed as rows of every layer's 2D terms: the shipped note models' 6
# features made 18 x 64 floats per sample, ~23 MB per chunk read back from memory, and the
# product alone cost a tenth of the pipeline's loop. A mel's 80 stay rows (80 x 2D per layer
# would double a 32-channel layer's work).
KERNEL_LOCAL_MAX = 16


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block on at most ``threads`` torch threads (None: as set), then restore.

    The fast engine's own torch work between kernel calls (a chunk's local-conditioning
    product, a small priming pass) runs on one: with two, the OpenMP worker spins after each
    product on the core a kernel thread needs (the loop ran at 0.75x the CPU efficiency), and
    on a loaded machine each parallel region waits for a time slice.
    """
    before = torch.get_num_threads()
    if threads is None or threads >= before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def numba_threads() -> int:
    """numba's thread count, without letting numba's first call change torch's.

    numba starts its OpenMP pool on first use, which resets the process-wide OpenMP thread
    count that torch reads; torch's setting is put back. Importing numba here also applies a
    ``--threads`` given before it was loaded (:func:`waveloom.device.set_threads`).
    """
    import numba

    from waveloom.device import pending_numba_threads

    before = torch.get_num_threads()
    pending = pending_numba_threads()
    if pending is not None:
        numba.set_num_threads(min(pending, numba.config.NUMBA_NUM_THREADS))
    threads = numba.get_num_threads()
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)
    return threads


def engine_threads() -> int:
    """Threads the fast engine may use: numba's count once numba is loaded (tests and the
    numba backend set it there), else ``--threads`` if given, else the cores this process may
    run on. The C backend never imports numba (its import is ~0.3 s of start-up)."""
    if "numba" in sys.modules:
        return numba_threads()
    from waveloom.device import chosen_threads, cpu_cores

    return chosen_threads() or cpu_cores()


def numba_status() -> str | None:
    """None when numba imports; otherwise why the fast engine is unavailable."""
    try:
        import numba  # noqa: F401
    except Exception as err:  # ImportError, or a broken llvmlite
        return f"numba does not import ({type(err).__name__}: {err})"
    return None


def unsupported_reason(model: Any) -> str | None:
    """None when :class:`FastWaveNet` can run ``model``; otherwise a one-line reason."""
    stack, head = getattr(model, "stack", None), getattr(model, "head", None)
    if not isinstance(stack, WaveNetStack):
        return f"{type(model).__name__} has no WaveNetStack 'stack'"
    return _unsupported(stack, head)


def _unsupported(stack: WaveNetStack, head: Any) -> str | None:
    if not isinstance(stack, WaveNetStack):
        return f"{type(stack).__name__} is not a WaveNetStack"
    if type(head) not in (CategoricalHead, DiscretizedLogisticMixtureHead,
                          DiscretizedGaussianHead):
        return f"head {type(head).__name__} is not categorical, logistic_mixture or gaussian"
    blocks = list(stack.blocks)
    if any(b.res is None for b in blocks[:-1]):
        return "only the last residual block may lack its residual 1x1"
    return None if _c_runs(stack) else numba_status()


def _c_runs(stack: WaveNetStack) -> bool:
    """Whether the C backend can run ``stack`` (then numba is not needed)."""
    from waveloom.sampling import cbuild

    return cbuild.load()[0] is not None and stack.input_conv.kernel_size[0] <= cbuild.MAX_KERNEL


def _quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output column of each matrix ``w`` [M, in, out]: ``w ~ q * scale``
    with ``scale = max|column| / 127`` (round to nearest) -> (q [M, in, out], scale [M, out]).
    """
    amax = np.abs(w).max(axis=1, keepdims=True)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return np.ascontiguousarray(q), np.ascontiguousarray(scale[:, 0])


def _f32(t: Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())


@dataclass
class _Prepared:
    """The batch-independent part of a packed model."""

    net: Any  # numba_kernels.Net
    local_w: Tensor | None  # [L, n * 2D] step form (gate half halved), float32 CPU
    conv_bias: Tensor  # [n, 2D] float32 CPU
    global_w: Tensor | None  # [n, 2D, G] float32 CPU
    # local_w as [n, L, 2D] in the C kernel's panels when it projects the features itself
    kernel_local_w: np.ndarray | None = None


class FastWaveNet:
    """A WaveNet stack + head packed for :mod:`waveloom.sampling.numba_kernels`.

    Usage (the model's sampler does all of this)::

        eng = FastWaveNet(model.stack, model.head)         # or FastWaveNet.for_model(model)
        eng.reset(batch, g)                                # zero caches, fold g into biases
        params = eng.prime(prefix_codes, prefix_local)     # one torch pass over the history
        codes = eng.generate(length, uniforms, local=..., local_offset=...)

    plus :meth:`step` (one compiled call per sample) and :meth:`teacher_force` (feed given
    codes, return every step's parameters) for tests and scoring. Packed weights live on the
    CPU whatever the model's device; results come back as numpy arrays.
    """

    def __init__(
        self,
        stack: WaveNetStack,
        head: nn.Module,
        weights: str = "float32",
        backend: str = "auto",
    ) -> None:
        if weights not in WEIGHT_KINDS:
            raise ValueError(f"weights={weights!r}: use one of {', '.join(WEIGHT_KINDS)}")
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: use one of {', '.join(BACKENDS)}")
        reason = _unsupported(stack, head)
        if reason is not None:
            raise ValueError(f"the fast engine cannot run this model: {reason}")
        self.stack, self.head, self.weights = stack, head, weights
        self.info = stack.describe()
        self.backend = self._pick_backend(backend, self.info["kernel_size"])
        if weights == "float16" and self.backend != "c":
            raise ConfigError("--weights float16 runs on the C kernel only, which did not "
                              "build here (numba has no half loads); use float32 or int8")
        self.prep = self._pack(stack, head, weights, self.backend)
        self.state: Any = None
        self.g: Tensor | None = None
        self._c_net: Any = None
        self._c_state: Any = None
        self._in_codes = np.zeros(0, np.int32)
        self._loc_bufs: list[Tensor | None] = [None, None]  # two: one filled, one read
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        # pipeline or one thread, by measured speed (a busy machine starts on one thread)
        self.race = DriverRace(("pipe", "serial"), busy=cores_look_busy(engine_threads()))

    @staticmethod
    def _pick_backend(backend: str, kernel_size: int) -> str:
        if backend == "numba":
            reason = numba_status()
            if reason is not None:
                raise ValueError(f"the numba backend is unavailable: {reason}")
            return backend
        from waveloom.sampling import cbuild

        lib, why = cbuild.load()
        if lib is None or kernel_size > cbuild.MAX_KERNEL:
            why = why or f"kernel_size > {cbuild.MAX_KERNEL}"
            if backend == "c":
                raise ValueError(f"the C backend is unavailable: {why}")
            return "numba"
        return "c"

    # ------------------------------------------------------------------ packing

    @staticmethod
    @torch.no_grad()
    def _pack(stack: WaveNetStack, head: nn.Module, weights: str, backend: str) -> _Prepared:
        """Read the stack's weights into the kernels' layout (module docstring of
        :mod:`~waveloom.sampling.numba_kernels`); the C backend gets every matrix in its
        panel layout (:func:`~waveloom.sampling.cbuild.panels`)."""
        from waveloom.sampling import layout

        n, k = len(stack.blocks), stack.input_conv.kernel_size[0]
        c, d = stack.residual_channels, stack.dilation_channels
        mats, biases = FastWaveNet._step_matrices(stack)
        # One scale per column of a layer's whole conv (all K taps), so the C kernel can sum
        # the taps in one register block before scaling; repeated per tap for numba.
        mats["conv"] = mats["conv"].reshape(n, k * c, 2 * d)
        w: dict[str, np.ndarray] = {}
        scale: dict[str, np.ndarray] = {}
        for name, m in mats.items():
            w[name], scale[name] = FastWaveNet._kernel_matrix(m, weights)
        if backend == "c":
            from waveloom.sampling.cbuild import block, panels

            width = block()
            w = {name: panels(m, width) for name, m in w.items()}
        w["conv"] = w["conv"].reshape(n * k, c, 2 * d)
        scale["conv"] = np.ascontiguousarray(np.repeat(scale["conv"], k, axis=0))
        dil = np.asarray(stack.dilations, np.int64)
        ring_len = (k - 1) * dil + 1
        ring_off = np.concatenate([[0], np.cumsum(ring_len)[:-1]]).astype(np.int64)
        net = layout.Net(
            in_table=np.ascontiguousarray(FastWaveNet._input_table(stack).float().numpy()),
            in_b=_f32(stack.input_conv.bias),
            conv_w=w["conv"], conv_s=scale["conv"],
            res_w=w["res"], res_s=scale["res"], res_b=_f32(biases["res"]),
            skip_w=w["skip"], skip_s=scale["skip"], skip_b=_f32(biases["skip"]),
            out1_w=w["out1"], out1_s=scale["out1"], out1_b=_f32(stack.out1.bias),
            out2_w=w["out2"], out2_s=scale["out2"], out2_b=_f32(stack.out2.bias),
            dil=dil, ring_off=ring_off, ring_len=ring_len.astype(np.int64),
            kernel=k, n_res=n - 1, scaled=weights == "int8",
        )  # fmt: skip
        local_w, global_w = FastWaveNet._conditioning_weights(stack)
        conv_bias = torch.stack([b.conv.bias.detach().cpu().float() for b in stack.blocks])
        kernel_local_w = None
        if backend == "c" and local_w is not None and local_w.shape[0] <= KERNEL_LOCAL_MAX:
            from waveloom.sampling.cbuild import block, panels

            per_layer = local_w.reshape(local_w.shape[0], n, 2 * d).permute(1, 0, 2)
            kernel_local_w = panels(per_layer.contiguous().numpy(), block())
        return _Prepared(net=net, local_w=local_w, conv_bias=conv_bias, global_w=global_w,
                         kernel_local_w=kernel_local_w)

    @staticmethod
    def _input_table(stack: WaveNetStack) -> Tensor:
        """The input conv as a lookup table [K, V + 1, C] (float64): row v of tap k is what
        input code v adds through that tap (the embedding folded into the conv, or the conv's
        column v for one-hot input); the extra last row, zeros, is the padding code."""
        k = stack.input_conv.kernel_size[0]
        w_in = stack.input_conv.weight.detach().double().cpu()  # [C, C_in, K]
        inputs = stack.code_inputs()
        if inputs is not None:  # an embedding, or scalar input's levels [V, 1]
            emb = inputs.detach().double().cpu()  # [V, C_in]
            table = torch.einsum("vi,cik->kvc", emb, w_in)
        else:
            table = w_in.permute(2, 1, 0)  # one-hot input: tap k of code v is column v
        return torch.cat([table, table.new_zeros(k, 1, table.shape[-1])], 1)  # pad row

    @staticmethod
    def _step_matrices(stack: WaveNetStack) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The stack's weights as float32 CPU matrices [M, in, out] in the step form of
        :class:`~waveloom.nn.wavenet.BlockStep` (gate columns, residual and skip weights
        halved): 'conv' [n*K, C, 2D] (matrix l*K + k is tap k of layer l), 'res' [n, D, C]
        (zeros for the last block, which has none), 'skip' [n, D, S], 'out1', 'out2' [1, in,
        out]; and the biases 'res' [n, C] and 'skip' [S] (every block's, summed)."""
        blocks = list(stack.blocks)
        n, k = len(blocks), stack.input_conv.kernel_size[0]
        c, d = stack.residual_channels, stack.dilation_channels
        conv = torch.stack([b.conv.weight.detach().cpu().float() for b in blocks])  # [n,2D,C,K]
        conv = conv.permute(0, 3, 2, 1).reshape(n * k, c, 2 * d)
        conv = conv.contiguous()  # matrix l*K + k: [C, 2D], tap k of layer l
        conv[..., d:] *= 0.5
        res = torch.stack(
            [0.5 * b.res.weight.detach()[:, :, 0].t().cpu().float() for b in blocks[:-1]]
            + [torch.zeros(d, c)]
        )
        res_b = torch.stack([b.res.bias.detach().cpu().float() for b in blocks[:-1]]
                            + [torch.zeros(c)])
        skip = torch.stack(
            [0.5 * b.skip.weight.detach()[:, :, 0].t().cpu().float() for b in blocks]
        )
        skip_b = torch.stack([b.skip.bias.detach().cpu().float() for b in blocks]).sum(0)
        out1 = stack.out1.weight.detach()[:, :, 0].t().cpu().float().unsqueeze(0)
        out2 = stack.out2.weight.detach()[:, :, 0].t().cpu().float().unsqueeze(0)
        mats = {"conv": conv, "res": res, "skip": skip, "out1": out1, "out2": out2}
        return mats, {"res": res_b, "skip": skip_b}

    @staticmethod
    def _kernel_matrix(w: Tensor, weights: str) -> tuple[np.ndarray, np.ndarray]:
        """[M, in, out] matrices -> (weights, per-column scales [M, out]): float32 or float16
        (rounded to nearest) with unit scales, or int8 per output column
        (:func:`_quantize_columns`)."""
        arr = np.ascontiguousarray(w.numpy().astype(np.float32))
        if weights == "int8":
            return _quantize_columns(arr)
        ones = np.ones((arr.shape[0], arr.shape[2]), np.float32)
        return (arr.astype(np.float16) if weights == "float16" else arr), ones

    @staticmethod
    def _conditioning_weights(stack: WaveNetStack) -> tuple[Tensor | None, Tensor | None]:
        """(local [L, n * 2D] in step form (gate half halved), global [n, 2D, G]) projection
        weights, float32 CPU; None where the stack has no such conditioning."""
        blocks = list(stack.blocks)
        n, d = len(blocks), stack.dilation_channels
        local_w = None
        if stack.local_channels:
            w = torch.stack([b.local_proj.weight.detach()[:, :, 0].cpu().float() for b in blocks])
            w = w.clone()  # [n, 2D, L]
            w[:, d:] *= 0.5
            local_w = w.permute(2, 0, 1).reshape(stack.local_channels, n * 2 * d).contiguous()
        global_w = None
        if stack.global_channels:
            global_w = torch.stack([b.global_proj.weight.detach().cpu().float() for b in blocks])
        return local_w, global_w

    _cache: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, FastWaveNet]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def for_model(
        cls, model: Samplable, weights: str = "float32", backend: str = "auto"
    ) -> FastWaveNet:
        """The packed engine of ``model``, reused while its weights are unchanged.

        The key is every parameter's identity and in-place version counter, so an optimiser
        step or ``load_state_dict`` invalidates it and the next call repacks.
        """
        params = list(model.stack.parameters())
        key = (weights, backend, tuple((id(p), p._version) for p in params))
        hit = cls._cache.get(model.stack)
        if hit is not None and hit[0] == key:
            return hit[1]
        engine = cls(model.stack, model.head, weights, backend)
        cls._cache[model.stack] = (key, engine)
        return engine

    # ------------------------------------------------------------------ state

    @property
    def macs_per_step(self) -> int:
        """Multiply-adds of one sample of one stream (the products; lookups excluded)."""
        net = self.prep.net
        return int(
            net.conv_w.size + net.res_w[: net.n_res].size + net.skip_w.size
            + net.out1_w.size + net.out2_w.size
        )  # fmt: skip

    @torch.no_grad()
    def reset(self, batch: int, g: Tensor | None = None) -> None:
        """Zeroed caches for ``batch`` streams (== the zero padding) and ``g`` folded in."""
        from waveloom.sampling import layout

        if batch <= 0:
            raise ValueError(f"batch={batch} must be positive")
        net, prep = self.prep.net, self.prep
        if prep.global_w is not None:
            if g is None:
                raise ValueError("this stack is globally conditioned: pass g [B, G]")
            g = g.detach().to("cpu", torch.float32)
            bias = prep.conv_bias.unsqueeze(0) + torch.einsum("bg,nog->bno", g, prep.global_w)
        else:
            bias = prep.conv_bias.unsqueeze(0).expand(batch, -1, -1)
        bias = bias.clone()
        d = self.info["dilation_channels"]
        bias[..., d:] *= 0.5
        n = len(self.stack.blocks)
        c = self.info["residual_channels"]
        p = net.out2_w.shape[2]
        width = max(2 * d, net.skip_w.shape[2] + c, net.out1_w.shape[2], p)
        f32 = np.float32
        bits = np.zeros((batch, p), np.int32)
        self.state = layout.State(
            ring=np.zeros((batch * int(net.ring_len.sum()), c), f32),
            codes=np.full((batch, net.kernel), self._pad_code, np.int32),
            clock=np.zeros(1, np.int64),
            bias=np.ascontiguousarray(bias.reshape(batch * n, 2 * d).numpy()),
            x=np.zeros((batch, c), f32),
            h=np.zeros((batch, 2 * d), f32),
            z2=np.zeros((batch, d), f32),
            skip=np.zeros((batch, net.skip_w.shape[2]), f32),
            hid=np.zeros((batch, net.out1_w.shape[2]), f32),
            params=np.zeros((batch, p), f32),
            probs=np.zeros((batch, p), f32),
            bits=bits,
            pow2=bits.view(f32),
            acc=np.zeros((batch, width), f32),
            nz=np.zeros((batch, max(net.skip_w.shape[2], net.out1_w.shape[2])), np.int64),
        )
        self.g = None if g is None else g.detach().to("cpu", torch.float32)
        if self.backend == "c":
            from waveloom.sampling import cbuild

            if self._c_net is None:
                self._c_net = cbuild.net_struct(net, int(net.ring_len.sum()),
                                                self.prep.kernel_local_w)
            self._c_state = cbuild.state_struct(self.state)
            self._in_codes = np.zeros(batch, np.int32)  # per-stream scratch of the C kernel

    def _state(self) -> Any:
        if self.state is None:
            raise RuntimeError("call reset(batch, g) first")
        return self.state

    @property
    def batch(self) -> int:
        return self._state().x.shape[0]

    @torch.no_grad()
    def prime(self, codes: Tensor, local: Tensor | None = None) -> np.ndarray:
        """Feed a history ``codes`` [B, T] (+ ``local`` [B, L, T]) in one torch pass.

        Leaves every ring as T calls of :meth:`step` would and returns the last parameters
        [B, P] (also kept as the state's current parameters). Like ``WaveNetStack.prime``,
        only the last receptive field of codes is used.
        """
        st, net, stack = self._state(), self.prep.net, self.stack
        if codes.dim() != 2 or codes.shape[0] != self.batch or codes.shape[1] < 1:
            raise ValueError(f"codes has shape {tuple(codes.shape)}; expected [{self.batch}, T]")
        rf = stack.receptive_field
        if codes.shape[-1] > rf:
            codes = codes[..., -rf:]
            local = None if local is None else local[..., -rf:]
        if self.backend == "c":
            return self._prime_on_kernel(codes, local)
        device = stack.out2.weight.device
        g = None if self.g is None else self.g.to(device, stack.out2.weight.dtype)
        small = codes.numel() * self.macs_per_step < PRIME_ONE_THREAD_MACS
        with torch_threads(1 if small and device.type == "cpu" else None):
            out, kept = stack.forward_keeping_history(
                codes.to(device), g, None if local is None else local.to(device),
                [0] + [int(n) for n in net.ring_len],
            )
        t = codes.shape[-1]
        st.ring.fill(0.0)
        ring = st.ring.reshape(self.batch, -1, st.ring.shape[1])  # a view: [B, rows, C]
        for l, x in enumerate(kept[1:]):
            assert x is not None
            r, off = int(net.ring_len[l]), int(net.ring_off[l])
            past = torch.arange(max(0, t - r + 1), t)
            if len(past):
                rows = _f32(x[..., past - (t - x.shape[-1])].permute(0, 2, 1))  # [B, len, C]
                ring[:, off + (past.numpy() % r)] = rows
        k = net.kernel
        pad = self._pad_code
        cpu_codes = codes.detach().cpu().numpy()
        for j in range(1, k):
            st.codes[:, (t - j) % k] = cpu_codes[:, t - j] if t - j >= 0 else pad
        st.clock[0] = t
        st.params[:] = _f32(out[..., -1])
        return st.params.copy()

    @property
    def _pad_code(self) -> int:
        """The input table's last row (zeros): the code of the silence before time 0."""
        return int(self.prep.net.in_table.shape[1] - 1)

    def _prime_on_kernel(self, codes: Tensor, local: Tensor | None) -> np.ndarray:
        """:meth:`prime` as T teacher-forced kernel steps from zeroed rings (its definition).

        On the C kernel this is ~1024 steps per stream (~10 ms), where the torch pass paid
        ~0.25 s of first-call overhead in a fresh process (the whole `generate` command's
        start-up, issue 21).
        """
        st = self._state()
        st.ring.fill(0.0)
        st.codes.fill(self._pad_code)
        st.clock[0] = 0
        params, _ = self.teacher_force(codes, local)
        st.params[:] = params[-1]
        return st.params.copy()

    # ------------------------------------------------------------------ running

    def local_rows(self, local: Tensor, steps: int | None = None, slot: int = 0) -> np.ndarray:
        """Local features [B, L, T] -> what the kernel reads per step: per-step layer biases
        [steps * B * n, 2D] (row ``(t*B + b)*n + l`` is layer ``l``'s term for stream ``b``
        at step ``t``), or, where the C kernel projects them itself (``KERNEL_LOCAL_MAX``),
        the features [steps * B, L] (row ``t*B + b``).

        Steps past ``T`` (only the final draw of a generation, which feeds nothing) are
        zeros. One product per chunk into a reused buffer (``slot`` 0 or 1: :meth:`generate`
        fills one while the kernel reads the other): fresh multi-MB arrays per chunk would
        cost more in page faults than the product.
        """
        if self.prep.local_w is None:
            raise ValueError("this stack has no local conditioning")
        b, n_l, avail = local.shape
        steps = avail if steps is None else steps
        width = self._local_width()
        kernel_side = self._kernel_local
        per_step = b if kernel_side else b * len(self.stack.blocks)  # rows per step
        need = steps * per_step
        buf = self._loc_bufs[slot]
        if buf is None or buf.shape[0] < need or buf.shape[1] != width:
            buf = self._loc_bufs[slot] = torch.empty(need, width)
        out = buf[:need]
        used = min(avail, steps)
        feats = local[..., :used].detach().to("cpu", torch.float32).permute(2, 0, 1)
        if kernel_side:
            out[: used * b].copy_(feats.reshape(used * b, n_l))
        else:
            torch.mm(feats.reshape(used * b, n_l), self.prep.local_w,
                     out=out[: used * per_step].view(used * b, -1))
        out[used * per_step :] = 0.0
        return out.numpy()

    @property
    def _kernel_local(self) -> bool:
        """Whether the C kernel projects the local features itself (``KERNEL_LOCAL_MAX``)."""
        return self.prep.kernel_local_w is not None

    def _local_width(self) -> int:
        """Floats of one local row (:meth:`local_rows`): features L, or one layer's 2D."""
        if self._kernel_local:
            return int(self.prep.kernel_local_w.shape[1])
        return 2 * self.info["dilation_channels"]

    def _head(self, temperature: float) -> Any:
        from waveloom.sampling import layout

        head = self.head
        if isinstance(head, CategoricalHead):
            levels, kind, comps, lsm = head.levels, layout.CATEGORICAL, 0, 0.0
        else:
            assert isinstance(head, DiscretizedLogisticMixtureHead)
            gaussian = isinstance(head, DiscretizedGaussianHead)
            levels = head.levels
            kind = layout.GAUSSIAN if gaussian else layout.LOGISTIC_MIXTURE
            comps, lsm = head.components, head.log_scale_min
        input_map = head.input_codes(torch.arange(levels)).to(torch.int32).numpy()
        return layout.Head(
            kind=kind,
            temperature=np.float32(temperature),
            tempered=temperature != 1.0,
            log_temperature=np.float32(math.log(temperature)),
            components=comps,
            levels=levels,
            log_scale_min=np.float32(lsm),
            input_map=np.ascontiguousarray(input_map),
        )

    def _kernel_uniforms(self, uniforms: Tensor | np.ndarray) -> np.ndarray:
        """The draws' uniforms [T, B, U] as the kernels read them: as given, except that a
        Gaussian head's become ``sqrt(2) erfinv(2u - 1)`` (float32 torch, exactly the
        reference head's deviate), so the kernels need no inverse normal CDF."""
        u = torch.as_tensor(uniforms).to("cpu", torch.float32)
        if isinstance(self.head, DiscretizedGaussianHead):
            u = math.sqrt(2.0) * torch.erfinv(2.0 * u.clamp(1e-7, 1.0 - 1e-7) - 1.0)
        return np.ascontiguousarray(u.numpy())

    def _chunk(self, has_local: bool) -> int:
        b = self.batch
        steps = CHUNK_WORK // max(1, b * self.macs_per_step)
        if has_local:
            rows = 1 if self._kernel_local else len(self.stack.blocks)
            steps = min(steps, CHUNK_LOCAL_FLOATS // (b * rows * self._local_width()))
        return int(min(8192, max(16, steps)))

    def driver(self) -> str:
        """Which kernel a chunk runs on now: 'serial', 'batch', 'channels' or 'pipe' (see
        module)."""
        threads, net = engine_threads(), self.prep.net
        if threads > 1 and self.batch > 1:
            return "batch"
        if threads > 1 and self.backend == "c":
            return "pipe"
        big = net.conv_w[0].size * net.kernel >= CHANNEL_PARALLEL_MIN_MACS
        if threads > 1 and big and self.backend == "numba":
            return "channels"
        return "serial"

    def _launch(self, head: Any, steps: int, feed_first: bool, forced: np.ndarray,
                uniforms: np.ndarray, loc: np.ndarray, codes_out: np.ndarray,
                params_out: np.ndarray, final: bool) -> None:
        """Run one chunk of ``steps`` samples on :meth:`driver`'s kernel."""
        if self.backend == "c":
            self._launch_c(head, steps, feed_first, forced, uniforms, loc, codes_out,
                           params_out, final)
            return
        from waveloom.sampling import numba_kernels as nk

        net, st = self.prep.net, self._state()
        kind = self.driver()
        args = (steps, feed_first, forced, uniforms, loc, loc.shape[0] > 0, codes_out,
                params_out, params_out.shape[0] > 0, final)
        if kind == "batch":
            nk.run_batch(net, head, st, min(numba_threads(), self.batch), *args)
        elif kind == "channels":
            nk.run_channels(net, head, st, numba_threads(), *args)
        else:
            nk.run_serial(net, head, st, *args)

    def _launch_c(self, head: Any, steps: int, feed_first: bool, forced: np.ndarray,
                  uniforms: np.ndarray, loc: np.ndarray, codes_out: np.ndarray,
                  params_out: np.ndarray, final: bool) -> None:
        """:meth:`_launch` on the C kernel: one call per group of streams, the groups on
        threads (ctypes drops the GIL for the call, so they run in parallel)."""
        import ctypes

        from waveloom.sampling import cbuild

        lib, _ = cbuild.load()
        st, batch = self._state(), self.batch
        hc = cbuild.head_struct(head)
        t0 = int(st.clock[0])
        ptrs = (
            cbuild.ptr_or_null(forced), cbuild.ptr_or_null(uniforms), uniforms.shape[2],
            cbuild.ptr_or_null(loc), cbuild.ptr_or_null(codes_out),
            cbuild.ptr_or_null(params_out), int(final), self._in_codes.ctypes.data,
        )  # fmt: skip
        net_p, head_p, st_p = (ctypes.byref(v) for v in (self._c_net, hc, self._c_state))

        def run(b0: int, b1: int) -> int:
            return lib.wl_run(net_p, head_p, st_p, b0, b1, t0, steps, int(feed_first), *ptrs)

        if self.driver() == "pipe":  # unless the serial kernel is faster now (driver_race)
            fed = self.race.run({
                "pipe": lambda: self._launch_pipe(lib, head_p, steps, feed_first, forced,
                                                  uniforms, loc, codes_out, params_out, final),
                "serial": lambda: run(0, batch),
            }, steps)  # fmt: skip
        elif (groups := min(engine_threads(), batch)) <= 1:
            fed = run(0, batch)
        else:
            edges = [g * batch // groups for g in range(groups + 1)]
            pool = self._threads(groups)
            jobs = [pool.submit(run, a, b) for a, b in zip(edges[:-1], edges[1:])]
            fed = [job.result() for job in jobs][0]
        st.clock[0] = t0 + fed

    def _pipelined(self) -> bool:
        """Whether the next chunk runs on the two-thread pipeline (both cores busy)."""
        return self.driver() == "pipe" and self.race.next() == "pipe"

    def _threads(self, size: int) -> ThreadPoolExecutor:
        """The engine's worker threads (kept across chunks: a chunk is ~0.1 s of work)."""
        if self._pool is None or self._pool_size != size:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool = ThreadPoolExecutor(size, thread_name_prefix="waveloom-fast")
            self._pool_size = size
        return self._pool

    def _launch_pipe(self, lib: Any, head_p: Any, steps: int, feed_first: bool,
                     forced: np.ndarray, uniforms: np.ndarray, loc: np.ndarray,
                     codes_out: np.ndarray, params_out: np.ndarray, final: bool) -> int:
        """One chunk on the two-thread pipeline (wavenet_step.c, wl_pipe_*): the front on this
        thread, the back on a worker; both drop the GIL. Returns the inputs fed."""
        import ctypes

        from waveloom.sampling import cbuild

        net, st, batch = self.prep.net, self._state(), self.batch
        z = np.zeros(net.dil.shape[0] * batch * (net.conv_w.shape[2] // 2), np.float32)
        sync = np.zeros(32 + batch, np.int64)  # counters on their own cache lines (see C)
        net_p, st_p = ctypes.byref(self._c_net), ctypes.byref(self._c_state)
        t0, ptr = int(st.clock[0]), cbuild.ptr_or_null
        back = self._threads(1).submit(
            lib.wl_pipe_back, net_p, head_p, st_p, 0, batch, steps, int(feed_first),
            ptr(uniforms), uniforms.shape[2], ptr(codes_out), ptr(params_out), int(final),
            ptr(z), ptr(sync))  # fmt: skip
        fed = lib.wl_pipe_front(net_p, st_p, 0, batch, t0, steps, int(feed_first), ptr(forced),
                                ptr(loc), int(final), self._in_codes.ctypes.data, ptr(z),
                                ptr(sync))  # fmt: skip
        back.result()
        return int(fed)

    def _empty_local(self) -> np.ndarray:
        return np.zeros((0, self._local_width()), np.float32)

    @torch.no_grad()
    def step(self, codes: Tensor | np.ndarray, local_t: np.ndarray | None = None) -> np.ndarray:
        """Feed one input code per stream ([B]); return the next parameters [B, P].

        ``local_t`` is one step of :meth:`local_rows` ([B, n, 2D] rows or [B, L] features).
        One compiled call.
        """
        st = self._state()
        forced = np.ascontiguousarray(np.asarray(codes, np.int32).reshape(self.batch, 1))
        loc = self._empty_local()
        if local_t is not None:
            loc = np.ascontiguousarray(np.asarray(local_t, np.float32).reshape(-1, loc.shape[1]))
        params = np.zeros((1, self.batch, st.params.shape[1]), np.float32)
        self._launch(self._head(1.0), 1, True, forced, np.zeros((1, self.batch, 2), np.float32),
                     loc, np.zeros((self.batch, 1), np.int32), params, final=False)
        return params[0]

    @torch.no_grad()
    def teacher_force(
        self,
        codes: Tensor,
        local: Tensor | None = None,
        uniforms: Tensor | None = None,
        temperature: float = 1.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feed ``codes`` [B, T] one at a time; return (params [T, B, P], draws [B, T]).

        ``params[t]`` is the output after input ``t`` (== ``stack(codes, g, local)[..., t]``
        from a fresh :meth:`reset`), ``draws[:, t]`` the code the head draws from it with
        ``uniforms[t]`` ([T, B, U]; zeros if None). ``local`` [B, L, T] aligns with the outputs.
        """
        st = self._state()
        b, total = codes.shape
        head = self._head(temperature)
        u_all = (
            np.full((total, b, 2), 0.5, np.float32)  # a Gaussian's deviate 0: its mean
            if uniforms is None
            else self._kernel_uniforms(uniforms)
        )
        codes_np = np.ascontiguousarray(codes.cpu().numpy().astype(np.int32))
        params = np.zeros((total, b, st.params.shape[1]), np.float32)
        draws = np.zeros((b, total), np.int32)
        chunk = self._chunk(local is not None)
        for s0 in range(0, total, chunk):
            s1 = min(total, s0 + chunk)
            loc = self._empty_local() if local is None else self.local_rows(local[..., s0:s1])
            out_p = np.zeros((s1 - s0, b, st.params.shape[1]), np.float32)
            out_c = np.zeros((b, s1 - s0), np.int32)
            forced = np.ascontiguousarray(codes_np[:, s0:s1])
            self._launch(head, s1 - s0, True, forced, u_all[s0:s1], loc, out_c, out_p, False)
            params[s0:s1], draws[:, s0:s1] = out_p, out_c
        return params, draws

    @torch.no_grad()
    def generate(
        self,
        length: int,
        uniforms: Tensor,
        temperature: float = 1.0,
        local: Tensor | None = None,
        local_offset: int = 0,
        progress: bool | Any = False,
        final: bool = True,
    ) -> np.ndarray:
        """Draw ``length`` codes per stream from the primed state -> [B, length] int32.
        ``final=False`` feeds the last code back too, so a further call continues the same
        sequence (a long output drawn segment by segment, :func:`stream_fast`). ``progress``:
        a bool, or an open tqdm bar to advance (one bar across segments).

        Sample ``t`` is drawn from the current parameters with ``uniforms[t]`` ([length, B, U])
        and fed back; the step after it reads local features ``local[..., local_offset + t]``
        ([B, L, *]; the reference sampler's timeline, where ``local_offset`` is the prefix
        length + 1).
        """
        st = self._state()
        b = self.batch
        head = self._head(temperature)
        u_all = self._kernel_uniforms(uniforms)
        out = np.zeros((b, length), np.int32)
        chunk = self._chunk(local is not None)
        empty = np.zeros((b, 0), np.int32)
        no_params = np.zeros((0, b, st.params.shape[1]), np.float32)
        own = isinstance(progress, bool)
        bar = tqdm(total=length, disable=not progress, unit="sample",
                   desc="fast sampling") if own else progress
        def rows(i: int) -> np.ndarray:  # chunk i's local terms, into buffer i % 2
            s0, s1 = i * chunk, min(length, (i + 1) * chunk)
            if local is None:
                return self._empty_local()
            hi = min(local.shape[-1], local_offset + s1)
            return self.local_rows(local[..., local_offset + s0 : hi], s1 - s0, slot=i % 2)

        n_chunks = -(-length // chunk)
        # the next chunk's local terms are computed on a second thread while the kernel (which
        # drops the GIL) runs this one: a free core hides them (a tenth of a 1-stream loop).
        # Not beside the two-thread pipeline, whose threads wait on each other: a third would
        # take a core from one of them (then they are computed between chunks).
        with (bar if own else nullcontext()), torch_threads(1), \
                ThreadPoolExecutor(1, thread_name_prefix="waveloom-local") as ahead:
            pending = None
            for i in range(n_chunks):
                loc = pending.result() if pending is not None else rows(i)
                pending = None
                if i + 1 < n_chunks and not self._pipelined():
                    pending = ahead.submit(rows, i + 1)
                s0, s1 = i * chunk, min(length, (i + 1) * chunk)
                codes = np.zeros((b, s1 - s0), np.int32)
                self._launch(head, s1 - s0, False, empty, u_all[s0:s1], loc, codes, no_params,
                             final=final and s1 == length)
                out[:, s0:s1] = codes
                bar.update(s1 - s0)
        return out


@torch.no_grad()
def sample_fast(
    model: Samplable,
    n: int,
    length: int,
    cond: dict[str, Any] | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    prime: Tensor | None = None,
    progress: bool = True,
    weights: str = "float32",
    backend: str = "auto",
) -> Tensor:
    """:func:`~waveloom.sampling.incremental.sample_incremental` on the compiled engine.

    Same arguments and result ([n, length] long codes on the model's device); ``weights``
    'int8' trades a little accuracy for a quarter of the weight traffic; ``backend`` is
    'auto', 'c' or 'numba' (see the module docstring).
    """
    _check(n, length, temperature)
    plan = model.sampling_plan(n, length, cond, prime)
    device = plan.prefix.device
    uniforms = draw_uniforms(seed, length, n, model.head.uniforms_per_step)
    engine = FastWaveNet.for_model(model, weights, backend)
    engine.reset(n, plan.g)
    p = plan.prefix.shape[-1]
    local = plan.local
    engine.prime(plan.prefix, None if local is None else local[..., 1 : p + 1])
    codes = engine.generate(
        length, uniforms, temperature, local=local, local_offset=p + 1, progress=progress
    )
    engine.state = None
    return torch.from_numpy(codes.astype(np.int64)).to(device)


def stream_fast(
    model: Samplable,
    n: int,
    length: int,
    cond: dict[str, Any] | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    prime: Tensor | None = None,
    weights: str = "float32",
    segment: int = 1 << 20,
    progress: bool = False,
) -> Iterator[Tensor]:
    """:func:`sample_fast` in pieces: yields [n, t] long codes, ``segment`` steps at a time,
    with the engine state carried and the uniforms drawn per piece from the one generator
    (``torch.rand`` on a CPU generator gives the same numbers in pieces), so the pieces put
    together are exactly :func:`sample_fast`'s codes, and memory does not grow with
    ``length`` (an hour of audio in a few hundred MB). ``progress``: one bar over the whole
    length (samples per stream)."""
    _check(n, length, temperature)
    plan = model.sampling_plan(n, length, cond, prime)
    device = plan.prefix.device
    gen = torch.Generator(device="cpu")
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    engine = FastWaveNet.for_model(model, weights, "auto")
    engine.reset(n, plan.g)
    p = plan.prefix.shape[-1]
    local = plan.local
    engine.prime(plan.prefix, None if local is None else local[..., 1 : p + 1])
    bar = tqdm(total=length, disable=not progress, unit="sample", desc="fast sampling")
    try:
        for s0 in range(0, length, segment):
            s1 = min(length, s0 + segment)
            uniforms = torch.rand(s1 - s0, n, model.head.uniforms_per_step, generator=gen)
            codes = engine.generate(s1 - s0, uniforms, temperature, local=local,
                                    local_offset=p + 1 + s0, progress=bar, final=s1 == length)
            yield torch.from_numpy(codes.astype(np.int64)).to(device)
    finally:
        bar.close()
        engine.state = None


__all__ = [
    "BACKENDS",
    "CHANNEL_PARALLEL_MIN_MACS",
    "FastWaveNet",
    "WEIGHT_KINDS",
    "numba_status",
    "sample_fast",
    "stream_fast",
    "unsupported_reason",
]
