"""The fast sampling engine: a WaveNet stack and head packed for compiled kernels.

:class:`FastWaveNet` reads the weights of a :class:`~waveloom.nn.wavenet.WaveNetStack` and its
head (the plain module attributes listed by ``describe()``), packs them into the layout of
:mod:`waveloom.sampling.numba_kernels` and drives those kernels chunk by chunk. It does what
:func:`~waveloom.sampling.incremental.sample_incremental` does -- same priming, same
conditioning, same pre-drawn uniforms, same inverse-CDF draws -- so for one seed both engines
give the same codes, except where a uniform lands within float rounding (~1e-6) of a CDF
boundary (see ``tests/test_sampling_fast.py`` for how that is checked).

What it does differently, and why:

* the history is primed on the kernel itself, teacher-forced (C backend), or by ONE parallel
  torch pass whose forward pre-hooks catch every layer's input (numba);
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

The running half (state, drivers, chunks) is :class:`~waveloom.sampling.kernel_engine.
KernelEngine`, which needs no torch; this module packs a torch model for it
(:class:`~waveloom.sampling.packed.PackedWaveNet`) and primes numba with a torch pass.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
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
from waveloom.sampling import layout
from waveloom.sampling.incremental import Samplable, _check, draw_uniforms
from waveloom.sampling.kernel_engine import (  # noqa: F401 (re-exported: the engine's knobs)
    BACKENDS,
    CHANNEL_PARALLEL_MIN_MACS,
    CHUNK_LOCAL_FLOATS,
    CHUNK_WORK,
    KERNEL_LOCAL_MAX,
    WEIGHT_KINDS,
    KernelEngine,
    engine_threads,
    numba_threads,
)
from waveloom.sampling.packed import HeadSpec, PackedWaveNet

# A priming pass below this many multiply-adds (~0.1 s on one core) runs on one torch thread:
# the small model's 4 x 1024-sample prime took 0.19 s on one thread and 2-11 s on two on a
# loaded 2-core machine (every op of an OpenMP region waits for a time slice of each thread).
PRIME_ONE_THREAD_MACS = 1 << 31


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


class FastWaveNet(KernelEngine):
    """A WaveNet stack + head packed for the compiled kernels (:class:`KernelEngine` runs it).

    Usage (the model's sampler does all of this)::

        eng = FastWaveNet(model.stack, model.head)         # or FastWaveNet.for_model(model)
        eng.reset(batch, g)                                # zero caches, fold g into biases
        params = eng.prime(prefix_codes, prefix_local)     # the history
        codes = eng.generate(length, uniforms, local=..., local_offset=...)

    plus :meth:`step` (one compiled call per sample) and :meth:`teacher_force` (feed given
    codes, return every step's parameters) for tests and scoring. Packed weights live on the
    CPU whatever the model's device; results come back as numpy arrays. ``self.prep`` is the
    :class:`~waveloom.sampling.packed.PackedWaveNet`, which ``waveloom generate`` saves so a
    later command runs it without torch.
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
        self.stack, self.head = stack, head
        self.info = stack.describe()
        chosen = self._pick_backend(backend, self.info["kernel_size"])
        if weights == "float16" and chosen != "c":
            raise ConfigError("--weights float16 runs on the C kernel only, which did not "
                              "build here (numba has no half loads); use float32 or int8")
        super().__init__(self._pack(stack, head, weights, chosen))

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
    def _pack(stack: WaveNetStack, head: nn.Module, weights: str, backend: str
              ) -> PackedWaveNet:
        """Read the stack's weights into the kernels' layout (module docstring of
        :mod:`~waveloom.sampling.numba_kernels`); the C backend gets every matrix in its
        panel layout (:func:`~waveloom.sampling.cbuild.panels`)."""
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
        return PackedWaveNet(
            net=net, conv_bias=_f32(conv_bias), global_w=None if global_w is None else
            _f32(global_w), local_w=None if local_w is None else _f32(local_w),
            head=FastWaveNet._head_spec(head), residual_channels=c, dilation_channels=d,
            receptive_field=int(stack.receptive_field), backend=backend, weights=weights,
            kernel_local_w=kernel_local_w)

    @staticmethod
    def _head_spec(head: nn.Module) -> HeadSpec:
        """The head as the kernels draw from it."""
        if isinstance(head, CategoricalHead):
            kind, comps, lsm = layout.CATEGORICAL, 0, 0.0
        else:
            assert isinstance(head, DiscretizedLogisticMixtureHead)
            gaussian = isinstance(head, DiscretizedGaussianHead)
            kind = layout.GAUSSIAN if gaussian else layout.LOGISTIC_MIXTURE
            comps, lsm = head.components, float(head.log_scale_min)
        levels = int(head.levels)
        input_map = head.input_codes(torch.arange(levels)).to(torch.int32).numpy()
        return HeadSpec(kind=kind, levels=levels, components=int(comps), log_scale_min=lsm,
                        input_map=np.ascontiguousarray(input_map))

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

    # ------------------------------------------------------------------ torch-facing

    @torch.no_grad()
    def prime(self, codes: Tensor, local: Tensor | None = None) -> np.ndarray:
        """Feed a history ``codes`` [B, T] (+ ``local`` [B, L, T]).

        Leaves every ring as T calls of :meth:`step` would and returns the last parameters
        [B, P] (also kept as the state's current parameters). Like ``WaveNetStack.prime``,
        only the last receptive field of codes is used. The C backend runs it on the kernel
        (:meth:`KernelEngine.prime`: ~1024 steps per stream, ~10 ms, where a torch pass paid
        ~0.25 s of first-call overhead in a fresh process); numba primes with ONE parallel
        torch pass whose forward pre-hooks catch every layer's input.
        """
        if self.backend == "c":
            return super().prime(codes, local)
        st, net, stack = self._state(), self.prep.net, self.stack
        codes, local = self._last_field(codes, local)
        device = stack.out2.weight.device
        g = None if self.g is None else torch.from_numpy(self.g).to(device,
                                                                   stack.out2.weight.dtype)
        small = codes.numel() * self.macs_per_step < PRIME_ONE_THREAD_MACS
        with torch_threads(1 if small and device.type == "cpu" else None):
            out, kept = stack.forward_keeping_history(
                codes.to(device), g, None if local is None else local.to(device),
                [0] + [int(n) for n in net.ring_len],
            )
        self._fill_rings(kept, codes.shape[-1])
        cpu_codes = codes.detach().cpu().numpy()
        t, k, pad = codes.shape[-1], net.kernel, self._pad_code
        for j in range(1, k):
            st.codes[:, (t - j) % k] = cpu_codes[:, t - j] if t - j >= 0 else pad
        st.clock[0] = t
        st.params[:] = _f32(out[..., -1])
        return st.params.copy()

    def _fill_rings(self, kept: list[Tensor | None], t: int) -> None:
        """Every layer's ring as ``t`` steps would leave it, from the inputs a torch pass
        kept (``kept[l + 1]``: layer l's input, its last columns)."""
        st, net = self._state(), self.prep.net
        st.ring.fill(0.0)
        ring = st.ring.reshape(self.batch, -1, st.ring.shape[1])  # a view: [B, rows, C]
        for l, x in enumerate(kept[1:]):
            assert x is not None
            r, off = int(net.ring_len[l]), int(net.ring_off[l])
            past = torch.arange(max(0, t - r + 1), t)
            if len(past):
                rows = _f32(x[..., past - (t - x.shape[-1])].permute(0, 2, 1))  # [B, len, C]
                ring[:, off + (past.numpy() % r)] = rows

    def _project(self, feats: np.ndarray, out: np.ndarray) -> None:
        """The local product on one torch thread (:func:`torch_threads`)."""
        with torch_threads(1):
            torch.mm(torch.from_numpy(feats), torch.from_numpy(self.prep.local_w),
                     out=torch.from_numpy(out))

    def _quiet_threads(self) -> AbstractContextManager[None]:
        return torch_threads(1)

    @torch.no_grad()
    def generate(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """:meth:`KernelEngine.generate` with torch's autograd off (the local features may
        be computed by the model's modules)."""
        return super().generate(*args, **kwargs)

    @torch.no_grad()
    def teacher_force(self, *args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`KernelEngine.teacher_force` with torch's autograd off."""
        return super().teacher_force(*args, **kwargs)


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
