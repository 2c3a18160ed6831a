"""FAD: the Fréchet distance against closed forms, its invariants and numerics; the embedding
registry (CREPE, a user's TorchScript file) and the on-disk cache of reference embeddings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from waveloom.errors import ConfigError
from waveloom.evaluate.audioset import AudioSet
from waveloom.evaluate.embeddings import CrepeEmbedding, embed_set, get_embedding
from waveloom.evaluate.fad import (
    GaussianStats,
    fad_from_embeddings,
    frechet_distance,
    gaussian_stats,
    trace_sqrt_product,
)

SR = 16000


def _spd(rng, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_closed_form_for_diagonal_gaussians():
    # Commuting covariances: d^2 = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    exact = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    got = frechet_distance(GaussianStats(mu1, np.diag(s1), 10), GaussianStats(mu2, np.diag(s2), 10))
    assert got == pytest.approx(exact, rel=1e-9)


def test_trace_term_equals_the_symmetric_psd_formula():
    # tr((S1 S2)^1/2) = sum sqrt(eig(S1^1/2 S2 S1^1/2)), a symmetric PSD eigenproblem.
    rng = np.random.default_rng(0)
    for d in (1, 5, 40):
        s1, s2 = _spd(rng, d), _spd(rng, d)
        root1 = scipy.linalg.sqrtm(s1).real
        eig = np.linalg.eigvalsh(root1 @ s2 @ root1)
        assert trace_sqrt_product(s1, s2) == pytest.approx(np.sqrt(eig.clip(0)).sum(), rel=1e-7)


def test_sampled_fad_converges_to_the_population_distance():
    rng = np.random.default_rng(1)
    d = 4
    s1, s2 = _spd(rng, d), _spd(rng, d)
    mu2 = np.full(d, 0.5)
    exact = frechet_distance(GaussianStats(np.zeros(d), s1, 0), GaussianStats(mu2, s2, 0))
    x = rng.multivariate_normal(np.zeros(d), s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    assert fad_from_embeddings(x, y) == pytest.approx(exact, rel=0.03, abs=2e-3)


def test_invariants_zero_symmetry_translation_rotation():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 6)), rng.normal(size=(200, 6)) * 1.5 + 0.3
    assert fad_from_embeddings(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fad_from_embeddings(x, y) == pytest.approx(fad_from_embeddings(y, x), rel=1e-8)
    shift = rng.normal(size=6)
    # Shifting one set by v adds |v|^2 plus the cross term with the mean difference.
    base = fad_from_embeddings(x, y)
    moved = fad_from_embeddings(x + shift, y)
    diff = x.mean(0) - y.mean(0)
    assert moved == pytest.approx(base + shift @ shift + 2 * shift @ diff, rel=1e-8)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert fad_from_embeddings(x @ q, y @ q) == pytest.approx(base, rel=1e-6)


def test_singular_covariances_stay_finite_and_non_negative():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 64))  # N < D: rank-deficient covariance
    y = rng.normal(size=(12, 64))
    value = fad_from_embeddings(x, y)
    assert np.isfinite(value) and value >= 0.0
    collinear = np.outer(rng.normal(size=50), np.ones(8))
    assert np.isfinite(fad_from_embeddings(collinear, collinear + 1.0))
    with pytest.raises(ValueError):
        gaussian_stats(np.ones((1, 3)))


# -------------------------------------------------------------------------- embeddings


def _set(clips: list[np.ndarray], tag: str = "s") -> AudioSet:
    names = [f"{tag}-{i}" for i in range(len(clips))]
    return AudioSet(tag, SR, names, [{} for _ in clips], f"fp-{tag}-{len(clips)}",
                    lambda i: clips[i])


def _tone(freq: float, seconds: float = 0.4, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    return (0.4 * np.sin(2 * np.pi * freq * t) + noise * rng.normal(size=t.size)).astype(
        np.float32)


class _MeanAbs(torch.nn.Module):
    """A user's frame embedding: [1, T] -> [1, frames, 2] (mean |x| and mean x^2 per frame)."""

    def __init__(self):
        super().__init__()
        self.sample_rate = 8000

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x[:, : x.shape[1] // 800 * 800].reshape(1, -1, 800)
        return torch.stack([frames.abs().mean(-1), (frames**2).mean(-1)], dim=-1)


def test_torchscript_plug_resamples_pools_and_caches(tmp_path):
    path = tmp_path / "user-embedding.pt"
    with warnings.catch_warnings():  # torch 2.10+ marks TorchScript deprecated; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(_MeanAbs()), str(path))
    emb = get_embedding(str(path))
    assert emb.name == "torchscript:user-embedding" and emb.sample_rate == 8000
    clip = _tone(440.0, seconds=0.5)
    frames = emb.embed_clip(clip, SR)
    assert frames.shape == (5, 2)  # 0.5 s at 8 kHz in frames of 800 samples
    assert frames[:, 0] == pytest.approx(0.4 * 2 / np.pi, rel=0.02)  # mean |sine| = 2A/pi

    audio_set = _set([clip, 0.5 * clip, 0.25 * clip], "ref")
    pooled = embed_set(emb, audio_set, cache_dir=tmp_path / "stats", progress=False)
    assert pooled.shape == (3, 2)
    assert pooled[1, 0] == pytest.approx(0.5 * pooled[0, 0], rel=1e-4)
    every = embed_set(emb, audio_set, pool="frames", progress=False)
    assert every.shape == (15, 2)
    cached = list((tmp_path / "stats").glob("*.npz"))
    assert len(cached) == 1
    with np.load(cached[0]) as data:
        assert data["mu"] == pytest.approx(pooled.mean(0))
    # A second call reads the cache: the embedding is never run.
    emb.frames = None  # type: ignore[assignment]
    again = embed_set(emb, audio_set, cache_dir=tmp_path / "stats", progress=False)
    np.testing.assert_array_equal(again, pooled)


def test_registry_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown embedding"):
        get_embedding("vggish")
    with pytest.raises(ConfigError, match="needs --classifier"):
        get_embedding("waveloom-classifier")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a TorchScript file") as err:
        get_embedding(str(bad))
    assert "\n" not in str(err.value)


def test_crepe_embedding_separates_tones_from_noise():
    emb = CrepeEmbedding("tiny", hop_seconds=0.05)
    frames = emb.embed_clip(_tone(220.0), SR)
    assert frames.shape == (1 + int(0.4 * 16000) // 800, 256)
    # Frames below -60 dBFS are dropped; an all-silent clip keeps its frames (one vector).
    quiet = np.r_[_tone(220.0, 0.2), np.zeros(int(0.4 * SR), np.float32)]
    assert emb.embed_clip(quiet, SR).shape[0] < 1 + len(quiet) // 800
    assert emb.embed_clip(np.zeros(4000, np.float32), SR).shape[0] == 6
    tones = _set([_tone(f) for f in (200, 230, 260, 300, 340, 380)], "tones")
    tones2 = _set([_tone(f, noise=0.01, seed=int(f)) for f in (210, 240, 270, 310, 350, 390)],
                  "tones2")
    noise = _set([np.random.default_rng(s).normal(0, 0.2, 6400).astype(np.float32)
                  for s in range(6)], "noise")
    e_t, e_t2, e_n = (embed_set(emb, s, progress=False) for s in (tones, tones2, noise))
    assert fad_from_embeddings(e_t2, e_t) < fad_from_embeddings(e_n, e_t)
