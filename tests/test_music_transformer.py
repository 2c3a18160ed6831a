"""The music_transformer family end to end: a symbolic corpus through the one trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from waveloom.data.events import BOS, EOS, PAD, VOCAB_SIZE
from waveloom.data.symbolic import build_symbolic
from waveloom.models.load import load_config
from waveloom.models.music_transformer import MusicTransformer, MusicTransformerConfig
from waveloom.sampling.events import filtered, sample_tokens
from waveloom.train.trainer import train

from .conftest import CONFIGS

TINY = CONFIGS / "music_transformer" / "tiny.yaml"
FAST = ["data.batch_size=4", "data.window=64", "train.val_every=0"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mt") / "sym"
    build_symbolic(root, chorales=3)
    return root


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_loss_ignores_pad_and_is_nats_per_event():
    model = MusicTransformer(MusicTransformerConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64,
                                                    max_distance=16, dropout=0.0))
    batch = model.example_batch(2, 10)
    padded = {"tokens": torch.cat([batch["tokens"], torch.full((2, 5), PAD)], 1)}
    assert torch.allclose(model.loss(batch)["loss"], model.loss(padded)["loss"], atol=1e-6)


def test_loss_decreases_on_three_chorales(corpus, tmp_path):
    cfg = load_config(TINY, [*FAST, "train.max_steps=30", "train.log_every=1"])
    first = train(load_config(TINY, [*FAST, "train.max_steps=1"]), corpus, tmp_path / "one",
                  progress=False)
    last = train(cfg, corpus, tmp_path / "run", progress=False)
    assert last.step == 30
    assert last.last_loss < first.last_loss - 0.5


def test_resume_is_exact(corpus, tmp_path):
    overrides = [*FAST, "train.checkpoint_every=3", "train.ema_decay=0.9"]
    train(load_config(TINY, [*overrides, "train.max_steps=6"]), corpus, tmp_path / "a",
          progress=False)
    train(load_config(TINY, [*overrides, "train.max_steps=3"]), corpus, tmp_path / "b",
          progress=False)
    resumed = train(load_config(TINY, [*overrides, "train.max_steps=6"]), corpus,
                    tmp_path / "b", resume=True, progress=False)
    assert resumed.step == 6
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _small_model() -> MusicTransformer:
    torch.manual_seed(0)
    return MusicTransformer(MusicTransformerConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64,
                                                   max_distance=8, dropout=0.0)).eval()


def test_cached_greedy_sampling_equals_full_forward_argmax():
    """At temperature 0 the KV-cached path must pick what full forwards over the growing
    sequence pick (distances beyond max_distance included: 20 events > 8)."""
    model = _small_model()
    events = sample_tokens(model, 2, 20, temperature=0.0)
    seq = torch.full((2, 1), BOS)
    with torch.no_grad():
        for _ in range(20):
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], 1)
    expected = seq[:, 1:].clone()
    for row in range(2):  # after an EOS the sampler pads
        hits = (expected[row] == EOS).nonzero()
        if len(hits):
            expected[row, int(hits[0]) + 1:] = PAD
    assert torch.equal(events, expected)


def test_sampling_is_seeded_and_filters():
    model = _small_model()
    a = sample_tokens(model, 3, 16, top_k=20, top_p=0.9, temperature=1.0, seed=5)
    assert torch.equal(a, sample_tokens(model, 3, 16, top_k=20, top_p=0.9, seed=5))
    assert a.shape == (3, 16) and int(a.max()) < VOCAB_SIZE
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filtered(logits, 2, 1.0)[0, 2:]).all()
    assert torch.isfinite(filtered(logits, 0, 0.5)[0, :1]).all()
    assert torch.isinf(filtered(logits, 0, 0.5)[0, 1:]).all()
