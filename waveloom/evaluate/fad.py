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

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg


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
