"""Reconstruction metrics: SI-SDR against known SNRs and its invariances; pairing by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from waveloom.errors import DataError
from waveloom.evaluate.audioset import AudioSet
from waveloom.evaluate.spectral import pair_by_name, reconstruction_scores, si_sdr


def _orthogonal_noise(s: np.ndarray, rng) -> np.ndarray:
    n = rng.normal(size=s.size)
    n -= n.mean()
    sc = s - s.mean()
    return n - (n @ sc) / (sc @ sc) * sc


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 12.0, 30.0])
def test_si_sdr_equals_the_snr_of_orthogonal_noise(snr_db):
    rng = np.random.default_rng(0)
    s = np.sin(np.linspace(0, 200, 8000)) + 0.1 * rng.normal(size=8000)
    noise = _orthogonal_noise(s, rng)
    sc = s - s.mean()
    noise *= math.sqrt((sc @ sc) / (noise @ noise) / 10 ** (snr_db / 10))
    assert si_sdr(s, s + noise) == pytest.approx(snr_db, abs=1e-6)
    # Scale invariance: the estimate's gain (even a sign flip) does not matter.
    assert si_sdr(s, -3.0 * (s + noise)) == pytest.approx(snr_db, abs=1e-6)


def test_si_sdr_edge_cases():
    s = np.sin(np.linspace(0, 50, 1000))
    assert si_sdr(s, s) > 100
    assert si_sdr(np.zeros(100), s[:100]) == -math.inf
    with pytest.raises(ValueError):
        si_sdr(s, s[:-1])


def _set(names, clips, tag):
    return AudioSet(tag, 16000, list(names), [{} for _ in names], tag, lambda i: clips[i])


def test_pairs_by_name_and_scores_reconstructions():
    rng = np.random.default_rng(1)
    ref_clips = [rng.normal(size=4000).astype(np.float32) * 0.1 for _ in range(3)]
    reference = _set(["a", "b", "c"], ref_clips, "ref")
    generated = _set(["out/c", "a"], [ref_clips[2], ref_clips[0][:3900] * 0.5], "gen")
    assert pair_by_name(generated, reference) == [(0, 2), (1, 0)]
    scores = reconstruction_scores(generated, reference)
    assert scores["mss"][0] == 0.0 and scores["mss"][1] > 0.0  # gain changes the spectrum
    assert scores["si_sdr"][1] > 100  # ... but not SI-SDR
    assert scores["length_mismatches"] == 1
    with pytest.raises(DataError, match="pair files by name"):
        pair_by_name(_set(["zzz"], ref_clips, "gen"), reference)
