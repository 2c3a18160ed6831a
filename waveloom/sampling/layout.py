"""The packed layout the fast engine's kernels run on: :class:`Net` (weights), :class:`Head`
(the draw) and :class:`State` (per-stream caches), as plain NamedTuples of numpy arrays.

Kept apart from :mod:`waveloom.sampling.numba_kernels` so the C backend
(:mod:`waveloom.sampling.cbuild`), which reads the same arrays, runs without importing numba
(a few hundred ms of every ``generate``'s start-up); the numba kernels take these types as
they are. Layouts: see the numba_kernels module docstring.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CATEGORICAL = 0
LOGISTIC_MIXTURE = 1
#: One discretised Gaussian (ClariNet's teacher): the kernels get the standard normal deviate
#: Phi^-1(u), computed by torch as the reference head does, in the uniform's place.
GAUSSIAN = 2


class Net(NamedTuple):
    """Packed weights of one stack + output layers (see the module docstring for layout).

    n = layers, K = kernel, C = residual channels, D = dilation channels, S = skip, E = end,
    P = head parameters, V = input levels. ``*_w`` are float32 or int8, ``*_s`` float32
    per-column scales (ones for float32 weights).
    """

    in_table: np.ndarray  # [K, V + 1, C]
    in_b: np.ndarray  # [C]
    conv_w: np.ndarray  # [n * K, C, 2D]: matrix l*K + k is tap k of layer l
    conv_s: np.ndarray  # [n * K, 2D]
    res_w: np.ndarray  # [n, D, C]  (last layer: zeros, unused)
    res_s: np.ndarray  # [n, C]
    res_b: np.ndarray  # [n, C]
    skip_w: np.ndarray  # [n, D, S]
    skip_s: np.ndarray  # [n, S]
    skip_b: np.ndarray  # [S]
    out1_w: np.ndarray  # [1, S, E]
    out1_s: np.ndarray  # [1, E]
    out1_b: np.ndarray  # [E]
    out2_w: np.ndarray  # [1, E, P]
    out2_s: np.ndarray  # [1, P]
    out2_b: np.ndarray  # [P]
    dil: np.ndarray  # [n] int64
    ring_off: np.ndarray  # [n] int64: first ring row of layer l (within a stream)
    ring_len: np.ndarray  # [n] int64: (K-1)*d + 1
    kernel: int  # K
    n_res: int  # layers with a residual 1x1 (all but the last)
    scaled: bool  # int8 weights with per-column scales


class Head(NamedTuple):
    """How to turn parameters into a code, and a code into the next input."""

    kind: int  # CATEGORICAL | LOGISTIC_MIXTURE | GAUSSIAN
    temperature: np.float32
    tempered: bool  # temperature != 1 (the mixture head only tempers then)
    log_temperature: np.float32
    components: int
    levels: int
    log_scale_min: np.float32
    input_map: np.ndarray  # [levels] int32: output code -> input code


class State(NamedTuple):
    """Per-stream caches and scratch for B streams; allocated once per generation."""

    ring: np.ndarray  # [B * sum(ring_len), C]: stream b's rings start at row b * sum
    codes: np.ndarray  # [B, K] int32: input code ring (t mod K)
    clock: np.ndarray  # [1] int64: inputs fed so far (the next input's time index)
    bias: np.ndarray  # [B * n, 2D]: conv bias + global conditioning, gate half halved
    x: np.ndarray  # [B, C]
    h: np.ndarray  # [B, 2D]
    z2: np.ndarray  # [B, D]
    skip: np.ndarray  # [B, S]
    hid: np.ndarray  # [B, E]
    params: np.ndarray  # [B, P]
    probs: np.ndarray  # [B, P]  draw scratch
    bits: np.ndarray  # [B, P] int32 draw scratch: exponent bits of 2^n ...
    pow2: np.ndarray  # [B, P] float32: ... read back as floats (a view of ``bits``)
    acc: np.ndarray  # [B, max width]  int8 accumulation scratch
    nz: np.ndarray  # [B, max(S, E)] int64: indices of the non-zero inputs of a ReLU'd layer
