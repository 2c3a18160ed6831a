"""Number of statistically different bins (NDB; Richardson & Weiss 2018), as GANSynth reports.

The reference set is clustered into ``k`` bins by k-means; each generated sample falls into
the bin of its nearest centroid. For a generator that matches the reference distribution, every
bin holds the same proportion of generated and reference samples; a two-proportion z-test per
bin (pooled variance, two-sided, level ``alpha``) counts the bins whose proportions differ.
Mode collapse shows up as a few over-full bins and many empty ones, so NDB catches what a mean
and covariance (FAD) can miss.

``NDB / k`` is reported: about ``alpha`` for two samples of the same distribution (each bin
is a false positive with probability ``alpha``), up to 1 for disjoint ones. Its power grows with
the set sizes: with ``n`` generated clips a bin holds ``n / k`` of them on average, and the
paper's recipe assumes hundreds per bin. With few clips use a smaller ``k``.

Interval: a percentile bootstrap over the *generated* set (the bins, fitted on the reference,
stay fixed): each replicate redraws the generated clips with replacement, recounts the bins
and repeats the test. It shows how much NDB/k and the JS divergence move with the draw of the
generated clips; NDB/k is a count of bins, so the interval moves in steps of ``1 / k``.

Features: by default the log-mel spectrogram *image* of each clip (64 mel bands, 64 ms windows
every 32 ms at 16 kHz, over the first ``seconds``, zero-padded), flattened: k-means in that
space groups notes by pitch, timbre and envelope at once, as k-means on pixels does for images
in the paper. Any embedding (``--ndb-features crepe-tiny`` ...) can be used instead.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc

from waveloom.errors import DataError

#: log-mel image settings at 16 kHz (scaled with the sample rate).
N_MELS = 64
WINDOW_SECONDS = 0.064
HOP_SECONDS = 0.032


def two_proportion_pvalues(count_a: np.ndarray, n_a: int, count_b: np.ndarray, n_b: int
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-values and z of the pooled two-proportion z-test, per bin ``[k]``.

    ``z = (p_a - p_b) / sqrt(p (1 - p) (1/n_a + 1/n_b))`` with ``p`` the pooled proportion; a
    bin empty in both sets has ``z = 0``, ``p-value = 1``.
    """
    pa, pb = count_a / n_a, count_b / n_b
    pooled = (count_a + count_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    z = np.divide(pa - pb, se, out=np.zeros_like(pa, dtype=np.float64), where=se > 0)
    return erfc(np.abs(z) / math.sqrt(2.0)), z


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (bits, in [0, 1]) between two histograms ``[k]``."""
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def ndb(
    reference: np.ndarray,
    generated: np.ndarray,
    *,
    k: int = 50,
    alpha: float = 0.05,
    seed: int = 0,
    resamples: int = 0,
    level: float = 0.95,
) -> dict[str, object]:
    """NDB of ``generated`` ``[N_g, D]`` against ``reference`` ``[N_r, D]``.

    k-means (k-means++ init, 10 restarts, seeded) runs on the reference only, so the bins are
    the reference's modes. Returns NDB, NDB/k, the JS divergence between the two bin histograms,
    ``n`` (``[N_g, N_r]``) and, per bin, both proportions and the p-value; with ``resamples > 0``
    also ``ci`` (of NDB/k) and ``js_ci`` from the bootstrap over generated clips (else both are
    the value itself).
    """
    from sklearn.cluster import KMeans

    ref = np.asarray(reference, dtype=np.float64)
    gen = np.asarray(generated, dtype=np.float64)
    if ref.ndim != 2 or gen.ndim != 2 or ref.shape[1] != gen.shape[1]:
        raise ValueError(f"need [N, D] features of equal D, got {ref.shape} and {gen.shape}")
    if ref.shape[0] < k:
        raise DataError(f"NDB with k={k} bins needs at least {k} reference clips, got "
                        f"{ref.shape[0]}; lower --ndb-k or use a larger reference")
    if gen.shape[0] < 1:
        raise DataError("NDB needs at least one generated clip")
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(ref)
    ref_counts = np.bincount(km.labels_, minlength=k).astype(np.float64)
    gen_bins = km.predict(gen)
    gen_counts = np.bincount(gen_bins, minlength=k).astype(np.float64)
    pvalues, z = two_proportion_pvalues(gen_counts, gen.shape[0], ref_counts, ref.shape[0])
    different = pvalues < alpha
    order = np.argsort(-ref_counts, kind="stable")
    js = js_divergence(gen_counts, ref_counts)
    ci, js_ci = bootstrap_ndb(gen_bins, ref_counts, alpha=alpha, resamples=resamples,
                              level=level, seed=seed)
    return {
        "ndb": int(different.sum()),
        "k": k,
        "ndb_over_k": float(different.mean()),
        "ci": [min(ci[0], float(different.mean())), max(ci[1], float(different.mean()))],
        "alpha": alpha,
        "js_divergence": js,
        "js_ci": [min(js_ci[0], js), max(js_ci[1], js)],
        "n": [int(gen.shape[0]), int(ref.shape[0])],
        "level": level, "resamples": resamples,
        "n_reference": int(ref.shape[0]),
        "n_generated": int(gen.shape[0]),
        "bins": [
            {"reference": float(ref_counts[i] / ref.shape[0]),
             "generated": float(gen_counts[i] / gen.shape[0]),
             "z": float(z[i]), "p_value": float(pvalues[i]), "different": bool(different[i])}
            for i in order
        ],
    }


def bootstrap_ndb(gen_bins: np.ndarray, ref_counts: np.ndarray, *, alpha: float,
                  resamples: int, level: float, seed: int
                  ) -> tuple[list[float], list[float]]:
    """Percentile intervals ``([lo, hi] of NDB/k, [lo, hi] of JS)`` over ``resamples`` redraws
    of the generated clips' bins ``gen_bins [N_g]`` (int) against fixed ``ref_counts [k]``."""
    k, n_g, n_r = len(ref_counts), len(gen_bins), float(ref_counts.sum())
    if resamples <= 0:
        counts = np.bincount(gen_bins, minlength=k).astype(np.float64)
        value = float((two_proportion_pvalues(counts, n_g, ref_counts, n_r)[0] < alpha).mean())
        js = js_divergence(counts, ref_counts)
        return [value, value], [js, js]
    rng = np.random.default_rng(seed)
    draws = gen_bins[rng.integers(0, n_g, size=(resamples, n_g))]  # [R, N_g]
    counts = np.stack([np.bincount(row, minlength=k) for row in draws]).astype(np.float64)
    pvalues = two_proportion_pvalues(counts, n_g, ref_counts[None, :], n_r)[0]  # [R, k]
    ratios = (pvalues < alpha).mean(axis=1)
    jss = np.array([js_divergence(row, ref_counts) for row in counts])
    q = [(1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0]
    return ([float(v) for v in np.quantile(ratios, q)],
            [float(v) for v in np.quantile(jss, q)])


def logmel_images(audio_set, seconds: float, *, progress: bool = True) -> np.ndarray:
    """Flattened log-mel images ``[N, N_MELS * frames]`` of the first ``seconds`` of each clip.

    Clips are cropped or zero-padded to ``seconds``; windows and hops scale with the set's
    sample rate so the image covers the same time-frequency tiles at any rate.
    """
    from tqdm.auto import tqdm

    from waveloom.audio.spectral import mel_spectrogram

    sr = audio_set.sample_rate
    length = max(1, int(round(seconds * sr)))
    n_fft = 1 << int(round(math.log2(WINDOW_SECONDS * sr)))
    hop = n_fft // 2
    rows = []
    for clip in tqdm(audio_set.clips(), total=len(audio_set), desc="log-mel", unit="clip",
                     disable=not progress):
        x = np.zeros(length, np.float32)
        x[: min(length, len(clip))] = clip[:length]
        rows.append(mel_spectrogram(x, sr, n_fft=n_fft, hop=hop, n_mels=N_MELS).reshape(-1))
    return np.stack([r.numpy() for r in rows]).astype(np.float64)
