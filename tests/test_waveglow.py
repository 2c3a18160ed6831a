"""WaveGlow-lite: exact inverse, log-determinants against autograd, the change-of-variables NLL."""

from __future__ import annotations

import math

import pytest
import torch

from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.nn.flows import AffineCoupling, InvertibleConv1x1, squeeze, unsqueeze
from waveloom.sampling.sample import sample


def _tiny(**model):
    run = load_config("configs/waveglow/tiny.yaml")
    for key, value in model.items():
        setattr(run.model, key, value)
    torch.manual_seed(0)
    model = build_model(run).eval()
    with torch.no_grad():  # leave the identity start: random couplings test more
        for coupling in model.couplings:
            coupling.end.weight.normal_(0, 0.05)
            coupling.end.bias.normal_(0, 0.05)
    return model


def _jacobian_logdet(fn, x):
    """log|det| of fn's Jacobian at x ``[1, ...]`` (flattened), by autograd."""
    jac = torch.autograd.functional.jacobian(lambda v: fn(v.view_as(x)).reshape(-1),
                                             x.reshape(-1).double())
    return torch.linalg.slogdet(jac)[1]


def test_squeeze_round_trips():
    audio = torch.arange(24.0).view(2, 12)
    assert torch.equal(unsqueeze(squeeze(audio, 4)), audio)
    assert squeeze(audio, 4)[0, 1, 0] == 1  # sample k*G + g -> channel g, step k


def test_layers_invert_and_their_logdets_match_autograd():
    torch.manual_seed(1)
    conv = InvertibleConv1x1(4, seed=3).double()
    coupling = AffineCoupling(4, 6, 2, cond_channels=3).double()
    torch.nn.init.normal_(coupling.end.weight, 0, 0.1)
    x = torch.randn(1, 4, 5, dtype=torch.float64)
    cond = torch.randn(1, 3, 5, dtype=torch.float64)
    y, ld = conv(x)
    assert torch.allclose(conv.inverse(y.float()).double(), x, atol=1e-5)
    expected = float(_jacobian_logdet(lambda v: conv(v)[0], x))
    assert float(ld[0].detach()) == pytest.approx(expected, abs=1e-6)
    y, ld = coupling(x, cond)
    assert torch.allclose(coupling.inverse(y, cond), x, atol=1e-10)
    expected = float(_jacobian_logdet(lambda v: coupling(v, cond)[0], x))
    assert float(ld[0].detach()) == pytest.approx(expected, abs=1e-8)


def test_the_whole_flow_inverts_and_its_logdet_is_the_jacobians():
    model = _tiny(conditioning="none").double()
    audio = 0.3 * torch.randn(1, 16, dtype=torch.float64)
    z, logdet = model.flow(audio, None)
    assert torch.allclose(model.inverse(z, None), audio, atol=1e-5)
    expected = _jacobian_logdet(lambda v: model.flow(v, None)[0], audio)
    assert float(logdet[0].detach()) == pytest.approx(float(expected), abs=1e-5)


def test_the_loss_is_the_change_of_variables_nll():
    model = _tiny()
    batch = model.example_batch(2, 1024)
    with torch.no_grad():
        cond = model._cond(batch, 2, 1024, audio=batch["audio"])
        z, logdet = model.flow(batch["audio"], cond)
        normal = torch.distributions.Normal(0.0, model.config.sigma)
        nll = -(normal.log_prob(z).sum(-1) + logdet)
        assert torch.allclose(model.loss(batch)["loss"], nll.mean() / 1024, rtol=1e-5)
        assert torch.allclose(model.log_prob(batch).sum(-1), -nll, rtol=1e-5)


def test_sampling_is_seeded_resynthesises_and_refuses_bad_input():
    model = _tiny()
    audio = 0.3 * torch.sin(torch.arange(1024) / 5.0)[None]
    opts = SamplingOptions(seed=2, progress=False)
    a = sample(model, 1, 1000, {"prime": audio}, opts)
    assert a.shape == (1, 1000) and torch.equal(a, sample(model, 1, 1000, {"prime": audio}, opts))
    with pytest.raises(ConfigError, match="give a mel"):
        sample(model, 1, 1000, None, opts)
    with pytest.raises(ConfigError, match="expected \\[16, frames\\] log mel"):
        sample(model, 1, 1024, {"mel": torch.zeros(1, 3, 17)}, opts)
    with pytest.raises(ConfigError, match="keep >= 2 channels"):
        _tiny(flows=9)


def test_trains_through_the_trainer(notes_cache, tmp_path):
    from waveloom.train.trainer import train

    run = load_config("configs/waveglow/tiny.yaml", ["train.max_steps=2"])
    result = train(run, notes_cache, tmp_path / "run", progress=False)
    assert result.step == 2 and math.isfinite(result.last_loss)
