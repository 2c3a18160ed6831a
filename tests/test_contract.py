"""The model contract (DESIGN.md), run on every registered family's tiny preset.

A new family gets these tests by adding its registry line and configs/<family>/tiny.yaml.
A symbolic family (its model class sets ``data_kind = "symbolic"``: it models event tokens, not
audio) gets the loss and save/load tests but not the audio-sampling ones; its own test file
covers its sampler (tests/test_music_transformer.py).
"""

from __future__ import annotations

import pytest
import torch

from waveloom.checkpoint import save_checkpoint
from waveloom.config import SamplingOptions
from waveloom.errors import CheckpointError
from waveloom.models.load import load_checkpoint, load_config, read_config
from waveloom.models.registry import build_model, family_names, get_family
from waveloom.sampling.sample import sample

from .conftest import CONFIGS

FAMILIES = family_names()


def _data_kind(family: str) -> str:
    return getattr(get_family(family).model, "data_kind", "audio")


def _generates_audio(family: str) -> bool:
    return getattr(get_family(family).model, "generates_audio", True)


#: The families whose samples are audio (every one but the symbolic ones and the analysis
#: models, such as the transcriber, whose own tests cover their outputs).
AUDIO_FAMILIES = [f for f in FAMILIES if _data_kind(f) == "audio" and _generates_audio(f)]


def _tiny(family):
    path = CONFIGS / family / "tiny.yaml"
    assert path.is_file(), f"family {family!r} has no configs/{family}/tiny.yaml"
    run = load_config(path)
    torch.manual_seed(0)
    return run, build_model(run)


def _batch(model, length=256, batch_size=2, seed=0):
    return model.example_batch(batch_size, model.context + length, seed=seed)


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_is_finite_and_backpropagates(family):
    _, model = _tiny(family)
    model.train()
    losses = model.loss(_batch(model))
    assert "loss" in losses
    for key, value in losses.items():
        assert torch.isfinite(value).all(), f"{key} is not finite"
    losses["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)


@pytest.mark.parametrize("family", AUDIO_FAMILIES)
def test_generate_shape_range_and_seed(family):
    _, model = _tiny(family)
    model.eval()
    cond = {k: v[:2] for k, v in _batch(model).items() if k != "audio"}
    a = sample(model, 2, 200, cond, options=SamplingOptions(seed=3, progress=False))
    b = sample(model, 2, 200, cond, options=SamplingOptions(seed=3, progress=False))
    assert a.shape == (2, 200)
    assert torch.isfinite(a).all() and a.abs().max() <= 1.0
    assert torch.equal(a, b), "same seed must give identical samples"


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_gives_same_outputs(family, tmp_path):
    run, model = _tiny(family)
    model.eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, run)
    loaded, run2 = load_checkpoint(path)
    assert run2.to_dict() == run.to_dict() == read_config(path).to_dict()
    batch = _batch(model)
    with torch.no_grad():
        assert torch.equal(model.loss(batch)["loss"], loaded.loss(batch)["loss"])
    if family not in AUDIO_FAMILIES:
        return  # no audio sampler to compare (see the module docstring)
    cond = {k: v for k, v in batch.items() if k != "audio"}
    assert torch.equal(
        sample(model, 2, 100, cond, options=SamplingOptions(seed=1, progress=False)),
        sample(loaded, 2, 100, cond, options=SamplingOptions(seed=1, progress=False)),
    )
    with pytest.raises(CheckpointError, match="checkpoint, but a 'other' one is needed"):
        load_checkpoint(path, expect_family="other")


ADVERSARIAL = [f for f in FAMILIES if get_family(f).objective == "adversarial"]


@pytest.mark.parametrize("family", ADVERSARIAL)
def test_adversarial_family_has_two_players_and_no_likelihood(family):
    """An adversarial family is trained through its two players' losses (the trainer's
    adversarial update); it claims no likelihood, so evaluate never reports an NLL for it."""
    _, model = _tiny(family)
    model.train()
    assert not hasattr(model, "log_prob")
    batch = _batch(model)
    for player, loss_name in ((model.discriminator, "discriminator_loss"),
                              (model.generator, "generator_loss")):
        model.zero_grad(set_to_none=True)
        losses = getattr(model, loss_name)(batch)
        assert torch.isfinite(losses["loss"])
        losses["loss"].backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in player.parameters())
