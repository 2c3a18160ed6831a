"""Reconstruction metrics for paired clips: multi-scale spectral distance and SI-SDR.

For autoencoders and vocoders the output has a ground truth: the input it was made from. Files
are paired by name (``x.wav`` in the generated folder with the reference clip named ``x``), so
``waveloom decode`` output and its source folder can be compared directly. Both metrics are
per pair and then averaged (with a bootstrap interval):

* multi-scale spectral distance (DDSP;
  :func:`waveloom.audio.spectral.multiscale_spectral_distance`), blind to phase, so it
  scores what is heard rather than sample alignment;
* SI-SDR (Le Roux et al. 2019) in dB: the reference is scaled to best fit the estimate
  (``alpha = <s_hat, s> / |s|^2``) and the energy of ``alpha s`` is compared with the residual.
  It is invariant to the estimate's gain but requires sample alignment; a reconstruction with a
  constant delay or a flipped phase scores badly here and fine on the spectral distance.

Pairs of different lengths are compared over the shorter one (and counted in the report).
"""

from __future__ import annotations

import math

import numpy as np

from waveloom.errors import DataError


def si_sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = 1e-12) -> float:
    """Scale-invariant signal-to-distortion ratio (dB) of ``estimate`` vs ``reference`` ``[T]``.

    Both are mean-removed first, as in the paper. A silent reference has no defined SI-SDR and
    gives -inf (no scaling of silence explains a non-silent estimate).
    """
    s = np.asarray(reference, np.float64)
    e = np.asarray(estimate, np.float64)
    if s.shape != e.shape:
        raise ValueError(f"si_sdr needs equal shapes, got {s.shape} and {e.shape}")
    s = s - s.mean()
    e = e - e.mean()
    energy = float(s @ s)
    if energy <= eps:
        return -math.inf
    target = (float(e @ s) / energy) * s
    noise = e - target
    return 10.0 * math.log10(max(float(target @ target), eps) / max(float(noise @ noise), eps))


def pair_by_name(generated, reference) -> list[tuple[int, int]]:
    """``(generated index, reference index)`` for every generated clip, matched by name.

    A name matches exactly, or by its last path component (``out/x`` pairs with ``x``). Every
    generated clip must find its reference; unmatched references are fine (a subset was
    reconstructed).
    """
    by_name = {name: j for j, name in enumerate(reference.names)}
    by_base: dict[str, int] = {}
    for j, name in enumerate(reference.names):
        by_base.setdefault(name.rsplit("/", 1)[-1], j)
    pairs, missing = [], []
    for i, name in enumerate(generated.names):
        j = by_name.get(name, by_base.get(name.rsplit("/", 1)[-1]))
        if j is None:
            missing.append(name)
        else:
            pairs.append((i, j))
    if missing:
        raise DataError(
            f"{generated.description}: {len(missing)} clip(s) have no same-named reference in "
            f"{reference.description} (e.g. {missing[0]!r}); spectral metrics pair files by name"
        )
    return pairs


def reconstruction_scores(generated, reference) -> dict[str, list[float] | int]:
    """Per-pair multi-scale spectral distance and SI-SDR (dB) of name-paired clips."""
    from waveloom.audio.spectral import multiscale_spectral_distance

    if generated.sample_rate != reference.sample_rate:
        raise ValueError("both sets must be read at the same sample rate")
    mss, sdr, mismatched = [], [], 0
    for i, j in pair_by_name(generated, reference):
        est, ref = generated.clip(i), reference.clip(j)
        n = min(len(est), len(ref))
        mismatched += int(len(est) != len(ref))
        est, ref = est[:n], ref[:n]
        mss.append(float(multiscale_spectral_distance(ref.astype(np.float32),
                                                      est.astype(np.float32))))
        sdr.append(si_sdr(ref, est))
    return {"mss": mss, "si_sdr": sdr, "length_mismatches": mismatched}
