"""Small-n set distances (issue #20): KID is unbiased with an interval that covers 0 for two
draws of one distribution; FAD's bias shrinks like 1/n; FAD-inf recovers the known distance;
the low-rank FAD is exact; the JSON entries carry value, ci and n; small n warns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from waveloom.evaluate.embedding_base import Embedding
from waveloom.evaluate.embeddings import register_embedding
from waveloom.evaluate.fad import (
    GaussianStats,
    fad_from_embeddings,
    fad_inf,
    fad_interval,
    fad_samples,
    frechet_distance,
    small_n_warning,
)
from waveloom.evaluate.kid import kid, mmd2_unbiased, polynomial_kernel


def test_mmd2_matches_the_u_statistic_written_out():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(a, b) for a in x for b in y) / 35
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert polynomial_kernel(x, y).shape == (7, 5)


def test_kid_is_unbiased_and_its_interval_covers_zero_at_small_n():
    rng = np.random.default_rng(1)
    d = 16
    values, covered = [], 0
    for seed in range(40):
        x, y = rng.normal(size=(18, d)), rng.normal(size=(18, d))
        r = kid(x, y, resamples=300, seed=seed)
        values.append(r["value"])
        covered += r["ci"][0] <= 0.0 <= r["ci"][1]
        assert r["n"] == [18, 18] and r["ci"][0] <= r["value"] <= r["ci"][1]
    spread = np.std(values) / np.sqrt(len(values))
    assert abs(np.mean(values)) < 3 * spread  # mean 0 within its standard error
    assert covered >= 34  # ~95 % intervals: most cover 0
    # A shifted distribution is separated at the same n.
    far = kid(rng.normal(size=(18, d)) + 1.0, rng.normal(size=(18, d)), resamples=300)
    assert far["ci"][0] > 0.0


def test_kid_averages_subsets_of_large_sets():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 4)), rng.normal(size=(250, 4)) + 0.3
    whole = mmd2_unbiased(x, y)
    r = kid(x, y, subsets=20, subset_size=100, resamples=100, max_bootstrap=200)
    assert r["subset_size"] == 100 and r["n"] == [300, 250]
    assert r["value"] == pytest.approx(whole, rel=0.2)
    assert r["ci"][0] <= r["value"] <= r["ci"][1]


@pytest.mark.parametrize("n", [5, 20, 300])
def test_low_rank_fad_equals_the_matrix_square_root(n):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(n, 40)), rng.normal(size=(n + 3, 40)) * 1.2 + 0.1
    assert fad_samples(x, y) == pytest.approx(fad_from_embeddings(x, y), rel=1e-6)


def _gaussians(d: int = 6):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(d, d))
    s2 = a @ a.T / d + 0.5 * np.eye(d)
    mu2 = np.full(d, 0.3)
    exact = frechet_distance(GaussianStats(np.zeros(d), np.eye(d), 0), GaussianStats(mu2, s2, 0))
    return rng, mu2, s2, exact


def test_fad_bias_shrinks_like_one_over_n():
    rng, mu2, s2, exact = _gaussians()
    d = len(mu2)
    bias = {}
    for n in (100, 400):
        vals = [fad_from_embeddings(rng.normal(size=(n, d)), rng.multivariate_normal(mu2, s2, n))
                for _ in range(150)]
        bias[n] = np.mean(vals) - exact
    assert bias[100] > 0 and bias[400] > 0
    assert bias[100] / bias[400] == pytest.approx(4.0, rel=0.3)


def test_fad_inf_intercept_recovers_the_known_distance():
    rng, mu2, s2, exact = _gaussians()
    d = len(mu2)
    x, y = rng.normal(size=(40_000, d)), rng.multivariate_normal(mu2, s2, 40_000)
    r = fad_inf(x, y, points=15, n_min=50, n_max=1000, seed=0)
    plain_bias = fad_from_embeddings(x[:50], y[:50]) - exact
    assert abs(r["value"] - exact) < 0.05 * exact
    assert abs(r["value"] - exact) < abs(plain_bias)
    assert r["slope"] > 0 and len(r["sizes"]) == len(r["fads"]) == 15
    assert r["ci"][0] <= r["value"] <= r["ci"][1]


def test_fad_interval_brackets_the_value():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) + 0.5
    lo, hi = fad_interval(x, y, resamples=50)
    assert lo <= fad_samples(x, y) <= hi and lo < hi


def test_small_n_warning_names_the_bias():
    text = small_n_warning("fad[crepe-tiny]", 18, 256)
    assert "n=18 < 500" in text and "dimension 256" in text and "biased" in text
    assert small_n_warning("fad[x]", 600, 256) is None
    assert "dimension 2048" in small_n_warning("fad[crepe-full]", 600, 2048)


class _Stats(Embedding):
    """A cheap 3-d frame embedding (level, zero-crossing rate, crest) for end-to-end tests."""

    name = layer = "test-stats"
    sample_rate = 16000

    def frames(self, audio):
        f = audio[: len(audio) // 400 * 400].reshape(-1, 400)
        rms = np.sqrt((f ** 2).mean(1) + 1e-12)
        zcr = (np.diff(np.sign(f), axis=1) != 0).mean(1)
        return np.stack([rms, zcr, np.abs(f).max(1) / rms], axis=1)


def test_json_shape_of_fad_kid_and_warnings(tmp_path, capsys):
    from waveloom.cli import main

    register_embedding("test-stats", lambda device="cpu", **kw: _Stats())
    rng = np.random.default_rng(6)
    for name, scale in (("gen", 0.3), ("ref", 0.1)):
        (tmp_path / name).mkdir()
        for i in range(12):
            t = np.arange(8000) / 16000
            x = scale * np.sin(2 * np.pi * (200 + 30 * i) * t) + 0.01 * rng.normal(size=8000)
            sf.write(tmp_path / name / f"n{i}_k{60 + i:03d}.wav", x.astype(np.float32), 16000)
    out = tmp_path / "r.json"
    assert main(["evaluate", str(tmp_path / "gen"), "--reference", str(tmp_path / "ref"),
                 "--metrics", "fad,kid,kad,ndb", "--embeddings", "test-stats",
                 "--ndb-features", "test-stats", "--ndb-k", "2", "--bootstrap", "100",
                 "--no-stats-cache", "--json", str(out), "-q"]) == 0
    report = json.loads(out.read_text())
    for key in ("fad[test-stats]", "kid[test-stats]", "kad[test-stats]", "fad_inf[test-stats]"):
        entry = report[key]
        assert isinstance(entry["value"], float) and len(entry["ci"]) == 2
        assert entry["n"] == [12, 12]
    assert report["kid[test-stats]"]["ci"][0] > 0  # louder sines are not the reference
    assert report["kad[test-stats]"]["ci"][0] > 0 and report["kad[test-stats]"]["bandwidth"] > 0
    ndb_entry = report["ndb[test-stats,k=2]"]
    assert ndb_entry["n"] == [12, 12] and ndb_entry["resamples"] == 100
    assert ndb_entry["ci"][0] <= ndb_entry["ndb_over_k"] <= ndb_entry["ci"][1]
    assert any("n=12 < 500" in w for w in report["warnings"])
    captured = capsys.readouterr()
    assert "warning: fad[test-stats]: n=12 < 500" in captured.err
    assert "kid[test-stats]" in captured.out and "n=12 vs 12" in captured.out
    assert "kad[test-stats]" in captured.out and "NDB/k" in captured.out
