"""Fréchet distance between embedding statistics: FAD (Kilgour et al. 2019) for any embedding.

Each set of embeddings ``[N, D]`` is summarised by a Gaussian (mean ``mu``, covariance ``S``),
and two sets are compared by the Fréchet (2-Wasserstein) distance between those Gaussians
(Dowson & Landau 1982)::

    d^2 = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

The value depends on the embedding (always reported as ``fad[<embedding>]``) and is biased
upwards for small sets (the covariance estimates are noisy: two disjoint samples of the *same*
distribution score above zero, more so as ``D / N`` grows), so only compare FADs computed with
the same embedding and similar set sizes; the report carries both ``n``.

Numerics: ``(S_1 S_2)^(1/2)`` is computed with :func:`scipy.linalg.sqrtm` in float64. When the
product is singular (``N <= D``, or collinear features) sqrtm can return non-finite values or a
large residual; then ``eps * I`` is added to both covariances and the root retried (the fix of
the reference FID code). A complex result is accepted only when its imaginary part is round-off
(relative to the real part), and the real part is kept. Rounding may leave a tiny negative total,
which is clipped to zero.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.stats


@dataclass(frozen=True)
class GaussianStats:
    """Mean ``mu`` ``[D]``, covariance ``sigma`` ``[D, D]`` (float64) of ``n`` samples."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


def gaussian_stats(embeddings: np.ndarray) -> GaussianStats:
    """Sample mean and unbiased covariance of ``embeddings`` ``[N, D]`` (``N >= 2``)."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need embeddings [N >= 2, D], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return GaussianStats(x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False)), x.shape[0])


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """scipy's sqrtm without its singular-matrix warning: the residual is checked instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        with np.errstate(all="ignore"):
            return scipy.linalg.sqrtm(a)


def _sqrtm_residual(root: np.ndarray, a: np.ndarray) -> float:
    return float(np.linalg.norm(root @ root - a) / max(np.linalg.norm(a), 1e-300))


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray, eps: float = 1e-6) -> float:
    """``tr((S_1 S_2)^(1/2))`` for covariance matrices ``[D, D]``, with the numerical care above.

    ``S_1 S_2`` is similar to the PSD matrix ``S_1^(1/2) S_2 S_1^(1/2)``, so its eigenvalues are
    real and non-negative and its principal square root has a real, non-negative trace.
    """
    product = s1 @ s2
    root = _sqrtm(product)
    if not np.isfinite(root).all() or _sqrtm_residual(root, product) > 1e-4:
        offset = np.eye(s1.shape[0]) * eps
        product = (s1 + offset) @ (s2 + offset)
        root = _sqrtm(product)
        if not np.isfinite(root).all():
            raise FloatingPointError("matrix square root failed even with an eps offset")
    if np.iscomplexobj(root):
        imag = np.abs(np.diagonal(root).imag).max()
        scale = max(1.0, np.abs(np.diagonal(root).real).max())
        if imag > 1e-3 * scale:
            raise FloatingPointError(f"matrix square root has an imaginary part of {imag:.3g}")
        root = root.real
    return float(np.trace(root))


def frechet_distance(a: GaussianStats, b: GaussianStats, eps: float = 1e-6) -> float:
    """Fréchet distance ``d^2`` (squared units of the embedding) between two Gaussians."""
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"embedding sizes differ: {a.mu.shape} vs {b.mu.shape}")
    diff = a.mu - b.mu
    tr = trace_sqrt_product(a.sigma, b.sigma, eps)
    d2 = float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * tr)
    return max(d2, 0.0)


def fad_from_embeddings(generated: np.ndarray, reference: np.ndarray) -> float:
    """FAD between two embedding sets ``[N_g, D]`` and ``[N_r, D]``."""
    return frechet_distance(gaussian_stats(generated), gaussian_stats(reference))


# ------------------------------------------------------------------ small sets: intervals, FAD-inf

#: Below this many samples (or below the embedding's dimension) FAD's bias dominates: a warning.
SMALL_N = 500


def fad_samples(x: np.ndarray, y: np.ndarray) -> float:
    """FAD of two sample sets ``[m, D]``, ``[n, D]``, exact also when ``min(m, n) <= D``.

    With centred rows ``X``, ``Y`` the non-zero eigenvalues of ``S_x S_y`` are the squared singular
    values of ``X Y^T / sqrt((m-1)(n-1))`` ``[m, n]``, so ``tr((S_x S_y)^(1/2))`` is that matrix's
    nuclear norm: no matrix square root and no ``eps`` offset for rank-deficient covariances.
    Used for bootstrap replicates and FAD-inf, where sets are resampled many times.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    m, n, d = len(x), len(y), x.shape[1]
    xc, yc = x - x.mean(0), y - y.mean(0)
    diff = x.mean(0) - y.mean(0)
    tr_x = float((xc ** 2).sum()) / (m - 1)
    tr_y = float((yc ** 2).sum()) / (n - 1)
    if min(m, n) > d:
        # Same identity with square-root factors S = L L^T (from eigh): the eigenvalues of
        # S_x S_y are the squared singular values of L_x^T L_y [D, D]; ~20x faster than sqrtm.
        lx, ly = _psd_factor(xc.T @ xc / (m - 1)), _psd_factor(yc.T @ yc / (n - 1))
        nuclear = float(np.linalg.svd(lx.T @ ly, compute_uv=False).sum())
    else:
        nuclear = float(np.linalg.svd(xc @ yc.T, compute_uv=False).sum())
        nuclear /= math.sqrt((m - 1) * (n - 1))
    return max(float(diff @ diff) + tr_x + tr_y - 2.0 * nuclear, 0.0)


def _psd_factor(s: np.ndarray) -> np.ndarray:
    """``L`` with ``L L^T = S`` for a symmetric PSD ``S`` ``[D, D]`` (negative round-off -> 0)."""
    w, v = np.linalg.eigh(s)
    return v * np.sqrt(np.clip(w, 0.0, None))


def fad_interval(x: np.ndarray, y: np.ndarray, *, resamples: int = 200, level: float = 0.95,
                 seed: int = 0) -> list[float]:
    """Percentile-bootstrap interval ``[lo, hi]`` of FAD, resampling the rows of both sets.

    It shows how much FAD moves with the draw of the sets; it does *not* remove FAD's bias (an
    interval far above 0 for two draws of one distribution is that bias, see :func:`fad_inf`).
    """
    value = fad_samples(x, y)
    if resamples <= 0:
        return [value, value]
    rng = np.random.default_rng(seed)
    reps = [fad_samples(x[rng.integers(0, len(x), len(x))], y[rng.integers(0, len(y), len(y))])
            for _ in range(resamples)]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return [float(min(lo, value)), float(max(hi, value))]


def fad_inf(x: np.ndarray, y: np.ndarray, *, points: int = 15, n_min: int | None = None,
            n_max: int | None = None, level: float = 0.95, seed: int = 0) -> dict[str, object]:
    """FAD-infinity (Chong & Forsyth 2019): FAD extrapolated to infinitely many samples.

    FAD's bias is ~ c / N for N samples, so FAD is computed at ``points`` sizes N from ``n_min``
    to ``n_max`` (default: the larger set, at least 2 D; and a tenth of that), each time drawing
    N rows *with replacement* from each set (frame embeddings: every frame a row), and a line
    ``FAD = a + b / N`` is fitted by least squares. The intercept ``a`` is the score; ``ci`` is
    ``a`` +- the normal quantile times its standard error from the fit. What it estimates is the
    distance between the two *empirical* distributions, so a set of 18 clips still carries the
    luck of its draw, but no longer the covariance bias.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    d = x.shape[1]
    hi = int(n_max or min(50_000, max(len(x), len(y), 2 * d)))
    lo = int(n_min or max(2, hi // 10))
    rng = np.random.default_rng(seed)
    ns = np.unique(np.linspace(lo, hi, points).astype(int))
    vals = np.array([fad_samples(x[rng.integers(0, len(x), k)], y[rng.integers(0, len(y), k)])
                     for k in ns])
    design = np.stack([np.ones(len(ns)), 1.0 / ns], axis=1)
    coef, *_ = np.linalg.lstsq(design, vals, rcond=None)
    resid = vals - design @ coef
    dof = max(len(ns) - 2, 1)
    cov = (resid @ resid / dof) * np.linalg.pinv(design.T @ design)
    z = float(scipy.stats.norm.ppf(0.5 + level / 2.0))
    se = math.sqrt(max(cov[0, 0], 0.0))
    a = float(coef[0])
    return {"value": a, "ci": [a - z * se, a + z * se], "n": [len(x), len(y)],
            "slope": float(coef[1]), "sizes": [int(k) for k in ns],
            "fads": [float(v) for v in vals], "level": level}


def small_n_warning(name: str, n: int, dim: int) -> str | None:
    """The warning printed when ``n`` samples are too few for an unbiased-looking FAD."""
    if n >= SMALL_N and n >= dim:
        return None
    why = [f"n={n} < {SMALL_N}"] if n < SMALL_N else []
    if n < dim:
        why.append(f"n={n} < embedding dimension {dim}")
    return (f"{name}: {' and '.join(why)}: FAD is biased upwards at this n (noisy covariances; "
            "two draws of one distribution score > 0 and the bias depends on the set), so it "
            "may misrank sets; compare kid[...] (unbiased, with an interval) or fad_inf[...]")
