"""Codebook interleaving patterns for a codec token LM (issue #24): each round-trips exactly,
and the delay pattern puts codebook k of frame t at step t + k with pads on the ramps."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from waveloom.data.code_patterns import PATTERNS, apply, revert, steps
from waveloom.errors import ConfigError

PAD = 1024


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 3), k=st.integers(1, 6), t=st.integers(1, 20),
       pattern=st.sampled_from(PATTERNS))
def test_every_pattern_round_trips(b, k, t, pattern):
    codes = torch.randint(0, 1024, (b, k, t))
    tokens = apply(codes, pattern, PAD)
    assert tokens.shape[-1] == steps(pattern, k, t)
    assert torch.equal(revert(tokens, pattern, k), codes)


def test_delay_puts_codebook_k_of_frame_t_at_step_t_plus_k():
    codes = torch.arange(12).reshape(1, 3, 4)  # K = 3, T = 4
    tokens = apply(codes, "delay", PAD)
    assert tokens.tolist() == [[[0, 1, 2, 3, PAD, PAD],
                                [PAD, 4, 5, 6, 7, PAD],
                                [PAD, PAD, 8, 9, 10, 11]]]
    assert apply(codes, "flattened", PAD)[0, 0, :6].tolist() == [0, 4, 8, 1, 5, 9]


def test_bad_pattern_and_shapes_are_one_line():
    with pytest.raises(ConfigError, match="use one of flattened, parallel, delay"):
        apply(torch.zeros(1, 2, 3, dtype=torch.long), "zigzag", PAD)
    with pytest.raises(ConfigError, match="whole frames"):
        revert(torch.zeros(1, 1, 7, dtype=torch.long), "flattened", 2)
