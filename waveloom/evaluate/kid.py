"""KID and KAD: the unbiased squared MMD with a cubic polynomial or a Gaussian kernel.

Why beside FAD: FAD fits a Gaussian to each set, and its covariance estimate is noisy when the
set has fewer clips than the embedding has dimensions (18 clips in a 256-d CREPE space), so FAD
is biased upwards by an amount that depends on ``n`` and on the set itself: at n = 18 two draws
of real notes can score farther apart than real notes and white noise. KID is an *unbiased*
U-statistic: two draws of one distribution average exactly 0 at any ``n`` (single values scatter
around 0 and may be negative), so its interval says whether a difference is real.

    k(x, y) = (x . y / d + 1)^3                                   (x, y in R^d)
    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
              - 2 sum_{i, j} k(x_i, y_j) / (m n)

The value is the mean of MMD^2_u over ``subsets`` random subsets of ``subset_size`` rows of each
set (the paper's 100 x 1000); a set no larger than ``subset_size`` is used whole, where every
subset would be the same. The interval is a percentile bootstrap over rows of both sets: each
replicate reweights the rows by their multinomial counts and leaves out pairs of copies of one
row (a row paired with its own copy would add ``k(x, x)`` terms, which the U-statistic
excludes), so the replicates stay unbiased. Sets above ``max_bootstrap`` rows are bootstrapped
on a fixed random subsample of that size and the interval is shifted to the full value (wider
than necessary, never narrower).

KAD (kernel audio distance; Chung et al. 2025) is the same estimator with a Gaussian kernel
``k(x, y) = exp(-|x - y|^2 / (2 s^2))`` whose bandwidth ``s`` is the median pairwise distance
of the *reference* rows (the median heuristic; Gretton et al. 2012). Why a second kernel: the
cubic kernel's feature space is dominated by the directions of largest norm, so a difference
confined to low-variance directions (timbre under CREPE's pitch axes) barely moves it, while a
Gaussian kernel at the data's own scale is characteristic (MMD = 0 only for equal
distributions). Why the reference alone sets ``s``: then every generated set is measured with
one kernel against a given reference, so their KADs compare.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: ``(x [m, d], y [n, d]) -> [m, n]`` kernel matrix (float64).
Kernel = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Rows per bootstrap chunk (bounds memory of the ``[chunk, n]`` count matrices).
_CHUNK = 100


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(x y^T / d + 1)^3`` for ``x [m, d]``, ``y [n, d]`` -> ``[m, n]`` (float64)."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def gaussian_kernel(bandwidth: float) -> Kernel:
    """``exp(-|x - y|^2 / (2 bandwidth^2))`` as a kernel ``(x [m, d], y [n, d]) -> [m, n]``."""
    scale = 1.0 / (2.0 * float(bandwidth) ** 2)

    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        sq = (x ** 2).sum(1)[:, None] + (y ** 2).sum(1)[None, :] - 2.0 * (x @ y.T)
        return np.exp(-np.maximum(sq, 0.0) * scale)

    return kernel


def median_bandwidth(y: np.ndarray, max_rows: int = 1000, seed: int = 0) -> float:
    """Median Euclidean distance between distinct rows of ``y [n, d]`` (at most ``max_rows``
    rows, a fixed random subset beyond that); 1.0 when every row is the same."""
    y = np.asarray(y, np.float64)
    if len(y) > max_rows:
        y = y[np.random.default_rng(seed).choice(len(y), max_rows, replace=False)]
    sq = (y ** 2).sum(1)[:, None] + (y ** 2).sum(1)[None, :] - 2.0 * (y @ y.T)
    dist = np.sqrt(np.maximum(sq[np.triu_indices(len(y), 1)], 0.0))
    med = float(np.median(dist)) if dist.size else 0.0
    return med if med > 0.0 else 1.0


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, kernel: Kernel = polynomial_kernel) -> float:
    """The unbiased MMD^2 of ``x [m, d]`` and ``y [n, d]`` (``m, n >= 2``) under ``kernel``."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    m, n = len(x), len(y)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def _check(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"KID needs {name} embeddings [N >= 2, D], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} embeddings contain NaN or infinite values")
    return x


def _subset_mean(x: np.ndarray, y: np.ndarray, subsets: int, size: int,
                 rng: np.random.Generator, kernel: Kernel) -> float:
    if max(len(x), len(y)) <= size:
        return mmd2_unbiased(x, y, kernel)
    vals = []
    for _ in range(subsets):
        ix = rng.choice(len(x), min(size, len(x)), replace=False)
        iy = rng.choice(len(y), min(size, len(y)), replace=False)
        vals.append(mmd2_unbiased(x[ix], y[iy], kernel))
    return float(np.mean(vals))


def _bootstrap(x: np.ndarray, y: np.ndarray, resamples: int, rng: np.random.Generator,
               kernel: Kernel) -> np.ndarray:
    """``resamples`` replicate MMD^2_u values with copies of one row never paired."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    np.fill_diagonal(kxx, 0.0)
    np.fill_diagonal(kyy, 0.0)
    out = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - start)
        cx = rng.multinomial(m, np.full(m, 1.0 / m), size=b).astype(np.float64)  # [b, m]
        cy = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)  # [b, n]
        # Ordered pairs of distinct rows: m^2 - sum c_i^2 (pairs among copies of one row left out).
        pxx = np.maximum(m * m - (cx ** 2).sum(1), 1.0)
        pyy = np.maximum(n * n - (cy ** 2).sum(1), 1.0)
        sxx = np.einsum("bi,ij,bj->b", cx, kxx, cx) / pxx
        syy = np.einsum("bi,ij,bj->b", cy, kyy, cy) / pyy
        sxy = np.einsum("bi,ij,bj->b", cx, kxy, cy) / (m * n)
        out[start : start + b] = sxx + syy - 2.0 * sxy
    return out


def kid(x: np.ndarray, y: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
        resamples: int = 1000, level: float = 0.95, seed: int = 0,
        max_bootstrap: int = 2000) -> dict[str, object]:
    """KID of ``x [m, d]`` (generated) against ``y [n, d]`` (reference) with an interval.

    Returns ``{"value", "ci": [lo, hi], "n": [m, n], "level", "resamples", "subset_size"}``;
    ``ci`` equals ``[value, value]`` when ``resamples == 0``.
    """
    x, y = _check(x, "generated"), _check(y, "reference")
    return _mmd_entry(x, y, polynomial_kernel, subsets=subsets, subset_size=subset_size,
                      resamples=resamples, level=level, seed=seed, max_bootstrap=max_bootstrap)


def kad(x: np.ndarray, y: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
        resamples: int = 1000, level: float = 0.95, seed: int = 0,
        max_bootstrap: int = 2000) -> dict[str, object]:
    """KAD of ``x [m, d]`` against ``y [n, d]``: :func:`kid`'s estimator, interval and JSON
    shape with a Gaussian kernel at the reference's median pairwise distance (``"bandwidth"``).
    """
    x, y = _check(x, "generated"), _check(y, "reference")
    bandwidth = median_bandwidth(y, seed=seed)
    out = _mmd_entry(x, y, gaussian_kernel(bandwidth), subsets=subsets,
                     subset_size=subset_size, resamples=resamples, level=level, seed=seed,
                     max_bootstrap=max_bootstrap)
    out["bandwidth"] = bandwidth
    return out


def _mmd_entry(x: np.ndarray, y: np.ndarray, kernel: Kernel, *, subsets: int, subset_size: int,
               resamples: int, level: float, seed: int, max_bootstrap: int
               ) -> dict[str, object]:
    """Subset-mean MMD^2_u under ``kernel`` and its percentile-bootstrap interval."""
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"embedding sizes differ: {x.shape[1]} vs {y.shape[1]}")
    rng = np.random.default_rng(seed)
    value = _subset_mean(x, y, subsets, subset_size, rng, kernel)
    lo = hi = value
    if resamples > 0:
        bx, by = x, y
        if len(x) > max_bootstrap:
            bx = x[rng.choice(len(x), max_bootstrap, replace=False)]
        if len(y) > max_bootstrap:
            by = y[rng.choice(len(y), max_bootstrap, replace=False)]
        shift = value - (mmd2_unbiased(bx, by, kernel) if (bx is not x or by is not y)
                         else value)
        reps = _bootstrap(bx, by, resamples, rng, kernel) + shift
        alpha = (1.0 - level) / 2.0
        q_lo, q_hi = np.quantile(reps, [alpha, 1.0 - alpha])
        lo, hi = float(min(q_lo, value)), float(max(q_hi, value))
    return {"value": value, "ci": [lo, hi], "n": [len(x), len(y)], "level": level,
            "resamples": resamples, "subset_size": min(subset_size, max(len(x), len(y)))}
