"""The fast engine's running half, without torch: a :class:`~waveloom.sampling.packed.
PackedWaveNet`'s state and its kernels, driven chunk by chunk.

:class:`KernelEngine` is what :class:`~waveloom.sampling.fast.FastWaveNet` runs on once a
torch model is packed, and what ``waveloom generate`` runs on a packed file without importing
torch at all (:mod:`waveloom.app._generate_packed`). Drivers, backends, threads and chunking
are described in :mod:`waveloom.sampling.fast`'s docstring. Inputs may be numpy arrays or
torch tensors (read through ``.detach().cpu()`` where present, never by importing torch).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from waveloom.sampling import layout
from waveloom.sampling.driver_race import DriverRace, cores_look_busy
from waveloom.sampling.packed import PackedWaveNet
from waveloom.sampling.uniforms import normal_deviates

WEIGHT_KINDS = ("float32", "float16", "int8")
BACKENDS = ("auto", "c", "numba")
# Per-layer multiply-adds above which splitting one stream's layer across threads pays for
# the two fork/joins per layer (~10 us each): the NSynth decoder's 1.5 M does, 32-channel
# layers (4 k) do not.
CHANNEL_PARALLEL_MIN_MACS = 1 << 18
CHUNK_WORK = 1 << 30  # multiply-adds per kernel call (~0.05-0.2 s): progress + Ctrl-C
CHUNK_LOCAL_FLOATS = 1 << 23  # cap on one chunk of local-conditioning rows (32 MB)
# Local features up to this many are projected inside the C kernel (L x 2D per layer and
# step), not precomputed as rows of every layer's 2D terms: the shipped note models' 6
# features made 18 x 64 floats per sample, ~23 MB per chunk read back from memory, and the
# product alone cost a tenth of the pipeline's loop. A mel's 80 stay rows (80 x 2D per layer
# would double a 32-channel layer's work).
KERNEL_LOCAL_MAX = 16


def numba_threads() -> int:
    """numba's thread count, without letting numba's first call change torch's.

    numba starts its OpenMP pool on first use, which resets the process-wide OpenMP thread
    count that torch reads; torch's setting (when torch is loaded) is put back. Importing
    numba here also applies a ``--threads`` given before it was loaded
    (:func:`waveloom.device.set_threads`).
    """
    import numba

    from waveloom.device import pending_numba_threads

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    pending = pending_numba_threads()
    if pending is not None:
        numba.set_num_threads(min(pending, numba.config.NUMBA_NUM_THREADS))
    threads = numba.get_num_threads()
    if torch is not None and torch.get_num_threads() != before:
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


def as_f32(x: Any) -> np.ndarray:
    """A numpy array or a torch tensor (any device) -> a float32 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, np.float32)


class KernelEngine:
    """A packed WaveNet's per-stream state and the compiled kernels that advance it.

    Usage::

        eng = KernelEngine(packed)                      # or FastWaveNet(stack, head)
        eng.reset(batch, g)                             # zero caches, fold g into biases
        eng.prime(prefix_codes, prefix_local)           # teacher-forced history
        codes = eng.generate(length, uniforms, local=..., local_offset=...)

    plus :meth:`step` (one compiled call per sample) and :meth:`teacher_force` (feed given
    codes, return every step's parameters). Results come back as numpy arrays.
    """

    def __init__(self, packed: PackedWaveNet) -> None:
        self.prep = packed
        self.backend = packed.backend
        self.weights = packed.weights
        self.state: Any = None
        self.g: np.ndarray | None = None
        self._c_net: Any = None
        self._c_state: Any = None
        self._in_codes = np.zeros(0, np.int32)
        self._loc_bufs: list[np.ndarray | None] = [None, None]  # two: one filled, one read
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        # pipeline or one thread, by measured speed (a busy machine starts on one thread)
        self.race = DriverRace(("pipe", "serial"), busy=cores_look_busy(engine_threads()))

    # ------------------------------------------------------------------ state

    @property
    def macs_per_step(self) -> int:
        """Multiply-adds of one sample of one stream (the products; lookups excluded)."""
        net = self.prep.net
        return int(
            net.conv_w.size + net.res_w[: net.n_res].size + net.skip_w.size
            + net.out1_w.size + net.out2_w.size
        )  # fmt: skip

    def reset(self, batch: int, g: Any = None) -> None:
        """Zeroed caches for ``batch`` streams (== the zero padding) and ``g`` [B, G] folded
        into every layer's bias."""
        if batch <= 0:
            raise ValueError(f"batch={batch} must be positive")
        net, prep = self.prep.net, self.prep
        if prep.global_w is not None:
            if g is None:
                raise ValueError("this stack is globally conditioned: pass g [B, G]")
            g = as_f32(g)
            bias = prep.conv_bias[None] + np.einsum("bg,nog->bno", g, prep.global_w)
        else:
            g = None
            bias = np.broadcast_to(prep.conv_bias[None], (batch, *prep.conv_bias.shape))
        bias = np.array(bias, np.float32)  # a copy
        d, c, n = prep.dilation_channels, prep.residual_channels, prep.blocks
        bias[..., d:] *= 0.5
        p = net.out2_w.shape[2]
        width = max(2 * d, net.skip_w.shape[2] + c, net.out1_w.shape[2], p)
        f32 = np.float32
        bits = np.zeros((batch, p), np.int32)
        self.state = layout.State(
            ring=np.zeros((batch * int(net.ring_len.sum()), c), f32),
            codes=np.full((batch, net.kernel), self._pad_code, np.int32),
            clock=np.zeros(1, np.int64),
            bias=np.ascontiguousarray(bias.reshape(batch * n, 2 * d)),
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
        self.g = g
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

    @property
    def _pad_code(self) -> int:
        """The input table's last row (zeros): the code of the silence before time 0."""
        return int(self.prep.net.in_table.shape[1] - 1)

    def prime(self, codes: Any, local: Any = None) -> np.ndarray:
        """Feed a history ``codes`` [B, T] (+ ``local`` [B, L, T]) as T teacher-forced kernel
        steps from zeroed rings; return the last parameters [B, P] (also kept as the state's
        current parameters). Only the last receptive field of codes is used."""
        codes, local = self._last_field(codes, local)
        st = self._state()
        st.ring.fill(0.0)
        st.codes.fill(self._pad_code)
        st.clock[0] = 0
        params, _ = self.teacher_force(codes, local)
        st.params[:] = params[-1]
        return st.params.copy()

    def _last_field(self, codes: Any, local: Any) -> tuple[Any, Any]:
        """A history ``codes`` [B, T] (array or tensor) checked, and it and ``local`` [B, L, T]
        cut to the last receptive field (all that priming can use)."""
        if len(codes.shape) != 2 or codes.shape[0] != self.batch or codes.shape[1] < 1:
            raise ValueError(f"codes has shape {tuple(codes.shape)}; expected [{self.batch}, T]")
        rf = self.prep.receptive_field
        if codes.shape[-1] > rf:
            codes = codes[..., -rf:]
            local = None if local is None else local[..., -rf:]
        return codes, local

    # ------------------------------------------------------------------ local features

    def local_rows(self, local: Any, steps: int | None = None, slot: int = 0) -> np.ndarray:
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
        per_step = b if kernel_side else b * self.prep.blocks  # rows per step
        need = steps * per_step
        buf = self._loc_bufs[slot]
        if buf is None or buf.shape[0] < need or buf.shape[1] != width:
            buf = self._loc_bufs[slot] = np.empty((need, width), np.float32)
        out = buf[:need]
        used = min(avail, steps)
        feats = as_f32(local[..., :used]).transpose(2, 0, 1).reshape(used * b, n_l)
        if kernel_side:
            out[: used * b] = feats
        else:
            self._project(feats, out[: used * per_step].reshape(used * b, -1))
        out[used * per_step :] = 0.0
        return out

    def _project(self, feats: np.ndarray, out: np.ndarray) -> None:
        """``out[:] = feats @ local_w`` (a chunk's local terms of every layer)."""
        np.matmul(feats, self.prep.local_w, out=out)

    @property
    def _kernel_local(self) -> bool:
        """Whether the C kernel projects the local features itself (``KERNEL_LOCAL_MAX``)."""
        return self.prep.kernel_local_w is not None

    def _local_width(self) -> int:
        """Floats of one local row (:meth:`local_rows`): features L, or one layer's 2D."""
        if self._kernel_local:
            return int(self.prep.kernel_local_w.shape[1])
        return 2 * self.prep.dilation_channels

    def _empty_local(self) -> np.ndarray:
        return np.zeros((0, self._local_width()), np.float32)

    # ------------------------------------------------------------------ the draw

    def _head(self, temperature: float) -> layout.Head:
        spec = self.prep.head
        return layout.Head(
            kind=spec.kind,
            temperature=np.float32(temperature),
            tempered=temperature != 1.0,
            log_temperature=np.float32(math.log(temperature)),
            components=spec.components,
            levels=spec.levels,
            log_scale_min=np.float32(spec.log_scale_min),
            input_map=np.ascontiguousarray(spec.input_map),
        )

    def _kernel_uniforms(self, uniforms: Any) -> np.ndarray:
        """The draws' uniforms [T, B, U] as the kernels read them: as given, except that a
        Gaussian head's become the standard normal deviate ``Phi^-1(u)``
        (:func:`~waveloom.sampling.uniforms.normal_deviates`, the reference head's deviate),
        so the kernels need no inverse normal CDF."""
        u = as_f32(uniforms)
        if self.prep.head.gaussian:
            u = normal_deviates(u)
        return np.ascontiguousarray(u)

    # ------------------------------------------------------------------ drivers

    def _chunk(self, has_local: bool) -> int:
        b = self.batch
        steps = CHUNK_WORK // max(1, b * self.macs_per_step)
        if has_local:
            rows = 1 if self._kernel_local else self.prep.blocks
            steps = min(steps, CHUNK_LOCAL_FLOATS // (b * rows * self._local_width()))
        return int(min(8192, max(16, steps)))

    def driver(self) -> str:
        """Which kernel a chunk runs on now: 'serial', 'batch', 'channels' or 'pipe' (see
        :mod:`waveloom.sampling.fast`)."""
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

    # ------------------------------------------------------------------ running

    def step(self, codes: Any, local_t: np.ndarray | None = None) -> np.ndarray:
        """Feed one input code per stream ([B]); return the next parameters [B, P].

        ``local_t`` is one step of :meth:`local_rows` ([B, n, 2D] rows or [B, L] features).
        One compiled call.
        """
        st = self._state()
        codes = np.asarray(codes.cpu() if hasattr(codes, "cpu") else codes)
        forced = np.ascontiguousarray(codes.astype(np.int32).reshape(self.batch, 1))
        loc = self._empty_local()
        if local_t is not None:
            loc = np.ascontiguousarray(np.asarray(local_t, np.float32).reshape(-1, loc.shape[1]))
        params = np.zeros((1, self.batch, st.params.shape[1]), np.float32)
        self._launch(self._head(1.0), 1, True, forced, np.zeros((1, self.batch, 2), np.float32),
                     loc, np.zeros((self.batch, 1), np.int32), params, final=False)
        return params[0]

    def teacher_force(self, codes: Any, local: Any = None, uniforms: Any = None,
                      temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Feed ``codes`` [B, T] one at a time; return (params [T, B, P], draws [B, T]).

        ``params[t]`` is the output after input ``t`` (== ``stack(codes, g, local)[..., t]``
        from a fresh :meth:`reset`), ``draws[:, t]`` the code the head draws from it with
        ``uniforms[t]`` ([T, B, U]; zeros if None). ``local`` [B, L, T] aligns with the outputs.
        """
        st = self._state()
        codes_np = np.asarray(codes.cpu() if hasattr(codes, "cpu") else codes)
        codes_np = np.ascontiguousarray(codes_np.astype(np.int32))
        b, total = codes_np.shape
        head = self._head(temperature)
        u_all = (
            # the uniforms' median (a Gaussian head reads 0.5 as its deviate; only the draws,
            # which teacher forcing does not feed back, depend on it)
            np.full((total, b, 2), 0.5, np.float32)
            if uniforms is None
            else self._kernel_uniforms(uniforms)
        )
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

    def _quiet_threads(self) -> AbstractContextManager[None]:
        """A context in which the engine's own array work between kernel calls keeps to one
        thread (the torch subclass caps torch's threads; plain numpy work needs nothing)."""
        return nullcontext()

    def generate(self, length: int, uniforms: Any, temperature: float = 1.0, local: Any = None,
                 local_offset: int = 0, progress: bool | Any = False,
                 final: bool = True) -> np.ndarray:
        """Draw ``length`` codes per stream from the primed state -> [B, length] int32.
        ``final=False`` feeds the last code back too, so a further call continues the same
        sequence (a long output drawn segment by segment). ``progress``: a bool, or an open
        tqdm bar to advance (one bar across segments).

        Sample ``t`` is drawn from the current parameters with ``uniforms[t]`` ([length, B, U])
        and fed back; the step after it reads local features ``local[..., local_offset + t]``
        ([B, L, *]; the reference sampler's timeline, where ``local_offset`` is the prefix
        length + 1).
        """
        from tqdm.auto import tqdm

        b = self.batch
        head = self._head(temperature)
        u_all = self._kernel_uniforms(uniforms)
        out = np.zeros((b, length), np.int32)
        chunk = self._chunk(local is not None)
        own = isinstance(progress, bool)
        bar = tqdm(total=length, disable=not progress, unit="sample",
                   desc="fast sampling") if own else progress

        def rows(i: int) -> np.ndarray:  # chunk i's local terms, into buffer i % 2
            s0, s1 = i * chunk, min(length, (i + 1) * chunk)
            if local is None:
                return self._empty_local()
            hi = min(local.shape[-1], local_offset + s1)
            return self.local_rows(local[..., local_offset + s0 : hi], s1 - s0, slot=i % 2)

        with (bar if own else nullcontext()), self._quiet_threads():
            for s0, s1, codes in self._chunks(length, chunk, rows, head, u_all, final):
                out[:, s0:s1] = codes
                bar.update(s1 - s0)
        return out

    def _chunks(self, length: int, chunk: int, rows: Any, head: Any, u_all: np.ndarray,
                final: bool) -> Iterator[tuple[int, int, np.ndarray]]:
        """Run :meth:`generate`'s chunks; yield (start, end, codes [B, end - start]).

        The next chunk's local terms are computed on a second thread while the kernel (which
        drops the GIL) runs this one: a free core hides them (a tenth of a 1-stream loop).
        Not beside the two-thread pipeline, whose threads wait on each other: a third would
        take a core from one of them (then they are computed between chunks).
        """
        b = self.batch
        empty = np.zeros((b, 0), np.int32)
        no_params = np.zeros((0, b, self._state().params.shape[1]), np.float32)
        n_chunks = -(-length // chunk)
        with ThreadPoolExecutor(1, thread_name_prefix="waveloom-local") as ahead:
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
                yield s0, s1, codes
