"""The fast parallel forward of :class:`waveloom.nn.wavenet.WaveNetStack` (training, scoring).

Same function as the reference ``WaveNetStack._run`` (tested equal in outputs and in every
gradient), written for throughput on CPUs, where a WaveNet step is many small matrix products
and elementwise passes rather than a few big ones:

* **Time-major rows** ``[T * B, C]`` through the whole stack (row ``t * B + b``): every 1x1
  convolution is one GEMM over all positions, and a shift in time is a contiguous slice of
  rows, so the dilated kernel-K convolution is K GEMMs accumulating into one output with no
  concatenation or padding copies (:mod:`waveloom.nn.wavenet_core`, which also writes the
  blocks' backward by hand: tap-by-tap accumulation into one input-gradient buffer, the gate's
  gradient in two ``addcmul`` passes).
* **One GEMM for all skips**: only the last ``T_out`` positions of each layer's skip are ever
  read, so every layer writes its gated output there into its column slice of one
  ``[B*T_out, n*C_dil]`` buffer, multiplied once by the concatenated skip weights
  ``[n*C_dil, C_skip]`` (one large product instead of n small ones and n-1 additions).
* **Global conditioning once**: one product gives every layer's projection ``[B, n*2C_dil]``.
* **Autocast**: under ``torch.autocast`` the blocks run in the autocast dtype (bf16 GEMMs and
  gates; their inputs cast once, so gradients reach the float32 parameters in float32).

Measured (``benchmarks/train_speed.py --compare-reference``; docs/wavenet.md): see
BENCHMARKS.md "Training speed". The stack's own ``nn.Conv1d`` / ``nn.Linear`` parameters are
used as stored, so checkpoints, the sampling engines and the step path read them unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from waveloom.nn.wavenet_core import BlockPlan, StackBlocks, StackPlan, run_blocks

if TYPE_CHECKING:
    from waveloom.nn.wavenet import WaveNetStack


def _global_bias(stack: WaveNetStack, g: Tensor | None) -> Tensor | None:
    """Every block's global projection from one product: [B, n*2C] (None without g)."""
    if stack.global_channels == 0:
        return None
    if g is None:
        raise ValueError("this block is globally conditioned: pass g [B, G]")
    w = torch.cat([blk.global_proj.weight for blk in stack.blocks], 0)  # [n*2C, G]
    return g @ w.t()


def _inputs(stack: WaveNetStack, codes: Tensor) -> Tensor:
    """Codes [B, T] -> network input in time-major rows [T*B, C_in]."""
    rows = codes.t().reshape(-1)
    if rows.is_floating_point():  # scalar input's float values (checked by the stack)
        return stack._inputs(rows[None])[0].t()
    table = stack.code_inputs()
    if table is not None:
        return F.embedding(rows, table)
    return F.one_hot(rows, stack.input_levels).to(stack.input_conv.weight.dtype)


def _input_conv(stack: WaveNetStack, x: Tensor, batch: int, padded: bool) -> Tensor:
    """The (undilated) input conv on time-major rows [T*B, C_in] -> [T_0*B, C_res]: one GEMM
    per tap on shifted row ranges (a single layer, so plain autograd)."""
    conv = stack.input_conv
    k = conv.kernel_size[0]
    if padded and k > 1:
        x = F.pad(x, (0, 0, (k - 1) * batch, 0))
    t_out = x.shape[0] // batch - (k - 1)
    w = conv.weight
    out = torch.addmm(conv.bias, x[(k - 1) * batch :], w[:, :, -1].t())
    for j in range(k - 1):
        out = out + x[j * batch : (j + t_out) * batch] @ w[:, :, j].t()
    return out


def _plan(stack: WaveNetStack, batch: int, padded: bool, tail: int) -> StackPlan:
    blocks = tuple(
        BlockPlan(kernel=blk.conv.kernel_size[0], dilation=blk.conv.dilation[0],
                  channels=blk.dilation_channels, residual=blk.res is not None,
                  local=blk.local_proj is not None)
        for blk in stack.blocks)
    recompute = stack.checkpoint_activations and stack.training
    return StackPlan(blocks=blocks, batch=batch, padded=padded, tail=tail, recompute=recompute)


def _flat_params(stack: WaveNetStack) -> list[Tensor]:
    """The blocks' parameters in the order :mod:`wavenet_core` reads them."""
    flat = []
    for blk in stack.blocks:
        flat += [blk.conv.weight, blk.conv.bias]
        if blk.local_proj is not None:
            flat.append(blk.local_proj.weight)
        if blk.res is not None:
            flat += [blk.res.weight, blk.res.bias]
    return flat


def _blocks(stack: WaveNetStack, plan: StackPlan, x: Tensor, gbias: Tensor | None,
            l_tm: Tensor | None) -> Tensor:
    """The residual blocks -> gated outputs [tail*B, n*C_dil], through the hand-written
    backward when a gradient is wanted, in the autocast dtype under autocast."""
    flat = _flat_params(stack)
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    else:
        dtype = flat[0].dtype
    tensors = [None if t is None else t.to(dtype) for t in (x, gbias, l_tm)]
    flat = [p.to(dtype) for p in flat]
    with torch.autocast(device, enabled=False):
        if torch.is_grad_enabled() and any(
                t is not None and t.requires_grad for t in (*tensors, *flat)):
            return StackBlocks.apply(plan, *tensors, *flat)
        return run_blocks(plan, *tensors, flat)


def fast_forward(
    stack: WaveNetStack, codes: Tensor, g: Tensor | None, l: Tensor | None, padded: bool
) -> Tensor:
    """codes [B, T] long, g [B, G], l [B, L, T] -> params [B, P, T_out], as ``stack.forward``."""
    if stack.local_channels and l is None:
        raise ValueError("this block is locally conditioned: pass l [B, L, T]")
    gbias = _global_bias(stack, g)
    b, t = codes.shape
    x = _input_conv(stack, _inputs(stack, codes), b, padded)
    t_final = t if padded else t - stack.receptive_field + 1
    l_tm = None
    if l is not None and stack.local_channels:
        l_tm = l.permute(2, 0, 1).reshape(-1, l.shape[1])  # [T_l*B, L]
    z_all = _blocks(stack, _plan(stack, b, padded, t_final), x, gbias, l_tm)
    skip_w = torch.cat([blk.skip.weight[:, :, 0] for blk in stack.blocks], 1)  # [S, n*C]
    skip_b = torch.stack([blk.skip.bias for blk in stack.blocks]).sum(0)
    skip = torch.addmm(skip_b, z_all, skip_w.t()).relu_()
    hidden = torch.addmm(stack.out1.bias, skip, stack.out1.weight[:, :, 0].t()).relu_()
    out = torch.addmm(stack.out2.bias, hidden, stack.out2.weight[:, :, 0].t())
    return out.view(t_final, b, -1).permute(1, 2, 0)
