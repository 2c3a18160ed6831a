"""Compiled WaveNet inference kernels: one numba call runs many samples of a whole stack.

Why a kernel and not torch: at batch 1 a WaveNet step is ~60 tiny matrix-vector products, and
the cached torch engine spends most of its time in per-op dispatch, not arithmetic. Here one
call runs a whole chunk of samples -- every layer, the output 1x1s and the draw from the head
-- with no Python, no allocation and no dispatch inside the loop, so the cost is the arithmetic
and the weight traffic alone.

Layout (built by :mod:`waveloom.sampling.fast`; all arrays C-contiguous):

* every matrix is stored input-major, ``W[in, out]``, so a product is a sum of weight *rows*
  scaled by input values (an "axpy" form): the inner loop runs over contiguous outputs, needs
  no horizontal reductions, vectorises without reassociation and, at batch B, keeps a layer's
  weights in L1 while the B streams go through it;
* the input conv is folded into tables ``in_table[k, code] = embedding[code] @ W_in[k]``, so
  it costs K row lookups instead of a product (row ``levels`` is the zero padding before t=0);
* each layer's conv input history is a ring of ``(K-1)*d + 1`` rows per stream; step ``t``
  writes slot ``t mod R`` and tap ``k`` reads slot ``(t - (K-1-k) d) mod R``, so nothing moves;
* gate rows are pre-halved so one tanh serves filter and gate
  (``sigmoid(a) = (1 + tanh(a/2)) / 2``) and the residual/skip weights are pre-halved to take
  ``2z = tanh(f) (1 + tanh(g/2))``;
* weights are float32, or int8 with one float32 scale per output column (``scaled``): the
  int8 path accumulates ``x @ q`` in float32 and applies the scales once per product;
* after a ReLU only the non-zero inputs' weight rows are streamed (about half).

Exactness: float32 throughout, the sums only reordered (``fastmath`` is limited to
contraction into FMAs, reassociation, signed zeros and reciprocal division -- never the
no-NaN/no-Inf assumptions or approximate library functions; ``error_model='numpy'`` drops the
division-by-zero branches that would stop vectorisation). tanh is a rational fit with a
maximum error of 3.5e-7 over all float32 inputs (:func:`fit_tanh_rational` derives its
coefficients) and exp a Cody-Waite reduction with a degree-6 polynomial (< 2 ulp), which
keeps logits within ~1e-6 of the torch reference. The draw replays the head's inverse CDF in
the same float32/float64 order as :mod:`waveloom.nn.heads`. ``wavenet_step.c`` is the same
computation in C (the default backend when a compiler exists; faster, see its header).

Three drivers share the per-layer code: :func:`run_serial` (one thread), :func:`run_batch`
(streams split into independent groups, one per thread, each running the whole chunk with no
synchronisation) and :func:`run_channels` (one stream, each layer's output columns split across
threads; pays only when a layer is large enough to amortise two fork/joins per layer and the
cores are not shared -- on an oversubscribed machine every fork/join waits for a time slice).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from waveloom.sampling.layout import (  # noqa: F401 (the kernels' types, re-exported)
    CATEGORICAL,
    GAUSSIAN,
    LOGISTIC_MIXTURE,
    Head,
    Net,
    State,
)

# Reassociation and FMA contraction only; see the module docstring.
FASTMATH = {"contract", "reassoc", "nsz", "arcp"}
F32 = np.float32


# tanh(x) ~ t P(t^2) / Q(t^2) with t = x / TANH_CLIP, clamped outside |x| <= TANH_CLIP.
# From fit_tanh_rational(8.0, 5, 3): max error 1.7e-8 in float64, 3.5e-7 in float32.
TANH_CLIP = 8.0
TANH_P = (
    7.999999304037167,
    66.41975505804405,
    97.61071388889724,
    20.58529477250707,
    -1.9485755717490787,
    0.19781614050263935,
)
TANH_Q = (1.0, 29.63577988816636, 98.29972689073193, 61.929536555910005)

_INV_CLIP = F32(1.0 / TANH_CLIP)
_P0, _P1, _P2, _P3, _P4, _P5 = (F32(c) for c in TANH_P)
_Q1, _Q2, _Q3 = (F32(c) for c in TANH_Q[1:])


# ----------------------------------------------------------------------------- elementwise


@njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def tanh32(x: np.float32) -> np.float32:
    """float32 tanh as a clamped rational function: branch-free, so loops of it vectorise."""
    t = min(max(x * _INV_CLIP, F32(-1.0)), F32(1.0))
    s = t * t
    p = ((((_P5 * s + _P4) * s + _P3) * s + _P2) * s + _P1) * s + _P0
    q = ((_Q3 * s + _Q2) * s + _Q1) * s + F32(1.0)
    return t * p / q


@njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def tanh_array(x: np.ndarray) -> np.ndarray:
    """:func:`tanh32` over a float32 array (for tests)."""
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = tanh32(x[i])
    return out


def fit_tanh_rational(
    clip: float = TANH_CLIP, p: int = 5, q: int = 3, points: int = 40000, iters: int = 80
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit ``tanh(clip t) ~ t P(t^2) / Q(t^2)`` on t in (0, 1] with Q(0) = 1.

    Sanathanan-Koerner iteration (the rational fit linearised as ``t P - f (Q - 1) = f`` and
    reweighted by ``1/|Q|`` of the previous pass) with Lawson reweighting towards the largest
    errors, which approaches the minimax fit. Returns (P coefficients, Q coefficients with the
    leading 1, max abs error in float64). Used once to derive :data:`TANH_P` / :data:`TANH_Q`.
    """
    t = np.linspace(0.0, 1.0, points + 1)[1:]
    s, f = t * t, np.tanh(clip * t)
    weight = np.full_like(t, 1.0 / t.size)
    den = np.ones_like(t)
    best: tuple[np.ndarray, float] | None = None
    for it in range(iters):
        cols = [t * s**k for k in range(p + 1)] + [-f * s**k for k in range(1, q + 1)]
        a = np.stack(cols, 1)
        row = np.sqrt(weight) / np.abs(den)
        coef = np.linalg.lstsq(a * row[:, None], f * row, rcond=None)[0]
        num = sum(c * s**k for k, c in enumerate(coef[: p + 1]))
        den = 1.0 + sum(c * s ** (k + 1) for k, c in enumerate(coef[p + 1 :]))
        err = np.abs(t * num / den - f)
        if best is None or err.max() < best[1]:
            best = (coef.copy(), float(err.max()))
        if it > 5:
            weight = weight * (err / err.max() + 1e-4)
            weight /= weight.sum()
    assert best is not None
    coef, err_max = best
    return coef[: p + 1], np.concatenate([[1.0], coef[p + 1 :]]), err_max


# ----------------------------------------------------------------------------- products
#
# Hot loops index whole arrays with an unsigned induction variable and never take views:
# numba wraps a signed index it cannot prove non-negative (a select per access that stops
# LLVM from vectorising), and every view costs a reference-count round trip.

U64 = np.uint64


def _is_int8(w: np.ndarray) -> bool:
    """Whether ``w`` holds int8 weights; a compile-time constant inside kernels."""
    return w.dtype == np.int8


@overload(_is_int8, jit_options={"cache": True})
def _is_int8_impl(w):  # noqa: ANN001, ANN202 (numba typing hook)
    flag = w.dtype == types.int8
    return lambda w: flag


@njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _axpy(
    y: np.ndarray,
    yr: int,
    yo: int,
    x: np.ndarray,
    xr: int,
    w: np.ndarray,
    wl: int,
    o0: int,
    o1: int,
) -> None:
    """``y[yr, yo + o] += sum_i x[xr, i] w[wl, i, o]`` for o in [o0, o1), 8 rows per pass.

    Eight weight rows per pass make one load and one store of ``y`` per eight FMAs, so the
    loop runs at the speed of the weight loads (L1, L2 or memory bandwidth).
    """
    n_in = U64(w.shape[1])
    a, b = U64(o0), U64(o1)
    shift = U64(yo)
    i = U64(0)
    while i + U64(8) <= n_in:
        x0, x1, x2, x3 = x[xr, i], x[xr, i + U64(1)], x[xr, i + U64(2)], x[xr, i + U64(3)]
        x4, x5, x6, x7 = x[xr, i + U64(4)], x[xr, i + U64(5)], x[xr, i + U64(6)], x[xr, i + U64(7)]
        for o in range(a, b):
            y[yr, shift + o] += (
                (x0 * F32(w[wl, i, o]) + x1 * F32(w[wl, i + U64(1), o]))
                + (x2 * F32(w[wl, i + U64(2), o]) + x3 * F32(w[wl, i + U64(3), o]))
            ) + (
                (x4 * F32(w[wl, i + U64(4), o]) + x5 * F32(w[wl, i + U64(5), o]))
                + (x6 * F32(w[wl, i + U64(6), o]) + x7 * F32(w[wl, i + U64(7), o]))
            )
        i += U64(8)
    while i < n_in:
        xi = x[xr, i]
        for o in range(a, b):
            y[yr, shift + o] += xi * F32(w[wl, i, o])
        i += U64(1)


@njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _gemv(
    y: np.ndarray,
    yr: int,
    x: np.ndarray,
    xr: int,
    w: np.ndarray,
    wl: int,
    scale: np.ndarray,
    acc: np.ndarray,
    ar: int,
    ao: int,
    o0: int,
    o1: int,
) -> None:
    """``y[yr, o0:o1] += (x[xr] @ w[wl, :, o0:o1]) * scale[wl, o0:o1]``.

    The scale applies to int8 weights only (decided at compile time from ``w``'s dtype, so the
    float32 path carries no branch); their sum is formed in ``acc[ar, ao + o]`` first.
    """
    if _is_int8(w):
        shift = U64(ao)
        for o in range(U64(o0), U64(o1)):
            acc[ar, shift + o] = F32(0.0)
        _axpy(acc, ar, ao, x, xr, w, wl, o0, o1)
        for o in range(U64(o0), U64(o1)):
            y[yr, o] += acc[ar, shift + o] * scale[wl, o]
    else:
        _axpy(y, yr, 0, x, xr, w, wl, o0, o1)


@njit(inline="always", cache=True, error_model="numpy", fastmath=FASTMATH)
def _gemv_relu(
    y: np.ndarray,
    yr: int,
    x: np.ndarray,
    xr: int,
    w: np.ndarray,
    scale: np.ndarray,
    acc: np.ndarray,
    nz: np.ndarray,
) -> None:
    """``y[yr] += (x[xr] @ w[0]) * scale[0]`` for a ReLU output ``x``: zero rows skipped.

    About half of a ReLU's outputs are exactly zero and contribute exactly nothing, so the
    non-zero rows are listed first (``nz[xr]``) and only they are streamed, 8 at a time.
    """
    m = 0
    for i in range(x.shape[1]):
        if x[xr, i] != F32(0.0):
            nz[xr, m] = i
            m += 1
    n_out = U64(y.shape[1])
    int8 = _is_int8(w)
    if int8:
        for o in range(n_out):
            acc[xr, o] = F32(0.0)
    j = 0
    while j + 8 <= m:
        i0, i1, i2, i3 = nz[xr, j], nz[xr, j + 1], nz[xr, j + 2], nz[xr, j + 3]
        i4, i5, i6, i7 = nz[xr, j + 4], nz[xr, j + 5], nz[xr, j + 6], nz[xr, j + 7]
        x0, x1, x2, x3 = x[xr, i0], x[xr, i1], x[xr, i2], x[xr, i3]
        x4, x5, x6, x7 = x[xr, i4], x[xr, i5], x[xr, i6], x[xr, i7]
        if int8:
            for o in range(n_out):
                acc[xr, o] += (
                    (x0 * F32(w[0, i0, o]) + x1 * F32(w[0, i1, o]))
                    + (x2 * F32(w[0, i2, o]) + x3 * F32(w[0, i3, o]))
                ) + (
                    (x4 * F32(w[0, i4, o]) + x5 * F32(w[0, i5, o]))
                    + (x6 * F32(w[0, i6, o]) + x7 * F32(w[0, i7, o]))
                )
        else:
            for o in range(n_out):
                y[yr, o] += (
                    (x0 * F32(w[0, i0, o]) + x1 * F32(w[0, i1, o]))
                    + (x2 * F32(w[0, i2, o]) + x3 * F32(w[0, i3, o]))
                ) + (
                    (x4 * F32(w[0, i4, o]) + x5 * F32(w[0, i5, o]))
                    + (x6 * F32(w[0, i6, o]) + x7 * F32(w[0, i7, o]))
                )
        j += 8
    while j < m:
        i = nz[xr, j]
        xi = x[xr, i]
        if int8:
            for o in range(n_out):
                acc[xr, o] += xi * F32(w[0, i, o])
        else:
            for o in range(n_out):
                y[yr, o] += xi * F32(w[0, i, o])
        j += 1
    if int8:
        for o in range(n_out):
            y[yr, o] += acc[xr, o] * scale[0, o]


# ----------------------------------------------------------------------------- one step
#
# The per-layer helpers take plain arrays, never the Net/State tuples: passing a tuple of
# arrays into a function copies it and takes a reference to every member (~30 atomic
# increments and decrements), which at ~100 calls per sample would cost more than the
# arithmetic. :func:`_forward` unpacks the tuples once per sample.

J = {"cache": True, "error_model": "numpy", "fastmath": FASTMATH}


@njit(inline="always", **J)
def _input(
    b: int,
    t: int,
    code: int,
    k_size: int,
    in_table: np.ndarray,
    in_b: np.ndarray,
    codes: np.ndarray,
    x: np.ndarray,
    skip: np.ndarray,
) -> None:
    """Push input ``code`` at time ``t``; input conv by table lookups; clear the skip sum.

    ``x = b_in + sum_k table[k, code_{t-(K-1-k)}]`` (the table folds embedding and conv).
    """
    codes[b, t % k_size] = code
    c = U64(x.shape[1])
    for i in range(c):
        x[b, i] = in_b[i]
    for k in range(k_size):
        v = codes[b, (t - (k_size - 1 - k)) % k_size]
        for i in range(c):
            x[b, i] += in_table[k, v, i]
    for o in range(U64(skip.shape[1])):
        skip[b, o] = F32(0.0)


@njit(inline="always", **J)
def _conv_in(
    b: int,
    row: int,
    brow: int,
    lrow: int,
    ring: np.ndarray,
    x: np.ndarray,
    h: np.ndarray,
    bias: np.ndarray,
    loc: np.ndarray,
    has_loc: bool,
) -> None:
    """Store the layer input ``x[b]`` in ring row ``row``; ``h[b] = bias[brow] (+ loc[lrow])``."""
    for i in range(U64(x.shape[1])):
        ring[row, i] = x[b, i]
    if has_loc:
        for o in range(U64(h.shape[1])):
            h[b, o] = bias[brow, o] + loc[lrow, o]
    else:
        for o in range(U64(h.shape[1])):
            h[b, o] = bias[brow, o]


@njit(inline="always", **J)
def _conv_taps(
    b: int,
    l: int,
    cur: int,
    k_size: int,
    base: int,
    r: int,
    d: int,
    ring: np.ndarray,
    conv_w: np.ndarray,
    conv_s: np.ndarray,
    h: np.ndarray,
    acc: np.ndarray,
    o0: int,
    o1: int,
) -> None:
    """``h[b, o0:o1] += sum_k W_k^T x_{t - (K-1-k) d}``, tap rows read from the ring.

    ``cur = t mod r`` is the slot of x_t; older taps are ``(K-1-k) d < r`` slots back, so one
    conditional wrap replaces an integer division per tap.
    """
    for k in range(k_size):
        slot = cur - (k_size - 1 - k) * d
        if slot < 0:
            slot += r
        _gemv(h, b, ring, base + slot, conv_w, l * k_size + k, conv_s, acc, b, 0, o0, o1)


@njit(inline="always", **J)
def _gate(b: int, h: np.ndarray, z2: np.ndarray, c0: int, c1: int) -> None:
    """``2z = tanh(f) + tanh(f) tanh(g/2)`` for columns c0:c1 (the gate half is pre-halved)."""
    d = U64(z2.shape[1])
    for c in range(U64(c0), U64(c1)):
        f = tanh32(h[b, c])
        z2[b, c] = f + f * tanh32(h[b, d + c])


@njit(inline="always", **J)
def _res_skip(
    b: int,
    l: int,
    has_res: bool,
    z2: np.ndarray,
    skip: np.ndarray,
    skip_w: np.ndarray,
    skip_s: np.ndarray,
    x: np.ndarray,
    res_w: np.ndarray,
    res_s: np.ndarray,
    res_b: np.ndarray,
    acc: np.ndarray,
    o0: int,
    o1: int,
) -> None:
    """Columns ``o0:o1`` of [skip | residual]: ``skip += S^T 2z``, ``x += b_r + R^T 2z``."""
    n_skip = skip.shape[1]
    if o0 < n_skip:
        _gemv(skip, b, z2, b, skip_w, l, skip_s, acc, b, 0, o0, min(o1, n_skip))
    if o1 > n_skip and has_res:
        r0, r1 = max(o0, n_skip) - n_skip, o1 - n_skip
        for i in range(U64(r0), U64(r1)):
            x[b, i] += res_b[l, i]
        # Residual sums go to acc[:, n_skip:], apart from the skip columns.
        _gemv(x, b, z2, b, res_w, l, res_s, acc, b, n_skip, r0, r1)


@njit(inline="always", **J)
def _relu(y: np.ndarray, b: int) -> None:
    for o in range(U64(y.shape[1])):
        v = y[b, o]
        y[b, o] = v if v > F32(0.0) else F32(0.0)


@njit(inline="always", **J)
def _set_row(y: np.ndarray, b: int, v: np.ndarray) -> None:
    for o in range(U64(y.shape[1])):
        y[b, o] = v[o]


@njit(**J)
def _output(net: Net, st: State, b0: int, b1: int) -> None:
    """Sum of skips -> ReLU -> 1x1 -> ReLU -> 1x1 -> head parameters, streams b0:b1."""
    skip, hid, par, acc, nz = st.skip, st.hid, st.params, st.acc, st.nz
    skip_b, out1_w, out1_s, out1_b = net.skip_b, net.out1_w, net.out1_s, net.out1_b
    out2_w, out2_s, out2_b = net.out2_w, net.out2_s, net.out2_b
    for b in range(b0, b1):
        for o in range(U64(skip.shape[1])):
            skip[b, o] += skip_b[o]
        _relu(skip, b)
        _set_row(hid, b, out1_b)
        _gemv_relu(hid, b, skip, b, out1_w, out1_s, acc, nz)
        _relu(hid, b)
        _set_row(par, b, out2_b)
        _gemv_relu(par, b, hid, b, out2_w, out2_s, acc, nz)


@njit(**J)
def _feed(
    net: Net,
    st: State,
    b0: int,
    b1: int,
    t: int,
    codes: np.ndarray,
    cs: int,
    input_map: np.ndarray,
    mapped: bool,
) -> None:
    """Push ``codes[b, cs]`` (through ``input_map`` if ``mapped``) into streams ``b0:b1`` at
    time ``t`` and run the input conv."""
    in_table, in_b, ring_codes, x, skip = net.in_table, net.in_b, st.codes, st.x, st.skip
    for b in range(b0, b1):
        code = codes[b, cs]
        if mapped:
            code = input_map[code]
        _input(b, t, code, net.kernel, in_table, in_b, ring_codes, x, skip)


@njit(**J)
def _forward(
    net: Net,
    st: State,
    loc: np.ndarray,
    has_loc: bool,
    s: int,
    b0: int,
    b1: int,
    t: int,
    codes: np.ndarray,
    cs: int,
    input_map: np.ndarray,
    mapped: bool,
) -> None:
    """Feed ``codes[b, cs]`` to streams ``b0:b1`` at time ``t`` and compute their parameters.

    Layer-major: each layer's weights serve every stream of the group while they are in L1.
    """
    _feed(net, st, b0, b1, t, codes, cs, input_map, mapped)
    ring, x, h, z2, skip, acc, bias = st.ring, st.x, st.h, st.z2, st.skip, st.acc, st.bias
    conv_w, conv_s, skip_w, skip_s = net.conv_w, net.conv_s, net.skip_w, net.skip_s
    res_w, res_s, res_b = net.res_w, net.res_s, net.res_b
    ring_off, ring_len, dil = net.ring_off, net.ring_len, net.dil
    k_size, n, n_res = net.kernel, dil.shape[0], net.n_res
    batch = x.shape[0]
    rtot = ring.shape[0] // batch
    width, d, n_out = h.shape[1], z2.shape[1], skip.shape[1] + x.shape[1]
    for l in range(n):
        r = ring_len[l]
        cur = t % r
        for b in range(b0, b1):
            base = b * rtot + ring_off[l]
            _conv_in(b, base + cur, b * n + l, (s * batch + b) * n + l, ring, x, h, bias, loc,
                     has_loc)
            _conv_taps(b, l, cur, k_size, base, r, dil[l], ring, conv_w, conv_s, h, acc, 0,
                       width)
            _gate(b, h, z2, 0, d)
            _res_skip(b, l, l < n_res, z2, skip, skip_w, skip_s, x, res_w, res_s, res_b, acc,
                      0, n_out)
    _output(net, st, b0, b1)


# ----------------------------------------------------------------------------- the draw


# exp(x) = p(r) 2^k with k = rint(x / ln 2), r = x - k ln 2 (Cody-Waite: ln 2 split so k ln2_hi
# is exact), p the degree-6 Taylor polynomial of e^r on |r| <= ln(2)/2 (error < 2 ulp). 2^k is
# built from its exponent bits in an int32 scratch row read back through a float32 view, so
# the loop vectorises (numba has no scalar bit cast; a libm exp call per logit does not).
_LOG2E = F32(1.4426950408889634)
_LN2_HI = F32(0.693145751953125)
_LN2_LO = F32(1.4286068203094173e-06)
_EXP_MIN = F32(-87.0)  # e^-87 ~ 1.6e-38: keeps 2^k a normal float; below it, ~0 anyway
_E2, _E3, _E4, _E5, _E6 = (F32(1 / math.factorial(i)) for i in range(2, 7))


@njit(inline="always", **J)
def _softmax_numerators(
    logits: np.ndarray,
    b: int,
    n: int,
    temp: np.float32,
    e: np.ndarray,
    bits: np.ndarray,
    pow2: np.ndarray,
) -> np.float32:
    """``e[b, :n] = exp(logits[b, :n] / temp - max)``; returns their float32 sum."""
    m = F32(-np.inf)
    for i in range(n):
        v = logits[b, i] / temp
        e[b, i] = v
        m = max(m, v)
    for i in range(n):
        x = max(e[b, i] - m, _EXP_MIN)
        k = np.rint(x * _LOG2E)
        r = (x - k * _LN2_HI) - k * _LN2_LO
        e[b, i] = F32(1.0) + r * (
            F32(1.0) + r * (_E2 + r * (_E3 + r * (_E4 + r * (_E5 + r * _E6))))
        )
        bits[b, i] = (np.int32(k) + np.int32(127)) << np.int32(23)
    total = F32(0.0)
    for i in range(n):
        v = e[b, i] * pow2[b, i]
        e[b, i] = v
        total += v
    return total


@njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def _draw(
    head: Head,
    params: np.ndarray,
    b: int,
    u: np.ndarray,
    s: int,
    e: np.ndarray,
    bits: np.ndarray,
    pow2: np.ndarray,
) -> int:
    """One code from ``params[b]`` and the uniforms ``u[s, b]`` (see :mod:`waveloom.nn.heads`).

    Categorical: ``probs = softmax(logits / T)``; mixture: component from
    ``softmax(logits / T)`` by ``u[0]``, then ``mu + s T logit(u[1])`` rounded to a level.
    Both inverse CDFs run as torch's ``searchsorted(cumsum(probs), u, right=True)`` does on a
    CPU float32 tensor: probabilities in float32, their running sum in float64 rounded to
    float32 before each comparison.
    """
    if head.kind == GAUSSIAN:  # u[s, b, 0] is already the deviate Phi^-1(u)
        log_s = max(params[b, 1], head.log_scale_min)
        x = params[b, 0] + head.temperature * F32(math.exp(log_s)) * u[s, b, 0]
        x = min(max(x, F32(-1.0)), F32(1.0))
        return int(np.rint((x + F32(1.0)) * F32(0.5) * F32(head.levels - 1)))
    if head.kind == CATEGORICAL:
        n, temp = params.shape[1], head.temperature
    else:
        n = head.components
        temp = head.temperature if head.tempered else F32(1.0)
    total = _softmax_numerators(params, b, n, temp, e, bits, pow2)
    idx = n - 1
    run = 0.0
    target = u[s, b, 0]
    for i in range(n):
        run += e[b, i] / total
        if F32(run) > target:
            idx = i
            break
    if head.kind == CATEGORICAL:
        return idx
    k = head.components
    mu = params[b, k + idx]
    log_s = max(params[b, 2 * k + idx], head.log_scale_min)
    if head.tempered:
        log_s += head.log_temperature
    v = min(max(u[s, b, 1], F32(1e-7)), F32(1.0 - 1e-7))
    x = mu + F32(math.exp(log_s)) * (F32(math.log(v)) - F32(math.log1p(-v)))
    x = min(max(x, F32(-1.0)), F32(1.0))
    return int(np.rint((x + F32(1.0)) * F32(0.5) * F32(head.levels - 1)))


@njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def _record(
    head: Head,
    params: np.ndarray,
    probs: np.ndarray,
    bits: np.ndarray,
    pow2: np.ndarray,
    b: int,
    s: int,
    uniforms: np.ndarray,
    codes_out: np.ndarray,
    params_out: np.ndarray,
    store: bool,
) -> None:
    """Draw stream ``b``'s code for sample ``s``; optionally keep the parameters."""
    codes_out[b, s] = _draw(head, params, b, uniforms, s, probs, bits, pow2)
    if store:
        for o in range(U64(params.shape[1])):
            params_out[s, b, o] = params[b, o]


# ----------------------------------------------------------------------------- drivers


@njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def _run_group(
    net: Net,
    head: Head,
    st: State,
    b0: int,
    b1: int,
    t0: int,
    steps: int,
    feed_first: bool,
    forced: np.ndarray,
    uniforms: np.ndarray,
    loc: np.ndarray,
    has_loc: bool,
    codes_out: np.ndarray,
    params_out: np.ndarray,
    store: bool,
    final: bool,
) -> int:
    """``steps`` samples of streams ``b0:b1``; returns how many inputs were fed.

    ``feed_first`` (teacher forcing): feed ``forced[b, s]``, then record the parameters and
    the code the head draws from them. Otherwise (generation): draw from the current
    parameters, record, and feed the code back -- except after the very last draw of a
    generation (``final``), which needs no further step.
    """
    params, probs, bits, pow2 = st.params, st.probs, st.bits, st.pow2
    t = t0
    for s in range(steps):
        if feed_first:
            _forward(net, st, loc, has_loc, s, b0, b1, t, forced, s, head.input_map, False)
            t += 1
        for b in range(b0, b1):
            _record(head, params, probs, bits, pow2, b, s, uniforms, codes_out, params_out,
                    store)
        if not feed_first and not (final and s == steps - 1):
            _forward(net, st, loc, has_loc, s, b0, b1, t, codes_out, s, head.input_map, True)
            t += 1
    return t - t0


@njit(cache=True, error_model="numpy", fastmath=FASTMATH, nogil=True)
def run_serial(
    net: Net,
    head: Head,
    st: State,
    steps: int,
    feed_first: bool,
    forced: np.ndarray,
    uniforms: np.ndarray,
    loc: np.ndarray,
    has_loc: bool,
    codes_out: np.ndarray,
    params_out: np.ndarray,
    store: bool,
    final: bool,
) -> None:
    """All streams on the calling thread.

    ``forced`` [B, steps] int32 (teacher forcing only), ``uniforms`` [steps, B, U] float32,
    ``loc`` [steps * B * n, 2D] local rows (row ``(s*B + b)*n + l``; empty without local
    conditioning), ``codes_out`` [B, steps] int32, ``params_out`` [steps, B, P] (if
    ``store``). See :func:`_run_group` for the two modes.
    """
    t0 = st.clock[0]
    fed = _run_group(
        net, head, st, 0, st.x.shape[0], t0, steps, feed_first, forced, uniforms, loc, has_loc,
        codes_out, params_out, store, final,
    )  # fmt: skip
    st.clock[0] = t0 + fed


@njit(cache=True, error_model="numpy", fastmath=FASTMATH, nogil=True, parallel=True)
def run_batch(
    net: Net,
    head: Head,
    st: State,
    groups: int,
    steps: int,
    feed_first: bool,
    forced: np.ndarray,
    uniforms: np.ndarray,
    loc: np.ndarray,
    has_loc: bool,
    codes_out: np.ndarray,
    params_out: np.ndarray,
    store: bool,
    final: bool,
) -> None:
    """:func:`run_serial` with the streams split into ``groups`` running in parallel.

    Streams never interact, so each thread owns a group for the whole chunk: one fork/join
    per chunk, none per sample.
    """
    batch = st.x.shape[0]
    t0 = st.clock[0]
    fed = np.zeros(groups, np.int64)
    for g in prange(groups):
        fed[g] = _run_group(
            net, head, st, g * batch // groups, (g + 1) * batch // groups, t0, steps,
            feed_first, forced, uniforms, loc, has_loc, codes_out, params_out, store, final,
        )  # fmt: skip
    st.clock[0] = t0 + fed[0]


@njit(parallel=True, **J)
def _layers_parallel(
    net: Net, st: State, loc: np.ndarray, has_loc: bool, s: int, b: int, t: int, blocks: int
) -> None:
    """Every layer of stream ``b`` with its output columns split over ``blocks`` threads.

    Two fork/joins per layer: (filter, gate) column pairs -> 2z; then the skip and residual
    columns. Block edges are multiples of 16 columns so every block's loops stay aligned.
    """
    ring, x, h, z2, skip, acc, bias = st.ring, st.x, st.h, st.z2, st.skip, st.acc, st.bias
    conv_w, conv_s, skip_w, skip_s = net.conv_w, net.conv_s, net.skip_w, net.skip_s
    res_w, res_s, res_b = net.res_w, net.res_s, net.res_b
    ring_off, ring_len, dil = net.ring_off, net.ring_len, net.dil
    k_size, n, n_res = net.kernel, dil.shape[0], net.n_res
    batch = x.shape[0]
    rtot = ring.shape[0] // batch
    d = z2.shape[1]
    for l in range(n):
        r = ring_len[l]
        cur = t % r
        base = b * rtot + ring_off[l]
        _conv_in(b, base + cur, b * n + l, (s * batch + b) * n + l, ring, x, h, bias, loc,
                 has_loc)
        for j in prange(blocks):
            c0 = (j * d // blocks) // 16 * 16
            c1 = d if j == blocks - 1 else ((j + 1) * d // blocks) // 16 * 16
            _conv_taps(b, l, cur, k_size, base, r, dil[l], ring, conv_w, conv_s, h, acc, c0,
                       c1)
            _conv_taps(b, l, cur, k_size, base, r, dil[l], ring, conv_w, conv_s, h, acc,
                       d + c0, d + c1)
            _gate(b, h, z2, c0, c1)
        has_res = l < n_res
        width = skip.shape[1] + (x.shape[1] if has_res else 0)
        for j in prange(blocks):
            o0 = (j * width // blocks) // 16 * 16
            o1 = width if j == blocks - 1 else ((j + 1) * width // blocks) // 16 * 16
            _res_skip(b, l, has_res, z2, skip, skip_w, skip_s, x, res_w, res_s, res_b, acc,
                      o0, o1)


@njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def run_channels(
    net: Net,
    head: Head,
    st: State,
    blocks: int,
    steps: int,
    feed_first: bool,
    forced: np.ndarray,
    uniforms: np.ndarray,
    loc: np.ndarray,
    has_loc: bool,
    codes_out: np.ndarray,
    params_out: np.ndarray,
    store: bool,
    final: bool,
) -> None:
    """:func:`run_serial` with every layer's output columns shared among ``blocks`` threads.

    For big layers at batch 1 (the NSynth decoder: 1.5 M weights in one dilated conv), where
    two fork/joins per layer are small next to the layer's arithmetic.
    """
    batch = st.x.shape[0]
    params, probs, bits, pow2 = st.params, st.probs, st.bits, st.pow2
    t = st.clock[0]
    for s in range(steps):
        feed = feed_first or not (final and s == steps - 1)
        if not feed_first:
            for b in range(batch):
                _record(head, params, probs, bits, pow2, b, s, uniforms, codes_out, params_out,
                        store)
        if feed:
            if feed_first:
                _feed(net, st, 0, batch, t, forced, s, head.input_map, False)
            else:
                _feed(net, st, 0, batch, t, codes_out, s, head.input_map, True)
            for b in range(batch):
                _layers_parallel(net, st, loc, has_loc, s, b, t, blocks)
            _output(net, st, 0, batch)
            t += 1
        if feed_first:
            for b in range(batch):
                _record(head, params, probs, bits, pow2, b, s, uniforms, codes_out, params_out,
                        store)
    st.clock[0] = t
