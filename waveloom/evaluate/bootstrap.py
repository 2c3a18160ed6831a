"""Percentile-bootstrap confidence intervals for means (per-clip scores, ratings, win rates).

Every number ``waveloom evaluate`` and ``waveloom listen --report`` print that is a mean over
clips or ratings comes with an interval from here, so two models are only called different when
their intervals say so. The percentile bootstrap (Efron & Tibshirani 1993, ch. 13) needs no
normality assumption, which matters for 0/1 scores (accuracy, A/B wins) and for bounded Likert
ratings whose distributions are skewed near the ends of the scale.

Resampling is vectorised (one ``[resamples, n]`` index matrix, chunked to bound memory) and
seeded, so the same inputs always give the same interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

#: Rows of the resampling index matrix drawn at once (bounds memory to ~chunk * n int64s).
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap interval ``[low, high]`` at ``level`` (e.g. 0.95).

    ``low``/``high`` equal ``mean`` when the interval was not computed (``resamples == 0``) or
    is degenerate (a single value); they are NaN only when ``n == 0`` (no data).
    """

    mean: float
    low: float
    high: float
    n: int
    level: float
    resamples: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def __str__(self) -> str:
        if self.resamples == 0 or self.n < 2:
            return f"{self.mean:.4g} (n={self.n})"
        pct = round(100 * self.level)
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}] ({pct}% CI, n={self.n})"


def bootstrap_mean(
    values,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Mean of ``values`` ``[n]`` with a percentile-bootstrap interval.

    Each of ``resamples`` replicates draws ``n`` values with replacement and takes their mean;
    the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those means.
    Non-finite values are an error: a NaN score would silently poison every replicate.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if resamples < 0:
        raise ValueError(f"resamples must be >= 0, got {resamples}")
    n = x.size
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level, resamples)
    if not np.isfinite(x).all():
        raise ValueError("bootstrap_mean got non-finite values; drop or score them first")
    mean = float(x.mean())
    if resamples == 0 or n == 1:
        return Interval(mean, mean, mean, n, level, resamples)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    # The quantiles of a finite replicate set can miss the sample mean by rounding; keep the
    # reported interval consistent with the point estimate.
    return Interval(mean, float(min(low, mean)), float(max(high, mean)), n, level, resamples)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` at ``level``.

    Why not the bootstrap for k-of-n judgements: at 17/17 every resample is 17/17 and the
    percentile interval collapses to [1, 1]; Wilson's stays honest at the edges ([0.82, 1]).
    """
    from statistics import NormalDist

    if n <= 0:
        return math.nan, math.nan
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    z = NormalDist().inv_cdf((1 + level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
