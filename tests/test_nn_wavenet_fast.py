"""The fast stack forward (nn/wavenet_fast.py) equals the reference path: outputs and every
gradient (parameters, global and local conditioning), padded and valid, embedding and one-hot,
kernel 2 and 3, activation checkpointing on and off."""

from __future__ import annotations

import itertools

import pytest
import torch

from waveloom.nn.wavenet import WaveNetStack

G, L = 6, 5
CASES = list(itertools.product(["embedding", "onehot"], [False, True], [False, True], [2, 3]))


def _run(stack, codes, g, l, padded, reference):
    stack.zero_grad(set_to_none=True)
    for t in (g, l):
        if t is not None:
            t.grad = None
    out = stack(codes, g, l, padded=padded, reference=reference)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    (out * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in stack.named_parameters()}
    for name, t in (("g", g), ("l", l)):
        if t is not None:
            grads[name] = t.grad.clone()
    return out.detach(), grads


@pytest.mark.parametrize(("input", "cond", "checkpointed", "kernel"), CASES)
@pytest.mark.parametrize("padded", [False, True])
def test_fast_forward_equals_reference(input, cond, checkpointed, kernel, padded):
    torch.manual_seed(0)
    stack = WaveNetStack(
        out_channels=11, residual_channels=8, dilation_channels=6, skip_channels=10,
        end_channels=9, layers_per_stack=3, stacks=2, kernel_size=kernel, input=input,
        global_channels=G if cond else 0, local_channels=L if cond else 0,
        checkpoint_activations=checkpointed,
    ).train()
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 256, (2, 60), generator=gen)
    g = torch.randn(2, G, generator=gen).requires_grad_() if cond else None
    l = torch.randn(2, L, 60, generator=gen).requires_grad_() if cond else None
    ref_out, ref_grads = _run(stack, codes, g, l, padded, reference=True)
    out, grads = _run(stack, codes, g, l, padded, reference=False)
    assert out.shape == ref_out.shape
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    assert grads.keys() == ref_grads.keys()
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("padded", [False, True])
def test_fast_forward_equals_reference_at_batch_one(padded):
    torch.manual_seed(0)
    stack = WaveNetStack(out_channels=7, residual_channels=8, dilation_channels=6,
                         skip_channels=10, end_channels=9, layers_per_stack=3, stacks=2,
                         global_channels=G, local_channels=L).train()
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 256, (1, 40), generator=gen)
    g = torch.randn(1, G, generator=gen).requires_grad_()
    l = torch.randn(1, L, 40, generator=gen).requires_grad_()
    ref_out, ref_grads = _run(stack, codes, g, l, padded, reference=True)
    out, grads = _run(stack, codes, g, l, padded, reference=False)
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_fast_forward_refuses_missing_conditioning():
    torch.manual_seed(0)
    stack = WaveNetStack(out_channels=4, residual_channels=4, dilation_channels=4,
                         skip_channels=4, end_channels=4, layers_per_stack=2, stacks=1,
                         global_channels=G, local_channels=L)
    codes = torch.zeros(1, 10, dtype=torch.long)
    with pytest.raises(ValueError, match="globally"):
        stack(codes, None, torch.zeros(1, L, 10))
    with pytest.raises(ValueError, match="locally"):
        stack(codes, torch.zeros(1, G), None)


@pytest.mark.parametrize("padded", [False, True])
def test_fast_forward_under_bf16_autocast(padded):
    """Under CPU bf16 autocast the blocks run in bf16 (their inputs cast once), the gradients
    reach the float32 parameters in float32 and stay close to the float32 gradients."""
    torch.manual_seed(0)
    stack = WaveNetStack(
        out_channels=11, residual_channels=8, dilation_channels=6, skip_channels=10,
        end_channels=9, layers_per_stack=3, stacks=2, global_channels=G, local_channels=L,
    ).train()
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 256, (2, 60), generator=gen)
    g = torch.randn(2, G, generator=gen).requires_grad_()
    l = torch.randn(2, L, 60, generator=gen).requires_grad_()
    ref_out, ref_grads = _run(stack, codes, g, l, padded, reference=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, grads = _run(stack, codes, g, l, padded, reference=False)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref_out, rtol=0.05, atol=0.05)
    for name, grad in ref_grads.items():
        assert grads[name].dtype == torch.float32, name
        scale = float(grad.abs().max()) + 1e-6
        # bf16 keeps 8 mantissa bits: the time sums of bf16 products (bias and global
        # projection gradients) land within a few % of the largest entry
        assert float((grads[name] - grad).abs().max()) <= 0.1 * scale + 1e-3, name
