"""NDB: false-positive rate near alpha for one distribution, near 1 for disjoint ones; the
z-test against hand-computed values; log-mel image features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from waveloom.errors import DataError
from waveloom.evaluate.audioset import AudioSet
from waveloom.evaluate.ndb import js_divergence, logmel_images, ndb, two_proportion_pvalues


def _mixture(rng, n: int, centres: np.ndarray, weights=None) -> np.ndarray:
    idx = rng.choice(len(centres), size=n, p=weights)
    return centres[idx] + 0.3 * rng.normal(size=(n, centres.shape[1]))


def test_same_distribution_scores_near_alpha_and_disjoint_near_one():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(8, 5))
    same = [ndb(_mixture(rng, 2000, centres), _mixture(rng, 1000, centres), k=10, seed=s)
            ["ndb_over_k"] for s in range(6)]
    assert np.mean(same) <= 0.2  # expectation ~ alpha = 0.05 (k-means bins are not exact)
    far = ndb(_mixture(rng, 2000, centres), _mixture(rng, 1000, centres + 20.0), k=10)
    assert far["ndb_over_k"] >= 0.9 and far["js_divergence"] > 0.5
    # Mode collapse: all generated samples from one mode of eight.
    collapsed = ndb(_mixture(rng, 2000, centres), _mixture(rng, 1000, centres[:1]), k=10)
    assert collapsed["ndb_over_k"] >= 0.7
    assert sum(b["generated"] for b in collapsed["bins"]) == pytest.approx(1.0)


def test_two_proportion_z_test_matches_hand_computation():
    p, z = two_proportion_pvalues(np.array([30.0, 0.0]), 100, np.array([10.0, 0.0]), 100)
    # pooled p = 0.2: z = 0.2 / sqrt(0.2 * 0.8 * 0.02) = 3.5355, two-sided p = 4.07e-4
    assert z[0] == pytest.approx(0.2 / math.sqrt(0.2 * 0.8 * 0.02))
    assert p[0] == pytest.approx(4.07e-4, rel=1e-2)
    assert (z[1], p[1]) == (0.0, 1.0)  # empty in both sets: no evidence of a difference


def test_js_divergence_bounds():
    assert js_divergence(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == 0.0
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_too_few_reference_clips_is_a_data_error():
    with pytest.raises(DataError, match="lower --ndb-k"):
        ndb(np.zeros((5, 2)), np.zeros((5, 2)), k=10)


def test_logmel_images_crop_and_pad_to_a_fixed_size():
    sr = 16000
    clips = [np.ones(8000, np.float32) * 0.1, np.ones(40000, np.float32) * 0.1]
    audio_set = AudioSet("x", sr, ["a", "b"], [{}, {}], "fp", lambda i: clips[i])
    images = logmel_images(audio_set, 1.0, progress=False)
    assert images.shape == (2, 64 * (1 + 16000 // 512))
    frames_a = images[0].reshape(64, -1)
    assert frames_a[:, -3:].max() < frames_a[:, 5].max() - 5  # zero padding sits at the floor
