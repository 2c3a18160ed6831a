"""The residual blocks of the fast WaveNet stack as one autograd function with its own backward.

Layout: **time-major rows** ``[T * B, C]`` (row ``t * B + b`` is window ``b`` at time ``t``).
Shifting a sequence by ``d`` steps is then a contiguous slice of rows, ``x[: (T - d) * B]``, so a
dilated kernel-``K`` convolution is ``K`` plain GEMMs on contiguous row ranges that accumulate
into one output (``addmm_`` into a row slice), with no concatenation, padding or transposed
copies, forward or backward. Its backward, written out here, likewise accumulates the input
gradient tap by tap into one buffer (the residual path's gradient folded into the first
``addmm``), instead of the zero-filled slice gradients and copies autograd builds for views.

Per block ``i`` (``K`` taps, dilation ``d``; ``C`` = dilation channels)::

    h   = sum_k x(t - (K-1-k) d) W_k + b + l(t) V_l + g V_g     [T_i * B, 2C]
    z   = tanh(h[:, :C]) * sigmoid(h[:, C:])                    [T_i * B, C]
    x'  = x(t) + z R + r                                        (not for the last block)

Every block writes its gated output at the positions the stack reads (the last ``tail``) into
its column slice of one ``[tail * B, n * C]`` buffer, the function's output: the stack applies
all the skip 1x1s to it in one product. Saved for backward: each block's input, tanh and
sigmoid (``recompute=True``, activation checkpointing: the inputs only; the rest is recomputed
block by block in backward).

Backward of the gate, from ``a = dz * sigmoid`` and ``at = a * tanh``: ``dh_f = a - at * tanh``
(``tanh' = 1 - tanh^2``) and ``dh_g = at - at * sigmoid`` (``sigmoid' = s (1 - s)``), two
``addcmul`` passes writing straight into the halves of ``dh``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class BlockPlan:
    """Static shape facts of one block: taps, dilation, channels, which parts it has."""

    kernel: int
    dilation: int
    channels: int  # C_dil
    residual: bool
    local: bool


@dataclass(frozen=True)
class StackPlan:
    """What the function needs besides tensors: blocks, batch, padding, output length."""

    blocks: tuple[BlockPlan, ...]
    batch: int
    padded: bool
    tail: int  # positions the stack reads (every block's last ``tail`` gated outputs)
    recompute: bool  # activation checkpointing: save block inputs only


def _taps(p: BlockPlan, t_in: int, padded: bool) -> tuple[int, list[tuple[int, int, int, int]]]:
    """(T_out, [(k, in_start, out_start, length)] for every tap but the last, in time steps).
    The last tap (no shift) always maps input steps ``[T_in - T_out, T_in)`` onto every output
    step."""
    ctx = (p.kernel - 1) * p.dilation
    t_out = t_in if padded else t_in - ctx
    taps = []
    for k in range(p.kernel - 1):
        shift = (p.kernel - 1 - k) * p.dilation
        if padded:
            if shift < t_in:
                taps.append((k, 0, shift, t_in - shift))
        else:
            taps.append((k, k * p.dilation, 0, t_out))
    return t_out, taps


def _params(p: BlockPlan, flat: list[Tensor], i: int) -> tuple[dict[str, Tensor], int]:
    """This block's tensors from the flat parameter list starting at ``i`` -> (dict, next i)."""
    names = ["conv_w", "conv_b"] + (["local_w"] if p.local else []) + (
        ["res_w", "res_b"] if p.residual else [])
    return dict(zip(names, flat[i : i + len(names)])), i + len(names)


def _pre_gate(p: BlockPlan, w: dict[str, Tensor], x: Tensor, gb: Tensor | None,
              l_tm: Tensor | None, plan: StackPlan) -> tuple[Tensor, Tensor, int]:
    """x [T_in B, C_res] -> (tanh [T_out B, C], sigmoid [T_out B, C], T_out)."""
    b = plan.batch
    t_in = x.shape[0] // b
    t_out, taps = _taps(p, t_in, plan.padded)
    cw = w["conv_w"]  # [2C, C_res, K]
    if gb is None:
        h = torch.addmm(w["conv_b"], x[(t_in - t_out) * b :], cw[:, :, -1].t())
    else:  # conv and global bias in the one pass that initialises h
        h = x.new_empty(t_out, b, gb.shape[-1])
        h.copy_(gb + w["conv_b"])  # broadcast over time (a reshape of an expand may not copy)
        h = h.view(t_out * b, -1)
        h.addmm_(x[(t_in - t_out) * b :], cw[:, :, -1].t())
    for k, i0, o0, n in taps:
        h[o0 * b : (o0 + n) * b].addmm_(x[i0 * b : (i0 + n) * b], cw[:, :, k].t())
    if p.local:
        h.addmm_(l_tm[l_tm.shape[0] - t_out * b :], w["local_w"][:, :, 0].t())
    c = p.channels
    return torch.tanh(h[:, :c]), torch.sigmoid(h[:, c:]), t_out


def run_blocks(plan: StackPlan, x: Tensor, gbias: Tensor | None, l_tm: Tensor | None,
               flat: list[Tensor], keep: list[Tensor] | None = None) -> Tensor:
    """The forward: x [T_0 B, C_res] -> gated outputs [tail B, n C]. ``keep`` (when given)
    collects, per block, its input, tanh, sigmoid and gated output (None when it is the
    output's column slice; only the input when recomputing)."""
    b, tail = plan.batch, plan.tail
    c = plan.blocks[0].channels
    z_all = x.new_empty(tail * b, c * len(plan.blocks))
    i = 0
    for n, p in enumerate(plan.blocks):
        w, i = _params(p, flat, i)
        gb = None if gbias is None else gbias[:, 2 * c * n : 2 * c * (n + 1)]
        th, sg, t_out = _pre_gate(p, w, x, gb, l_tm, plan)
        cols = z_all[:, c * n : c * (n + 1)]
        if t_out == tail:
            z = torch.mul(th, sg, out=cols)
        else:
            z = th * sg
            cols.copy_(z[(t_out - tail) * b :])
        if keep is not None:
            keep += [x] if plan.recompute else [x, th, sg, None if t_out == tail else z]
        if p.residual:
            x_next = torch.addmm(w["res_b"], z, w["res_w"][:, :, 0].t())
            x = x_next.add_(x[x.shape[0] - t_out * b :])
    return z_all


def _gate_backward(gz: Tensor, th: Tensor, sg: Tensor) -> Tensor:
    """dL/dz [R, C] -> dL/dh [R, 2C] for z = tanh(f) * sigmoid(g)."""
    c = gz.shape[1]
    gh = gz.new_empty(gz.shape[0], 2 * c)
    a = gz * sg
    at = a * th
    torch.addcmul(a, at, th, value=-1.0, out=gh[:, :c])
    torch.addcmul(at, at, sg, value=-1.0, out=gh[:, c:])
    return gh


def _block_backward(
    p: BlockPlan, w: dict[str, Tensor], saved: tuple[Tensor, Tensor, Tensor, Tensor],
    g_next: Tensor | None, g_cols: Tensor, plan: StackPlan, l_tm: Tensor | None,
    g_l: Tensor | None, per_batch: bool,
) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
    """One block's backward: (dL/dx [T_in B, C_res], dL/dh summed over time [B, 2C] when
    ``per_batch`` (the global projection's gradient), parameter grads). ``saved``: input,
    tanh, sigmoid, gated output; ``g_next``: dL/dx' (None for the last block); ``g_cols``:
    dL/d(its gated tail)."""
    x, th, sg, z = saved
    b = plan.batch
    t_in = x.shape[0] // b
    t_out, taps = _taps(p, t_in, plan.padded)
    grads: dict[str, Tensor] = {}
    skip_from = (t_out - plan.tail) * b
    if p.residual:
        gz = torch.mm(g_next, w["res_w"][:, :, 0])
        gz[skip_from:].add_(g_cols)
        grads["res_w"] = torch.mm(g_next.t(), z).unsqueeze(-1)
        grads["res_b"] = g_next.sum(0)
    else:
        gz = g_cols if skip_from == 0 else torch.cat([g_cols.new_zeros(skip_from, g_cols.shape[1]),
                                                      g_cols])
    gh = _gate_backward(gz, th, sg)
    g_batch = gh.view(t_out, b, -1).sum(0) if per_batch else None
    grads["conv_b"] = gh.sum(0) if g_batch is None else g_batch.sum(0)
    cw = w["conv_w"]
    gw = [None] * p.kernel
    ctx0 = (t_in - t_out) * b
    gw[-1] = torch.mm(gh.t(), x[ctx0:])
    for k, i0, o0, n in taps:
        gw[k] = torch.mm(gh[o0 * b : (o0 + n) * b].t(), x[i0 * b : (i0 + n) * b])
    grads["conv_w"] = torch.stack(gw, -1)
    if p.local:
        rows = l_tm[l_tm.shape[0] - t_out * b :]
        grads["local_w"] = torch.mm(gh.t(), rows).unsqueeze(-1)
        if g_l is not None:
            g_l[g_l.shape[0] - t_out * b :].addmm_(gh, w["local_w"][:, :, 0])
    gx = x.new_empty(x.shape)
    gx[:ctx0].zero_()
    if g_next is None:
        torch.mm(gh, cw[:, :, -1], out=gx[ctx0:])
    else:
        torch.addmm(g_next, gh, cw[:, :, -1], out=gx[ctx0:])
    for k, i0, o0, n in taps:
        gx[i0 * b : (i0 + n) * b].addmm_(gh[o0 * b : (o0 + n) * b], cw[:, :, k])
    return gx, g_batch, grads


class StackBlocks(torch.autograd.Function):
    """``run_blocks`` with the hand-written backward above (see the module docstring)."""

    @staticmethod
    def forward(ctx, plan: StackPlan, x: Tensor, gbias: Tensor | None, l_tm: Tensor | None,
                *flat: Tensor) -> Tensor:
        keep: list[Tensor] = []
        z_all = run_blocks(plan, x, gbias, l_tm, list(flat), keep)
        ctx.plan = plan
        ctx.save_for_backward(gbias, l_tm, z_all, *flat, *keep)
        ctx.n_flat = len(flat)
        return z_all

    @staticmethod
    def backward(ctx, g_zall: Tensor):  # noqa: ANN205 - autograd's contract
        plan: StackPlan = ctx.plan
        saved = ctx.saved_tensors
        gbias, l_tm, z_all = saved[:3]
        flat, keep = list(saved[3 : 3 + ctx.n_flat]), list(saved[3 + ctx.n_flat :])
        return (None, *_backward(plan, g_zall, gbias, l_tm, z_all, flat, keep,
                                 ctx.needs_input_grad))


def _backward(plan: StackPlan, g_zall: Tensor, gbias: Tensor | None, l_tm: Tensor | None,
              z_all: Tensor, flat: list[Tensor], keep: list[Tensor | None],
              needs: tuple[bool, ...]) -> tuple:
    """Every block's backward in reverse -> grads of (x, gbias, l_tm, *flat)."""
    c = plan.blocks[0].channels
    per = 1 if plan.recompute else 4
    ws, i = [], 0
    for p in plan.blocks:
        w, i = _params(p, flat, i)
        ws.append(w)
    g_l = torch.zeros_like(l_tm) if l_tm is not None and needs[3] else None
    g_gb = None if gbias is None else torch.empty_like(gbias)
    g_flat: list[Tensor] = []
    g_next = None
    for n in reversed(range(len(plan.blocks))):
        p, w = plan.blocks[n], ws[n]
        x = keep[per * n]
        cols = slice(c * n, c * (n + 1))
        if plan.recompute:
            gb = None if gbias is None else gbias[:, 2 * c * n : 2 * c * (n + 1)]
            th, sg, _ = _pre_gate(p, w, x, gb, l_tm, plan)
            z = th * sg
        else:
            th, sg, z = keep[per * n + 1 : per * n + 4]
            z = z_all[:, cols] if z is None else z
        g_next, g_batch, grads = _block_backward(
            p, w, (x, th, sg, z), g_next, g_zall[:, cols], plan, l_tm, g_l, g_gb is not None)
        if g_gb is not None:
            g_gb[:, 2 * c * n : 2 * c * (n + 1)] = g_batch
        g_flat = [grads[k] for k in w] + g_flat
    return (g_next, g_gb, g_l, *g_flat)
