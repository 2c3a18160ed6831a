"""The n-gram baseline of benchmarks/symbolic_nll.py: a proper distribution."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from symbolic_nll import WittenBell  # noqa: E402

from waveloom.data.events import VOCAB_SIZE  # noqa: E402


@pytest.mark.parametrize("n", [1, 2, 3])
def test_witten_bell_sums_to_one_and_prefers_what_it_saw(n):
    rng = np.random.default_rng(0)
    pieces = [np.tile([389, 60, 300, 188], 20), rng.integers(0, 388, 50)]
    gram = WittenBell(pieces, n)
    for context in [(), (60,), (389, 60), (5, 7)]:
        total = sum(gram.prob(context, t) for t in range(VOCAB_SIZE))
        assert total == pytest.approx(1.0, abs=1e-9)
    assert gram.prob((389, 60)[-(n - 1):] if n > 1 else (), 300) > 10 / VOCAB_SIZE
    bits, count = gram.bits([np.tile([389, 60, 300, 188], 5)])
    assert count == 19 and bits < np.log2(VOCAB_SIZE)
