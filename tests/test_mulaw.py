"""waveloom.audio.mulaw against the G.711 formula, and the quantiser's invariants.

Centre code: 256 levels cannot include an exact zero. Code ``q`` stands for the companded value
``2 q / 255 - 1``, so zero falls half-way between codes 127 and 128 and rounds half up to 128,
which decodes to ``+((1 + mu) ** (1 / mu) - 1) / mu = 8.6e-5`` (-81 dBFS); code 127 is its
mirror image. Silence is therefore a constant stream of 128s.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from waveloom.audio.mulaw import MU, dequantize, mulaw_decode, mulaw_encode, quantize

GRID = np.linspace(-1.0, 1.0, 200_001, dtype=np.float64)


def formula_encode(x: np.ndarray, mu: int = MU) -> np.ndarray:
    return np.sign(x) * np.log(1.0 + mu * np.abs(x)) / np.log(1.0 + mu)


def formula_decode(y: np.ndarray, mu: int = MU) -> np.ndarray:
    return np.sign(y) * ((1.0 + mu) ** np.abs(y) - 1.0) / mu


@pytest.mark.parametrize("mu", [255, 15])
def test_encode_decode_match_the_formula_in_numpy_and_torch(mu):
    x32 = GRID.astype(np.float32)
    ref = formula_encode(x32.astype(np.float64), mu)
    enc_np = mulaw_encode(x32, mu)
    enc_t = mulaw_encode(torch.from_numpy(x32), mu)
    assert enc_np.dtype == np.float32 and enc_t.dtype == torch.float32
    assert np.abs(enc_np - ref).max() < 1e-6
    assert np.abs(enc_t.numpy() - ref).max() < 1e-6
    assert np.abs(enc_np - enc_t.numpy()).max() < 1e-6
    ref_dec = formula_decode(ref, mu)
    assert np.abs(mulaw_decode(ref.astype(np.float32), mu) - ref_dec).max() < 1e-6
    assert np.abs(mulaw_decode(torch.from_numpy(ref), mu).numpy() - ref_dec).max() < 1e-6


def test_decode_inverts_encode():
    x = GRID.astype(np.float32)
    assert np.abs(mulaw_decode(mulaw_encode(x)) - x).max() < 1e-6
    xt = torch.from_numpy(GRID)  # float64 stays float64 in torch
    assert (mulaw_decode(mulaw_encode(xt)) - xt).abs().max() < 1e-12
    assert mulaw_encode(np.float32(0.0)) == 0.0 and mulaw_decode(np.float32(0.0)) == 0.0


def test_quantize_gives_256_codes_from_0_to_255():
    q = quantize(GRID.astype(np.float32))
    assert q.dtype == np.uint8
    assert q.min() == 0 and q.max() == 255
    assert np.array_equal(np.unique(q), np.arange(256))
    qt = quantize(torch.from_numpy(GRID).float())
    assert qt.dtype == torch.int64
    assert torch.equal(torch.unique(qt), torch.arange(256))


def test_extremes_and_centre_code():
    assert quantize(np.float32(-1.0)) == 0 and quantize(np.float32(1.0)) == 255
    assert quantize(torch.tensor([-1.0, 1.0])).tolist() == [0, 255]
    assert quantize(np.float32(0.0)) == 128 and int(quantize(torch.tensor(0.0))) == 128
    centre = float(dequantize(np.uint8(128)))
    assert centre == pytest.approx(((1 + MU) ** (1 / MU) - 1) / MU, rel=1e-5)
    assert centre == pytest.approx(8.62e-5, rel=1e-3)
    assert float(dequantize(np.uint8(127))) == -centre  # exact mirror image
    assert float(dequantize(torch.tensor(127))) == -float(dequantize(torch.tensor(128)))
    assert float(dequantize(torch.tensor(0))) == -1.0 and float(dequantize(np.uint8(255))) == 1.0
    # out-of-range input is clipped, not wrapped
    assert quantize(np.float32(3.0)) == 255 and quantize(np.float32(-3.0)) == 0


def test_quantize_is_monotonic_and_numpy_matches_torch():
    x = GRID.astype(np.float32)
    q = quantize(x).astype(int)
    assert (np.diff(q) >= 0).all()
    qt = quantize(torch.from_numpy(x)).numpy()
    differ = q != qt
    # float32 log1p may differ in the last ulp between numpy and torch: only at bin edges.
    scaled = (formula_encode(x.astype(np.float64)) + 1) / 2 * MU + 0.5
    assert np.all(np.abs(scaled[differ] - np.round(scaled[differ])) < 1e-4)
    assert np.abs(q - qt).max() <= 1


def test_dequantize_is_the_bin_centre_in_the_companded_domain():
    codes = np.arange(256)
    assert np.allclose(
        mulaw_encode(dequantize(codes.astype(np.uint8))), 2 * codes / MU - 1, atol=1e-6
    )
    assert np.array_equal(quantize(dequantize(codes.astype(np.uint8))), codes)
    assert torch.equal(quantize(dequantize(torch.arange(256))), torch.arange(256))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float32, st.integers(1, 64), elements=st.floats(-1, 1, width=32)))
@example(GRID.astype(np.float32))  # every bin, both sides of every edge
def test_round_trip_error_is_bounded_by_the_bin_width(x):
    q = quantize(x).astype(int)
    x_hat = dequantize(q.astype(np.uint8))
    y_q = 2 * q / MU - 1
    # The linear-domain bin of code q spans the decoded companded interval y_q +- 1/mu.
    lo = formula_decode(np.clip(y_q - 1 / MU, -1, 1))
    hi = formula_decode(np.clip(y_q + 1 / MU, -1, 1))
    assert np.all(x >= lo - 1e-6) and np.all(x <= hi + 1e-6)
    # x_hat is the companded centre of the bin, so the error is at most its distance to the
    # farther bin edge: a little over half the bin in the linear domain (decode is convex), and
    # the whole bin for codes 0 and mu, whose half bins (the range ends at +-1) decode to their
    # outer edge.
    bound = np.maximum(hi - x_hat, x_hat - lo)
    assert np.all(bound <= hi - lo + 1e-7)
    assert np.all(np.abs(x - x_hat) <= bound + 1e-6)
    # ... so never more than the width of the outermost (widest) half bin.
    assert np.abs(x - x_hat).max() <= 1 - formula_decode(1 - 1 / MU) + 1e-6
    # In the companded domain the error is at most half a step.
    assert np.abs(mulaw_encode(x) - y_q).max() <= 1 / MU + 1e-6
    assert math.isfinite(float(np.abs(x_hat).max()))
