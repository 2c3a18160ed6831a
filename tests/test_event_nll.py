"""Bits per event of a symbolic model over whole pieces, and the Witten-Bell n-gram baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from waveloom.data.events import BOS, VOCAB_SIZE
from waveloom.evaluate.event_nll import event_bits, window_plan
from waveloom.evaluate.ngram import WittenBell, ngram_bits_per_event
from waveloom.models.music_transformer import MusicTransformer, MusicTransformerConfig

RNG = np.random.default_rng(0)
TRAIN = [RNG.integers(0, 388, size=int(n)) for n in RNG.integers(5, 60, size=20)]


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_ngram_probabilities_sum_to_one(order):
    model = WittenBell(5).fit(TRAIN)
    for context in [(), (BOS,) * 4, tuple(TRAIN[0][:4]), (387, 1, 2, 3), tuple(TRAIN[3][2:6])]:
        dist = model.distribution(context, order)
        assert dist.shape == (VOCAB_SIZE,) and (dist > 0).all()
        assert math.isclose(dist.sum(), 1.0, rel_tol=1e-12)


def test_lower_orders_equal_an_ngram_fitted_alone():
    joint = ngram_bits_per_event(TRAIN, TRAIN[:3], orders=(1, 2, 3))
    for n in (1, 2, 3):
        bits, count = WittenBell(n).fit(TRAIN).bits(TRAIN[:3])
        assert math.isclose(joint[n], bits / count, rel_tol=1e-12)
    assert joint[3] < joint[2] < joint[1] < math.log2(VOCAB_SIZE)  # seen data: more is better


@pytest.mark.parametrize("length,context,stride", [(10, 4, 2), (9, 4, 4), (3, 8, 4),
                                                    (100, 16, 5)])
def test_window_plan_scores_every_target_once(length, context, stride):
    plan = window_plan(length, context, stride)
    scored = np.concatenate([np.arange(first, end) for _, first, end in plan])
    assert np.array_equal(scored, np.arange(length))
    for start, first, end in plan:
        assert end - start <= context
        if start:
            assert first - start >= context - stride


def _tiny() -> MusicTransformer:
    torch.manual_seed(0)
    model = MusicTransformer(MusicTransformerConfig(d_model=32, n_layers=2, n_heads=2, d_ff=64,
                                                    max_distance=32, dropout=0.0))
    return model.eval()


def test_model_bits_match_a_direct_computation():
    model, pieces = _tiny(), TRAIN[:4]
    # a context longer than every piece: one pass, the model's own log_prob
    bits, count = event_bits(model, pieces, context=64, batch_size=3)
    direct = 0.0
    for piece in pieces:
        tokens = torch.as_tensor(np.concatenate([[BOS], piece]))[None]
        direct -= float(model.log_prob({"tokens": tokens})[0].detach()) / math.log(2)
    assert count == sum(len(p) for p in pieces)
    assert math.isclose(bits, direct, rel_tol=1e-5)
    # short windows: each target by hand, from its window's inputs only
    bits, count = event_bits(model, pieces, context=8, stride=3)
    direct = 0.0
    for piece in pieces:
        seq = torch.as_tensor(np.concatenate([[BOS], piece]))
        for start, first, end in window_plan(len(piece), 8, 3):
            logp = torch.log_softmax(model(seq[start:end][None])[0].detach().double(), -1)
            for t in range(first, end):
                direct -= float(logp[t - start, seq[t + 1]]) / math.log(2)
    assert math.isclose(bits, direct, rel_tol=1e-6)


def test_evaluate_nll_verb_on_a_symbolic_checkpoint(tmp_path, capsys):
    from waveloom.cli import main
    from waveloom.data.symbolic import build_symbolic
    from waveloom.models.load import load_config
    from waveloom.train.trainer import train

    from .conftest import CONFIGS

    cache = build_symbolic(tmp_path / "sym", chorales=6)
    cfg = load_config(CONFIGS / "music_transformer" / "tiny.yaml",
                      ["data.batch_size=2", "data.window=32", "train.val_every=0",
                       "train.max_steps=1"])
    train(cfg, tmp_path / "sym", tmp_path / "run", progress=False)
    split = cache.pieces[0]["split"]
    ckpt = str(tmp_path / "run" / "model.safetensors")
    assert main(["evaluate", "nll", ckpt, "--data", str(tmp_path / "sym"), "--split", split,
                 "--device", "cpu", "-q"]) == 0
    out = capsys.readouterr().out
    events = sum(p["length"] for p in cache.pieces if p["split"] == split)
    assert "nll (bits/event)" in out and f"{events} events; windows of 32" in out
    assert "5-gram (bits/event)" in out
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "symbolic_nll.py"), ckpt,
                           str(tmp_path / "sym"), "--splits", split, "--threads", "1"],
                          capture_output=True, text=True, cwd=root, check=True)
    assert f"{split}: " in done.stdout and "| 5-gram (Witten-Bell) |" in done.stdout
