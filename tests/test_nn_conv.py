"""CausalConv1d / Conv1dSame: padding arithmetic, causality, and step() == forward()."""

from __future__ import annotations

import pytest
import torch

from waveloom.nn.conv import CausalConv1d, Conv1dSame, causal_padding, same_padding


def test_padding_arithmetic():
    assert causal_padding(2, 1) == 1
    assert causal_padding(3, 4) == 8
    assert same_padding(3, 1) == (1, 1)
    assert same_padding(2, 1) == (0, 1)
    assert same_padding(3, 5) == (5, 5)
    assert sum(same_padding(4, 3)) == 9


@pytest.mark.parametrize("kernel,dilation", [(1, 1), (2, 1), (2, 4), (3, 1), (3, 5), (4, 2)])
def test_output_length_and_valid_mode(kernel, dilation):
    torch.manual_seed(0)
    conv = CausalConv1d(3, 5, kernel, dilation)
    x = torch.randn(2, 3, 40)
    full = conv(x)
    valid = conv(x, padded=False)
    assert full.shape == (2, 5, 40)
    assert valid.shape == (2, 5, 40 - (kernel - 1) * dilation)
    # Valid outputs are exactly the padded outputs whose receptive field lies inside x.
    torch.testing.assert_close(valid, full[..., (kernel - 1) * dilation :])


@pytest.mark.parametrize("kernel,dilation", [(2, 1), (3, 4), (4, 7)])
def test_causality(kernel, dilation):
    torch.manual_seed(1)
    conv = CausalConv1d(4, 6, kernel, dilation)
    x = torch.randn(2, 4, 60)
    t0 = 37
    x2 = x.clone()
    x2[..., t0:] = torch.randn_like(x2[..., t0:]) * 10
    y, y2 = conv(x), conv(x2)
    assert torch.equal(y[..., :t0], y2[..., :t0]), "the future leaked into the past"
    assert not torch.allclose(y[..., t0:], y2[..., t0:])
    # ... and the receptive field is exactly (K-1)*d + 1 wide.
    x3 = x.clone()
    x3[..., t0 - (kernel - 1) * dilation - 1] += 5.0
    y3 = conv(x3)
    assert torch.equal(y[..., t0:], y3[..., t0:])


@pytest.mark.parametrize("kernel,dilation", [(1, 1), (2, 1), (2, 8), (3, 3), (5, 2)])
def test_step_equals_forward_every_t(kernel, dilation):
    torch.manual_seed(2)
    conv = CausalConv1d(5, 7, kernel, dilation)
    x = torch.randn(3, 5, 50)
    expected = conv(x)
    conv.reset_state(3)
    with torch.no_grad():
        steps = torch.stack([conv.step(x[..., t]) for t in range(x.shape[-1])], dim=-1)
    torch.testing.assert_close(steps, expected, atol=1e-5, rtol=0)


def test_step_with_external_bias_and_no_bias():
    torch.manual_seed(3)
    conv = CausalConv1d(2, 3, 2, 2, bias=False)
    x = torch.randn(1, 2, 9)
    extra = torch.randn(1, 3)
    conv.reset_state(1)
    with torch.no_grad():
        out = torch.stack([conv.step(x[..., t], extra) for t in range(9)], -1)
    torch.testing.assert_close(out, conv(x) + extra.unsqueeze(-1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("prefix", [1, 4, 30])
def test_fill_state_continues_like_steps(prefix):
    torch.manual_seed(4)
    conv = CausalConv1d(3, 4, 3, 3)  # ring of 7 inputs: prefixes shorter and longer
    x = torch.randn(2, 3, 40)
    expected = conv(x)
    conv.reset_state(2)
    with torch.no_grad():
        conv.fill_state(x[..., :prefix])
        rest = torch.stack([conv.step(x[..., t]) for t in range(prefix, 40)], -1)
    torch.testing.assert_close(rest, expected[..., prefix:], atol=1e-5, rtol=0)


def test_state_is_not_in_the_state_dict_and_step_needs_reset():
    conv = CausalConv1d(2, 2, 2)
    with pytest.raises(RuntimeError, match="reset_state"):
        conv.step(torch.zeros(1, 2))
    keys = set(conv.state_dict())
    conv.reset_state(4)
    assert set(conv.state_dict()) == keys == {"weight", "bias"}
    conv.clear_state()
    with pytest.raises(RuntimeError):
        conv.step(torch.zeros(4, 2))


@pytest.mark.parametrize("kernel,dilation", [(1, 1), (2, 1), (3, 1), (3, 4), (4, 2)])
def test_conv1d_same_keeps_length_and_is_centred(kernel, dilation):
    conv = Conv1dSame(1, 1, kernel, dilation, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.zeros(1, 1, 41)
    x[..., 20] = 1.0
    y = conv(x)
    assert y.shape == x.shape
    support = torch.nonzero(y[0, 0]).flatten()
    left, right = same_padding(kernel, dilation)
    assert support.min().item() == 20 - right and support.max().item() == 20 + left
