"""SampleRNN's sampler in numpy: the torch :class:`~waveloom.models.samplernn.Stepper`'s
arithmetic with a fraction of its per-call cost.

Why: sampling is a loop of tiny products (one 256 x 256 layer per sample, a GRU cell per
frame), and torch spends ~30 us of dispatch on each while the arithmetic takes a few: the
shipped ``samplernn-notes`` drew 2,900 samples/s on one core (a 10-s clip in ~55 s). numpy's
BLAS calls cost ~1-2 us each, on one BLAS thread (threadpoolctl): two threads only wait on
each other at this size. Same weights, same steps, same uniforms as the torch stepper, so the
same seed gives the same codes except where a uniform falls within float rounding of a CDF
boundary (``tests/test_samplernn.py`` compares the two). ``--engine torch`` keeps the torch
stepper (the reference, and the one for a GPU).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np


def _np(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().float().numpy())


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class _Tier:
    """One frame tier's weights (transposed for ``x @ W``) and its recurrent state."""

    def __init__(self, tier: Any, g_bias: Any, state: Any, n: int) -> None:
        self.lstm, self.ratio, self.out_dim = tier.lstm, tier.ratio, tier.out_dim
        self.w_in, self.b_in = _np(tier.input.weight).T.copy(), _np(tier.input.bias)
        self.w_loc = None if tier.local_proj is None else _np(tier.local_proj.weight).T.copy()
        self.g_bias = None if g_bias is None else _np(g_bias)
        rnn = tier.rnn
        self.layers = [(_np(getattr(rnn, f"weight_ih_l{i}")).T.copy(),
                        _np(getattr(rnn, f"weight_hh_l{i}")).T.copy(),
                        _np(getattr(rnn, f"bias_ih_l{i}")), _np(getattr(rnn, f"bias_hh_l{i}")))
                       for i in range(rnn.num_layers)]
        if state is None:
            state = tier.initial_state(n)
        self.h = [_np(s) for s in (state if self.lstm else (state,))]  # [layers, n, H] each
        self.w_up, self.b_up = _np(tier.upsample.weight).T.copy(), _np(tier.upsample.bias)

    def step(self, frame: np.ndarray, above: np.ndarray | None,
             local: np.ndarray | None) -> np.ndarray:
        """``FrameTier.step``: frame [n, F] (+ above [n, H], local [n, F * L]) -> [n, ratio,
        out]; the state advances."""
        x = frame @ self.w_in + self.b_in
        if above is not None:
            x += above
        if self.w_loc is not None:
            x += local @ self.w_loc
        if self.g_bias is not None:
            x += self.g_bias
        for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            gi, gh = x @ w_ih + b_ih, self.h[0][i] @ w_hh + b_hh
            hid = gh.shape[1] // (4 if self.lstm else 3)  # gates side by side (torch's order)
            if self.lstm:
                gates = gi + gh
                c = (_sigmoid(gates[:, hid : 2 * hid]) * self.h[1][i]
                     + _sigmoid(gates[:, :hid]) * np.tanh(gates[:, 2 * hid : 3 * hid]))
                self.h[1][i] = c
                x = _sigmoid(gates[:, 3 * hid :]) * np.tanh(c)
            else:
                rz = _sigmoid(gi[:, : 2 * hid] + gh[:, : 2 * hid])
                r, z = rz[:, :hid], rz[:, hid:]
                cand = np.tanh(gi[:, 2 * hid :] + r * gh[:, 2 * hid :])
                x = (1.0 - z) * cand + z * self.h[0][i]
            self.h[0][i] = x
        return (x @ self.w_up + self.b_up).reshape(x.shape[0], self.ratio, self.out_dim)


class NumpyStepper:
    """:class:`~waveloom.models.samplernn.Stepper` in numpy: ``logits()`` [n, levels] of the
    next sample, ``draw(u, temperature)`` its code by inverse CDF (pushed), ``codes()``."""

    def __init__(self, model: Any, g: Any, history: Any, state: Any, length: int,
                 local: Any = None) -> None:
        self.model, self.t = model, 0
        ctx, n = model.context, history.shape[0]
        self.ctx, self.sizes = ctx, tuple(model.config.frame_sizes)
        self.buf = np.empty((n, ctx + length), np.int64)
        self.buf[:, :ctx] = history.detach().cpu().numpy()
        self.local = None if local is None else _np(local)
        self.tiers = [
            _Tier(tier, None if tier.global_proj is None else tier.global_proj(g),
                  None if state is None else state[k], n)
            for k, tier in enumerate(model.tiers)]
        self.vectors: list[np.ndarray | None] = [None] * len(self.tiers)
        mlp = model.mlp
        self.table, self.inputs = _np(mlp.step_table()), mlp.inputs
        bias = mlp.input.bias if mlp.global_proj is None else mlp.input.bias + mlp.global_proj(g)
        self.mlp_bias = _np(bias)
        self.w_loc = None if mlp.local_proj is None else _np(mlp.local_proj.weight).T.copy()
        self.hidden = [(_np(layer.weight).T.copy(), _np(layer.bias)) for layer in mlp.hidden]
        self.w_out, self.b_out = _np(mlp.out.weight).T.copy(), _np(mlp.out.bias)
        self.taps = np.arange(self.inputs)
        self.scale = 2.0 / (model.levels - 1)

    def logits(self) -> np.ndarray:
        t, ctx, sizes = self.t, self.ctx, self.sizes
        n = self.buf.shape[0]
        for k, (tier, size) in enumerate(zip(self.tiers, sizes)):
            if t % size == 0:
                frame = (self.buf[:, ctx + t - size : ctx + t].astype(np.float32) * self.scale
                         - 1.0).astype(np.float32)
                above = None if k == 0 else self.vectors[k - 1][:, (t % sizes[k - 1]) // size]
                loc = None if self.local is None else self.local[:, t : t + size].reshape(n, -1)
                self.vectors[k] = tier.step(frame, above, loc)
        last = sizes[-1]
        if t % last == 0 and self.local is not None:
            self.vectors[-1] = self.vectors[-1] + self.local[:, t : t + last] @ self.w_loc
        rows = self.buf[:, ctx + t - last : ctx + t] * self.inputs + self.taps
        x = self.table[rows].sum(axis=1) + self.mlp_bias + self.vectors[-1][:, t % last]
        x = np.maximum(x, 0.0)
        for w, b in self.hidden:
            x = np.maximum(x @ w + b, 0.0)
        return x @ self.w_out + self.b_out

    def draw(self, u: np.ndarray, temperature: float) -> np.ndarray:
        """Draw the next codes [n] from :meth:`logits` with uniforms ``u`` [n] (the categorical
        head's inverse CDF: softmax of logits / T, first index whose CDF exceeds u) and push
        them."""
        z = self.logits().astype(np.float32) / np.float32(temperature)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
        codes = np.minimum((cdf <= u[:, None]).sum(axis=1), cdf.shape[1] - 1)
        self.buf[:, self.ctx + self.t] = codes
        self.t += 1
        return codes

    def codes(self) -> np.ndarray:
        """The drawn codes [n, t]."""
        return self.buf[:, self.ctx : self.ctx + self.t]


def one_blas_thread() -> AbstractContextManager[Any]:
    """numpy's BLAS on one thread for the block (threadpoolctl; nothing when it is absent)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(1, user_api="blas")
