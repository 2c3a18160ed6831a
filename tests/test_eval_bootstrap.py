"""Bootstrap intervals: coverage on a known distribution, shrinkage with n, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from waveloom.evaluate.bootstrap import bootstrap_mean


def test_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    trials, hits = 300, 0
    for t in range(trials):
        x = rng.normal(loc=2.0, scale=3.0, size=60)
        ci = bootstrap_mean(x, resamples=400, seed=t)
        hits += ci.low <= 2.0 <= ci.high
    # Percentile intervals undercover slightly at n=60; binomial sd of the rate is ~1.3 %.
    assert 0.88 <= hits / trials <= 0.99


def test_interval_matches_normal_theory_and_shrinks_like_one_over_sqrt_n():
    rng = np.random.default_rng(1)
    small = bootstrap_mean(rng.normal(size=100), resamples=2000)
    large = bootstrap_mean(rng.normal(size=10000), resamples=2000)
    width_small, width_large = small.high - small.low, large.high - large.low
    assert width_small == pytest.approx(2 * 1.96 / math.sqrt(100), rel=0.2)
    assert width_small / width_large == pytest.approx(10.0, rel=0.2)


def test_bernoulli_scores_give_an_interval_inside_0_1_around_the_rate():
    flags = np.r_[np.ones(45), np.zeros(5)]
    ci = bootstrap_mean(flags, resamples=1000)
    assert ci.mean == 0.9 and 0.79 <= ci.low < 0.9 < ci.high <= 1.0
    assert ci.n == 50 and ci.level == 0.95


def test_seeded_and_degenerate_cases():
    x = np.arange(10.0)
    assert bootstrap_mean(x, seed=3) == bootstrap_mean(x, seed=3)
    one = bootstrap_mean([4.0])
    assert (one.mean, one.low, one.high, one.n) == (4.0, 4.0, 4.0, 1)
    off = bootstrap_mean(x, resamples=0)
    assert off.low == off.high == off.mean == 4.5
    empty = bootstrap_mean([])
    assert empty.n == 0 and math.isnan(empty.mean)
    const = bootstrap_mean(np.full(20, 3.0))
    assert const.low == const.high == 3.0
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_mean([1.0, math.inf])
    with pytest.raises(ValueError):
        bootstrap_mean(x, level=1.5)


def test_wilson_interval_stays_honest_at_the_edges():
    """17/17 is not certainty: Wilson gives [0.82, 1] where a bootstrap collapses to [1, 1]."""
    from waveloom.evaluate.bootstrap import wilson_interval

    low, high = wilson_interval(17, 17)
    assert low == pytest.approx(0.8157, abs=1e-3) and high == pytest.approx(1.0)
    low, high = wilson_interval(150, 174)
    assert low < 150 / 174 < high and low == pytest.approx(0.803, abs=1e-3)
    assert wilson_interval(0, 21)[0] == 0.0
    with pytest.raises(ValueError):
        wilson_interval(5, 4)
