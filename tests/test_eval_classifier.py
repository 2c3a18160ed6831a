"""The evaluation classifier: it learns an easy labelled task, round-trips through safetensors,
and its Inception Score and accuracy behave as defined."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from waveloom.errors import CheckpointError
from waveloom.evaluate.audioset import load_set
from waveloom.evaluate.classifier import (
    ClassifierEmbedding,
    correct_flags,
    inception_score,
    load_classifier,
    predict,
)
from waveloom.evaluate.train_classifier import train_classifier

SR = 16000


def _note(family: str, midi: int, rng) -> np.ndarray:
    """'flute': a pure sine; 'brass': a bright sawtooth-like tone. Random gain, detune, phase."""
    f0 = 440.0 * 2 ** ((midi - 69 + rng.uniform(-0.2, 0.2)) / 12)
    t = np.arange(int(0.4 * SR)) / SR
    ks = [1] if family == "flute" else range(1, 12)
    x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.28)) / k for k in ks)
    env = np.minimum(1.0, t / 0.01) * np.exp(-t * rng.uniform(0.5, 3.0))
    return (rng.uniform(0.1, 0.8) * env * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def synthetic_cache(tmp_path_factory):
    """An NSynth-layout folder of 2 families x 3 pitches, prepared into a cache."""
    from waveloom.data.prepare import prepare

    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(0)
    examples = {}
    for family in ("flute", "brass"):
        for midi in (48, 60, 72):
            for k in range(8):
                name = f"{family}_synthetic_000-{midi:03d}-{60 + k:03d}"
                (root / "notes" / "audio").mkdir(parents=True, exist_ok=True)
                sf.write(root / "notes" / "audio" / f"{name}.wav", _note(family, midi, rng), SR)
                examples[name] = {"pitch": midi, "velocity": 60 + k,
                                  "instrument_str": f"{family}_synthetic_000",
                                  "instrument_family_str": family,
                                  "split": "valid" if k >= 6 else "train"}
    (root / "notes" / "examples.json").write_text(json.dumps(examples))
    prepare(root / "notes", root / "cache", progress=False)
    return root


@pytest.fixture(scope="module")
def trained(synthetic_cache):
    out = synthetic_cache / "classifier.safetensors"
    summary = train_classifier(synthetic_cache / "cache", out, epochs=25, batch_size=8,
                               seconds=0.25, channels=(8, 16), embed_dim=32, progress=False)
    return out, summary


def test_learns_an_easy_task_and_keeps_its_classes(trained):
    path, summary = trained
    assert summary.families == ["brass", "flute"] and summary.pitches == [48, 60, 72]
    assert summary.train_examples == 36 and summary.val_examples == 12
    assert summary.val_family_accuracy == 1.0 and summary.val_pitch_accuracy == 1.0
    model, metrics = load_classifier(path)
    assert model.cfg.seconds == 0.25 and metrics["val_pitch_accuracy"] == 1.0


def test_predictions_accuracy_inception_score_and_embedding(trained, synthetic_cache):
    path, _ = trained
    model, _ = load_classifier(path)
    valid = load_set(synthetic_cache / "cache", split="valid")
    preds = predict(model, valid, progress=False)
    assert preds.family.shape == (12, 2) and preds.pitch.shape == (12, 3)
    assert np.allclose(preds.pitch.sum(1), 1.0) and preds.embedding.shape == (12, 32)
    flags, unknown = correct_flags(preds.pitch, model.cfg.pitches, valid.label_values("pitch"))
    assert flags.mean() == 1.0 and unknown == 0
    # A balanced, correctly classified set scores well above 1 (at most the 3 classes) ...
    full = inception_score(preds.pitch)
    assert 1.8 < full <= 3.0 + 1e-9
    # ... and a collapsed one (every clip the same pitch) close to 1.
    same = [i for i, p in enumerate(valid.label_values("pitch")) if p == 60]
    assert inception_score(preds.pitch[same]) < 1.2 < full
    emb = ClassifierEmbedding(path)
    assert emb.embed_clip(valid.clip(0), SR).shape == (1, 32)
    # Gain does not change the prediction (peak-referenced features).
    assert np.allclose(emb.embed_clip(0.1 * valid.clip(0), SR), emb.embed_clip(valid.clip(0), SR),
                       atol=1e-4)


def test_inception_score_bounds_and_unknown_labels():
    assert inception_score(np.eye(4)) == pytest.approx(4.0)
    assert inception_score(np.tile([0.7, 0.2, 0.1], (5, 1))) == pytest.approx(1.0)
    assert inception_score(np.full((3, 5), 0.2)) == pytest.approx(1.0)
    flags, unknown = correct_flags(np.eye(3), [40, 50, 60], [40, 55, 60])
    assert flags.tolist() == [1.0, 0.0, 1.0] and unknown == 1


def test_loading_something_else_is_a_one_line_error(tmp_path):
    from safetensors.numpy import save_file

    other = tmp_path / "model.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(other))
    with pytest.raises(CheckpointError, match="not a waveloom classifier") as err:
        load_classifier(other)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="not found"):
        load_classifier(tmp_path / "missing.safetensors")


def test_truncation_cuts_crops_to_silence_and_is_off_by_default():
    """--truncate: a share of the training crops ends in silence (the log-mel floor after the
    peak reference) from a drawn frame on; rows kept whole equal the plain crop, and at 0 no
    draw is taken, so seeded runs without it are unchanged."""
    import torch

    from waveloom.evaluate.classifier import LOG_FLOOR
    from waveloom.evaluate.train_classifier import MIN_KEEP_FRAMES, _crop, _keep_frames

    feats = torch.randn(3, 8, 20)
    rows, offsets = np.array([0, 1, 2]), np.array([0, 2, 4])
    plain = _crop(feats, rows, offsets, 12)
    cut = _crop(feats, rows, offsets, 12, np.array([12, 5, 4]))
    assert torch.equal(cut[0], plain[0])
    floor = LOG_FLOOR / 4
    assert torch.all(cut[1, 0, :, 5:] == floor) and torch.all(cut[2, 0, :, 4:] == floor)
    kept = feats[1, :, 2:7]  # what is left is referenced to its own peak, as at inference
    assert torch.allclose(cut[1, 0, :, :5], (kept - kept.max()).clamp_min(LOG_FLOOR) / 4)
    rng = np.random.default_rng(0)
    assert _keep_frames(rng, 4, 12, 0.0) is None
    assert rng.integers(1000) == np.random.default_rng(0).integers(1000)
    keep = _keep_frames(np.random.default_rng(1), 2000, 32, 0.5)
    assert keep.min() >= MIN_KEEP_FRAMES and keep.max() == 32
    assert 0.4 < np.mean(keep < 32) < 0.55  # half cut (a cut at full length counts as whole)


def test_truncation_share_is_checked_and_recorded(synthetic_cache, tmp_path):
    from waveloom.errors import DataError

    with pytest.raises(DataError, match="--truncate"):
        train_classifier(synthetic_cache / "cache", tmp_path / "c.safetensors", truncate=1.5)
    out = tmp_path / "t.safetensors"
    train_classifier(synthetic_cache / "cache", out, epochs=3, batch_size=8, seconds=0.25,
                     channels=(8, 16), embed_dim=32, progress=False, truncate=0.5)
    assert load_classifier(out)[1]["truncate"] == 0.5
