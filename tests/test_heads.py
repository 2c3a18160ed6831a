"""Output heads: normalisation, NLL values, and that sampling draws from the stated law."""

from __future__ import annotations

import math

import pytest
import torch

from waveloom.nn.heads import CategoricalHead, DiscretizedLogisticMixtureHead, build_head

DRAWS = 40000


def _tv(samples: torch.Tensor, probs: torch.Tensor) -> float:
    """Total-variation distance between an empirical histogram and ``probs``."""
    hist = torch.bincount(samples, minlength=probs.numel()).float() / samples.numel()
    return 0.5 * (hist - probs).abs().sum().item()


def _mixture_params(k=3, batch=1, seed=0, log_scale=-3.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, k, generator=gen)
    means = torch.rand(batch, k, generator=gen) * 1.6 - 0.8
    log_scales = torch.full((batch, k), log_scale) + torch.rand(batch, k, generator=gen)
    return torch.cat([logits, means, log_scales], dim=1)


def test_categorical_uniform_nll_is_ln256():
    head = CategoricalHead()
    codes = torch.randint(0, 256, (3, 17))
    nll = -head.log_prob(torch.zeros(3, 256, 17), codes)
    torch.testing.assert_close(nll, torch.full((3, 17), math.log(256.0)))


def test_categorical_sampling_matches_probabilities_and_temperature():
    head = CategoricalHead()
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 256, generator=gen) * 2.0
    for temperature in (1.0, 0.5):
        u = torch.rand(DRAWS, 1, generator=gen)
        draws = head.sample(logits.expand(DRAWS, -1), u, temperature)
        probs = torch.softmax(logits[0] / temperature, -1)
        assert _tv(draws, probs) < 0.03
    # Inverse CDF edges: u=0 gives the first code with mass, u -> 1 the last.
    peaked = torch.full((1, 256), -1e4)
    peaked[0, 7] = 0.0
    assert head.sample(peaked, torch.tensor([[0.0]])).item() == 7
    assert head.sample(peaked, torch.tensor([[0.999999]])).item() == 7


@pytest.mark.parametrize("levels", [256, 65536])
@pytest.mark.parametrize("log_scale", [-9.0, -3.0, 1.0])
def test_mixture_probabilities_sum_to_one(levels, log_scale):
    head = DiscretizedLogisticMixtureHead(components=4, levels=levels)
    params = _mixture_params(k=4, batch=2, log_scale=log_scale)
    probs = head.probs(params)
    assert probs.shape == (2, levels)
    assert (probs >= 0).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(2), atol=1e-4, rtol=0)


def test_mixture_log_prob_agrees_with_probs_and_is_finite_at_extremes():
    head = DiscretizedLogisticMixtureHead(components=3)
    params = _mixture_params(k=3, batch=1)
    codes = torch.tensor([[0, 5, 128, 200, 255]])
    logp = head.log_prob(params.unsqueeze(-1).expand(-1, -1, 5), codes)
    probs = head.probs(params)[0, codes[0]]
    torch.testing.assert_close(logp[0].exp(), probs, atol=1e-6, rtol=1e-4)
    # Very sharp and very broad components far from the target: finite values and gradients.
    extreme = torch.tensor([[0.0, 50.0, -0.9, 0.9, -30.0, 8.0]]).unsqueeze(-1)
    extreme.requires_grad_(True)
    two = DiscretizedLogisticMixtureHead(components=2)
    out = two.log_prob(extreme.expand(-1, -1, 3), torch.tensor([[0, 128, 255]]))
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(extreme.grad).all()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_mixture_sampling_matches_probabilities(temperature):
    head = DiscretizedLogisticMixtureHead(components=3, levels=256)
    params = _mixture_params(k=3, seed=1, log_scale=-3.5)
    gen = torch.Generator().manual_seed(5)
    u = torch.rand(DRAWS, 2, generator=gen)
    draws = head.sample(params.expand(DRAWS, -1), u, temperature)
    assert _tv(draws, head.probs(params, temperature)[0]) < 0.03


def test_mixture_sampling_16bit_matches_probabilities_coarsely():
    head = DiscretizedLogisticMixtureHead(components=2, levels=65536)
    params = _mixture_params(k=2, seed=2, log_scale=-2.0)
    u = torch.rand(DRAWS, 2, generator=torch.Generator().manual_seed(6))
    draws = head.sample(params.expand(DRAWS, -1), u)
    probs = head.probs(params)[0]
    # Compare on 64 coarse bins of 1024 levels each.
    assert _tv(draws // 1024, probs.reshape(64, 1024).sum(-1)) < 0.03


def test_mixture_nll_can_beat_the_softmax_uniform_baseline():
    head = DiscretizedLogisticMixtureHead(components=1)
    codes = torch.full((1, 4), 100)
    centre = 2 * 100 / 255 - 1
    sharp = torch.tensor([[0.0, centre, -7.0]]).unsqueeze(-1).expand(-1, -1, 4)
    assert (-head.log_prob(sharp, codes) < 0.1).all()  # ~all mass on one bin


def test_output_spaces_round_trip():
    audio = torch.linspace(-1, 1, 1001)
    for head in (CategoricalHead(), build_head("logistic_mixture", 2, 256)):
        codes = head.encode(audio)
        assert codes.min() >= 0 and codes.max() <= 255
        assert torch.equal(head.encode(head.decode(codes)), codes)
        assert torch.equal(head.input_codes(codes), codes)
    wide = build_head("logistic_mixture", 2, 65536)
    codes = wide.encode(audio)
    assert codes.max() == 65535 and codes.min() == 0
    assert (wide.decode(codes) - audio).abs().max() <= 1.0 / 65535 + 1e-6
    inputs = wide.input_codes(codes)
    assert inputs.max() <= 255 and torch.equal(inputs, CategoricalHead().encode(wide.decode(codes)))
    with pytest.raises(ValueError, match="unknown head"):
        build_head("laplace")


@pytest.mark.parametrize("log_scale", [-9.0, -3.0, 0.5])
def test_gaussian_head_is_a_discretised_normal(log_scale):
    """Probabilities sum to one, equal scipy's normal CDF differences per bin, agree with
    log_prob (finite with gradients far in a tail), and sampling draws from them."""
    from scipy.stats import norm

    from waveloom.nn.heads import DiscretizedGaussianHead

    head = build_head("gaussian")
    assert isinstance(head, DiscretizedGaussianHead) and head.num_params == 2
    params = torch.tensor([[0.3, log_scale]])
    probs = head.probs(params)[0].double()
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-4,
                               rtol=0)
    edges = torch.linspace(-1, 1, 256).double()
    hw = 1.0 / 255
    sd = max(math.exp(log_scale), math.exp(head.log_scale_min))
    for i in (1, 100, 166, 254):
        expected = norm.cdf(edges[i] + hw, 0.3, sd) - norm.cdf(edges[i] - hw, 0.3, sd)
        assert float(probs[i]) == pytest.approx(expected, abs=1e-6, rel=1e-3)
    codes = torch.tensor([[0, 100, 166, 255]])
    p = params.unsqueeze(-1).expand(-1, -1, 4).clone().requires_grad_(True)
    logp = head.log_prob(p, codes)
    assert torch.isfinite(logp).all()
    logp.sum().backward()
    assert torch.isfinite(p.grad).all()
    if log_scale > -5:
        torch.testing.assert_close(logp[0].exp().double(), probs[codes[0]], atol=1e-6,
                                   rtol=1e-4)
        u = torch.rand(DRAWS, 1, generator=torch.Generator().manual_seed(3))
        draws = head.sample(params.expand(DRAWS, -1), u, 0.7)
        assert _tv(draws, head.probs(params, 0.7)[0]) < 0.03


def test_a_gaussian_wavenet_trains_and_samples_on_the_torch_engine():
    from waveloom.config import SamplingOptions
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model
    from waveloom.sampling.fast import unsupported_reason
    from waveloom.sampling.sample import sample

    run = load_config("configs/wavenet/tiny.yaml", ["model.head=gaussian"])
    model = build_model(run)
    batch = model.example_batch(2, model.context + 64)
    loss = model.loss(batch)["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    assert unsupported_reason(model) is None  # the fast engine draws it too (session 15)
    cond = {"pitch": torch.tensor([60]), "instrument": torch.tensor([0])}
    audio = sample(model.eval(), 1, 50, cond, SamplingOptions(engine="torch", progress=False))
    assert audio.shape == (1, 50) and torch.isfinite(audio).all()
    fast = sample(model, 1, 50, cond, SamplingOptions(engine="fast", progress=False))
    assert fast.shape == (1, 50) and torch.isfinite(fast).all()
