"""WaveNet block and stack: step() == forward(), causality, receptive field, conditioning."""

from __future__ import annotations

import pytest
import torch

from waveloom.nn.conditioning import GlobalConditioning, UpsampleConditioning
from waveloom.nn.wavenet import ResidualBlock, WaveNetStack

G, L = 6, 5


def _stack(input="embedding", kernel=2, g=G, l=L, layers=3, stacks=2, seed=0):
    torch.manual_seed(seed)
    return WaveNetStack(
        out_channels=11,
        residual_channels=8,
        dilation_channels=6,
        skip_channels=10,
        end_channels=9,
        layers_per_stack=layers,
        stacks=stacks,
        kernel_size=kernel,
        input=input,
        global_channels=g,
        local_channels=l,
    ).eval()


def _inputs(batch=2, length=45, seed=1):
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 256, (batch, length), generator=gen)
    g = torch.randn(batch, G, generator=gen)
    l = torch.randn(batch, L, length, generator=gen)
    return codes, g, l


def test_block_step_equals_forward_with_conditioning():
    torch.manual_seed(0)
    block = ResidualBlock(
        8, 6, 10, kernel_size=3, dilation=2, global_channels=G, local_channels=L
    ).eval()
    x = torch.randn(2, 8, 30)
    g = torch.randn(2, G)
    l = torch.randn(2, L, 30)
    with torch.no_grad():
        res, skip = block(x, g, l)
        step, const = block.reset_state(2, x.device, x.dtype, g)
        rows = block.local_rows(l)
        z2 = torch.empty(2, 6)
        res_steps, skip_steps = [], []
        for t in range(30):
            x_t = x[..., t].clone()
            step(x_t, const + rows[t], z2)  # updates x_t in place to x'
            res_steps.append(x_t)
            skip_steps.append(block.skip_of(z2))
    torch.testing.assert_close(torch.stack(res_steps, -1), res, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack(skip_steps, -1), skip, atol=1e-5, rtol=0)


def test_last_block_has_no_residual_conv():
    stack = _stack()
    assert stack.blocks[-1].res is None
    assert all(b.res is not None for b in stack.blocks[:-1])


@pytest.mark.parametrize("input,kernel", [("embedding", 2), ("onehot", 2), ("embedding", 3)])
def test_stack_step_equals_forward_every_t(input, kernel):
    stack = _stack(input=input, kernel=kernel)
    codes, g, l = _inputs()
    with torch.no_grad():
        expected = stack(codes, g, l)
        stack.reset_state(2, g)
        rows = stack.local_bias(l)  # [T, B, n*2C]
        steps = torch.stack([stack.step(codes[:, t], rows[t]) for t in range(codes.shape[1])], -1)
    torch.testing.assert_close(steps, expected, atol=1e-5, rtol=0)


def test_stack_without_conditioning_steps():
    stack = _stack(g=0, l=0)
    codes, _, _ = _inputs()
    with torch.no_grad():
        expected = stack(codes)
        stack.reset_state(2)
        steps = torch.stack([stack.step(codes[:, t]) for t in range(codes.shape[1])], -1)
    torch.testing.assert_close(steps, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("prefix", [1, 10, 44])
def test_prime_then_step_equals_forward(prefix):
    stack = _stack(kernel=3, layers=2)  # receptive field 1 + 2*(1 + 2*(1+2)) = 15 < 44
    codes, g, l = _inputs(length=60)
    with torch.no_grad():
        expected = stack(codes, g, l)
        stack.reset_state(2, g)
        first = stack.prime(codes[:, :prefix], l[..., :prefix])
        rows = stack.local_bias(l)
        rest = [stack.step(codes[:, t], rows[t]) for t in range(prefix, 60)]
    torch.testing.assert_close(first, expected[..., prefix - 1], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack(rest, -1), expected[..., prefix:], atol=1e-5, rtol=0)


def test_stack_is_causal_in_codes_and_local_features():
    stack = _stack()
    codes, g, l = _inputs(length=80)
    t0 = 50
    with torch.no_grad():
        y = stack(codes, g, l)
        codes2 = codes.clone()
        codes2[:, t0:] = (codes2[:, t0:] + 97) % 256
        l2 = l.clone()
        l2[..., t0:] += 3.0
        y2 = stack(codes2, g, l2)
    assert torch.equal(y[..., :t0], y2[..., :t0]), "the future leaked into the past"
    assert not torch.allclose(y[..., t0:], y2[..., t0:])


def test_receptive_field_is_exact():
    stack = _stack(kernel=2, layers=3, stacks=2)
    rf = stack.receptive_field
    assert rf == 1 + 1 + 2 * (1 + 2 + 4)
    codes, g, l = _inputs(length=60)
    t = 55
    with torch.no_grad():
        y = stack(codes, g, l)[..., t]
        outside = codes.clone()
        outside[:, t - rf] = (outside[:, t - rf] + 1) % 256
        inside = codes.clone()
        inside[:, t - rf + 1] = (inside[:, t - rf + 1] + 1) % 256
        assert torch.equal(stack(outside, g, l)[..., t], y)
        assert not torch.equal(stack(inside, g, l)[..., t], y)


def test_valid_mode_equals_the_padded_tail():
    stack = _stack(kernel=3)
    codes, g, l = _inputs(length=70)
    with torch.no_grad():
        full = stack(codes, g, l)
        valid = stack(codes, g, l, padded=False)
    assert valid.shape[-1] == 70 - stack.receptive_field + 1
    torch.testing.assert_close(valid, full[..., stack.receptive_field - 1 :], atol=1e-5, rtol=0)


def test_gradients_reach_every_parameter():
    stack = _stack().train()
    codes, g, l = _inputs(length=60)
    stack(codes, g, l, padded=False).square().mean().backward()
    missing = [n for n, p in stack.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, f"parameters without gradient (DDP would fail): {missing}"


def test_caches_stay_out_of_the_state_dict():
    stack = _stack()
    keys = set(stack.state_dict())
    stack.reset_state(3, torch.zeros(3, G))
    assert set(stack.state_dict()) == keys
    stack.clear_state()
    with pytest.raises(RuntimeError, match="reset_state"):
        stack.step(torch.zeros(3, dtype=torch.long))


def test_global_conditioning_unknown_rows_and_dropout():
    torch.manual_seed(0)
    gc = GlobalConditioning(dim=4, num_instruments=3)
    assert gc.out_dim == 8 and gc.keys() == ("pitch", "instrument")
    out = gc(torch.tensor([60, -1]), torch.tensor([-1, 2]))
    assert out.shape == (2, 8)
    torch.testing.assert_close(out[1, :4], gc.pitch.weight[128])
    torch.testing.assert_close(out[0, 4:], gc.instrument.weight[3])
    # Missing labels are unknown for the whole batch.
    torch.testing.assert_close(gc(batch=2)[:, :4], gc.pitch.weight[128].expand(2, -1))
    gc.dropout = 1.0 - 1e-9
    dropped = gc(torch.tensor([60, 61]), torch.tensor([0, 1]), dropout=True)
    torch.testing.assert_close(dropped, gc(batch=2))
    assert gc.check(torch.tensor([128]), None) is not None
    assert "num_instruments=3" in gc.check(None, torch.tensor([3]))
    assert gc.check(torch.tensor([-1, 127]), torch.tensor([-1, 2])) is None


def test_upsampler_length_and_strict_frame_alignment():
    torch.manual_seed(0)
    up = UpsampleConditioning(3, (4, 2))
    assert up.hop == 8
    with torch.no_grad():  # random weights: alignment must not depend on the init
        for p in up.parameters():
            p.normal_()
    frames = torch.randn(2, 3, 6)
    y = up(frames)
    assert y.shape == (2, 3, 48)
    k = 2
    moved = frames.clone()
    moved[..., k] += 1.0
    diff = (up(moved) - y).abs().sum(dim=(0, 1))
    changed = torch.nonzero(diff > 1e-6).flatten()
    assert changed.min().item() == k * 8 and changed.max().item() == (k + 1) * 8 - 1
    # A trailing partial frame repeats the last frame; more is an error.
    assert up(frames, 50).shape == (2, 3, 50)
    with pytest.raises(ValueError, match="frames cover"):
        up(frames, 60)


def test_upsampler_starts_as_nearest_neighbour():
    up = UpsampleConditioning(2, (4, 4))
    frames = torch.randn(1, 2, 3)
    torch.testing.assert_close(up(frames), frames.repeat_interleave(16, dim=-1))
