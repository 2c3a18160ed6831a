"""Batched WaveNet sampling on a GPU with CUDA graphs.

On a GPU one sample of a WaveNet is ~6 tiny kernels per layer: at batch 1-64 the step is
bound by kernel *launch* latency (~5 us each from Python), not by arithmetic. A CUDA graph
records one whole sample -- the draw from the head, the feedback and every layer -- once, and
each later sample is a single ``graph.replay()``.

A graph replays the same kernels on the same memory, so nothing in the step may depend on a
Python value that changes between samples. The reference cached step
(:class:`~waveloom.nn.wavenet.StackStep`) keeps its ring-buffer phase in a Python int, so it is
re-expressed here as :class:`RingStep`: the clock is a device tensor, ring slots are computed
from it on the device (``index_copy_`` / ``index_select``), and the uniforms and local rows are
read at device-side indices. The arithmetic is the reference's (sigmoid via tanh, pre-halved
gate rows, all skips in one product), so results match it to float rounding.

:class:`RingStep` runs anywhere (the CPU tests use it eagerly); :func:`sample_cuda_graph`
captures it when the model is on CUDA. Its speed has not been measured here (no GPU was
available when it was written); ``benchmarks/sampling.py`` measures it where CUDA exists.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from waveloom.nn.wavenet import WaveNetStack
from waveloom.sampling.incremental import Samplable, _check, draw_uniforms

WARMUP = 2  # eager samples before capture (cuBLAS/allocator set-up happens outside the graph)
LOCAL_CHUNK = 1024


def _step_form(w: Tensor, d: int) -> Tensor:
    """Halve the gate half (last dim ``2d``) so one tanh serves filter and gate."""
    w = w.clone()
    w[..., d:] *= 0.5
    return w


class RingStep:
    """A :class:`WaveNetStack` as one capturable sample step with device-side state.

    ``reset(g)`` zeroes the caches; ``prime(codes, local)`` loads a history with one parallel
    pass; ``__call__(code, l_t)`` feeds ``code`` [B] (+ ``l_t`` [B, n*2D], step form) and
    returns the next parameters [B, P]. No call syncs with the host or reads a Python value
    that changes from sample to sample.
    """

    def __init__(self, stack: WaveNetStack, batch: int, device: torch.device) -> None:
        self.stack, self.batch, self.device = stack, batch, device
        dtype = stack.out2.weight.dtype
        blocks = list(stack.blocks)
        self.n, self.k = len(blocks), stack.input_conv.kernel_size[0]
        d, c = stack.dilation_channels, stack.residual_channels
        self.d, self.c = d, c

        def prep(t: Tensor) -> Tensor:
            return t.detach().to(device=device, dtype=dtype).contiguous()

        w_in = stack.input_conv.weight.detach().double()  # [C, C_in, K]
        inputs = stack.code_inputs()
        if inputs is not None:  # an embedding, or scalar input's levels [V, 1]
            table = torch.einsum("vi,cik->kvc", inputs.detach().double(), w_in)
        else:
            table = w_in.permute(2, 1, 0)
        # Row V is the zero padding before t = 0 (what forward() sees there).
        self.in_table = prep(torch.cat([table, table.new_zeros(self.k, 1, c)], 1))  # [K,V+1,C]
        self.pad_code = self.in_table.shape[1] - 1
        self.taps_k = torch.arange(self.k, device=device)[:, None]
        self.in_b = prep(stack.input_conv.bias)
        self.conv_w = [
            prep(_step_form(b.conv.weight.detach().permute(2, 1, 0).reshape(self.k * c, 2 * d), d))
            for b in blocks
        ]
        self.conv_b = prep(torch.stack([b.conv.bias.detach() for b in blocks]))  # [n, 2D]
        self.global_w = (
            prep(torch.stack([b.global_proj.weight.detach() for b in blocks]))
            if stack.global_channels
            else None
        )
        self.res_w = [prep(0.5 * b.res.weight.detach()[:, :, 0].t()) for b in blocks[:-1]]
        self.res_b = [prep(b.res.bias) for b in blocks[:-1]]
        self.skip_w = prep(torch.cat([0.5 * b.skip.weight.detach()[:, :, 0].t() for b in blocks]))
        self.skip_b = prep(torch.stack([b.skip.bias.detach() for b in blocks]).sum(0))
        self.out1_w, self.out1_b = prep(stack.out1.weight[:, :, 0].t()), prep(stack.out1.bias)
        self.out2_w, self.out2_b = prep(stack.out2.weight[:, :, 0].t()), prep(stack.out2.bias)
        self.local_w = None
        if stack.local_channels:
            w = torch.stack([b.local_proj.weight.detach()[:, :, 0] for b in blocks])  # [n,2D,L]
            self.local_w = prep(_step_form(w.transpose(1, 2), d).transpose(0, 1).reshape(
                stack.local_channels, self.n * 2 * d))
        dil = torch.tensor(stack.dilations, device=device)
        self.ring_len = ((self.k - 1) * dil + 1).tolist()
        back = torch.arange(self.k - 1, -1, -1, device=device)  # tap k reads t - (K-1-k) d
        self.tap_back = [back * int(dl) for dl in stack.dilations]
        self.code_back = back
        self.rings = [torch.zeros(r, batch, c, device=device, dtype=dtype) for r in self.ring_len]
        self.codes = torch.full((self.k, batch), self.pad_code, device=device)
        self.clock = torch.zeros(1, dtype=torch.long, device=device)
        self.bias = torch.zeros(batch, self.n * 2 * d, device=device, dtype=dtype)
        self.z2 = torch.zeros(batch, self.n * d, device=device, dtype=dtype)
        self.g: Tensor | None = None

    @torch.no_grad()
    def reset(self, g: Tensor | None) -> None:
        """Zero caches (== forward's zero padding) and fold ``g`` [B, G] into the biases."""
        bias = self.conv_b.unsqueeze(0).expand(self.batch, -1, -1)
        if self.global_w is not None:
            if g is None:
                raise ValueError("this stack is globally conditioned: pass g [B, G]")
            self.g = g.to(self.device, self.conv_b.dtype)
            bias = bias + torch.einsum("bg,nog->bno", self.g, self.global_w)
        self.bias.copy_(_step_form(bias, self.d).reshape(self.batch, -1))
        for ring in self.rings:
            ring.zero_()
        self.codes.fill_(self.pad_code)
        self.clock.zero_()

    @torch.no_grad()
    def local_rows(self, local: Tensor) -> Tensor:
        """Local features [B, L, T] -> step-form rows [T, B, n*2D]."""
        assert self.local_w is not None
        return torch.einsum("blt,lo->tbo", local.to(self.local_w), self.local_w).contiguous()

    @torch.no_grad()
    def prime(self, codes: Tensor, local: Tensor | None = None) -> Tensor:
        """Load a history ``codes`` [B, T] (+ ``local`` [B, L, T]) in one parallel pass."""
        rf = self.stack.receptive_field
        if codes.shape[-1] > rf:
            codes = codes[..., -rf:]
            local = None if local is None else local[..., -rf:]
        out, kept = self.stack.forward_keeping_history(
            codes.to(self.device), self.g, local, [0] + [ring.shape[0] for ring in self.rings]
        )
        t = codes.shape[-1]
        for ring, x in zip(self.rings, kept[1:]):
            assert x is not None
            r = ring.shape[0]
            past = torch.arange(max(0, t - r + 1), t, device=self.device)
            ring[past % r] = x[..., past - (t - x.shape[-1])].permute(2, 0, 1).to(ring.dtype)
        for j in range(1, self.k):
            self.codes[(t - j) % self.k] = codes[:, t - j] if t - j >= 0 else self.pad_code
        self.clock.fill_(t)
        return out[..., -1]

    def __call__(self, code: Tensor, l_t: Tensor | None = None) -> Tensor:
        """Feed ``code`` [B] at the device clock; return the parameters [B, P]."""
        t = self.clock
        self.codes.index_copy_(0, t % self.k, code.view(1, -1))
        past = self.codes.index_select(0, (t - self.code_back) % self.k)  # [K, B]
        x = self.in_table[self.taps_k, past].sum(0)
        x = x + self.in_b
        bias = self.bias if l_t is None else self.bias + l_t
        d2, d = 2 * self.d, self.d
        for i, ring in enumerate(self.rings):
            r = ring.shape[0]
            ring.index_copy_(0, t % r, x.unsqueeze(0))
            taps = ring.index_select(0, (t - self.tap_back[i]) % r)  # [K, B, C]
            taps = taps.transpose(0, 1).reshape(self.batch, self.k * self.c)
            h = torch.addmm(bias[:, i * d2 : (i + 1) * d2], taps, self.conv_w[i]).tanh_()
            z2 = self.z2[:, i * d : (i + 1) * d]
            torch.addcmul(h[:, :d], h[:, :d], h[:, d:], out=z2)
            if i < len(self.res_w):
                x = x + torch.addmm(self.res_b[i], z2, self.res_w[i])
        self.clock.add_(1)
        skip = torch.addmm(self.skip_b, self.z2, self.skip_w).relu_()
        hidden = torch.addmm(self.out1_b, skip, self.out1_w).relu_()
        return torch.addmm(self.out2_b, hidden, self.out2_w)


class _Sampler:
    """Static buffers and the one-sample body that a CUDA graph captures."""

    def __init__(self, step: RingStep, head: nn.Module, uniforms: Tensor, length: int,
                 temperature: float, local_rows: int) -> None:
        self.step, self.head, self.temperature = step, head, temperature
        b = step.batch
        self.uniforms = uniforms  # [length, B, U] on the device
        self.codes = torch.zeros(b, length, dtype=torch.long, device=step.device)
        self.index = torch.zeros(1, dtype=torch.long, device=step.device)  # the sample drawn
        self.params: Tensor | None = None
        self.loc: Tensor | None = None
        self.loc_index = torch.zeros(1, dtype=torch.long, device=step.device)
        if local_rows:
            self.loc = torch.zeros(local_rows, b, step.bias.shape[1], device=step.device,
                                   dtype=step.bias.dtype)

    def body(self) -> None:
        """Draw sample ``index`` from ``params``, record it, feed it back, advance."""
        assert self.params is not None
        u = self.uniforms.index_select(0, self.index)[0]
        code = self.head.sample(self.params, u, self.temperature)
        self.codes.index_copy_(1, self.index, code.view(-1, 1))
        l_t = None if self.loc is None else self.loc.index_select(0, self.loc_index)[0]
        self.params.copy_(self.step(self.head.input_codes(code), l_t))
        self.index.add_(1)
        self.loc_index.add_(1)


@torch.no_grad()
def sample_cuda_graph(
    model: Samplable,
    n: int,
    length: int,
    cond: dict[str, Any] | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    prime: Tensor | None = None,
    progress: bool = True,
    use_graph: bool | None = None,
) -> Tensor:
    """:func:`~waveloom.sampling.incremental.sample_incremental` with one CUDA-graph replay
    per sample -> [n, length] long codes.

    ``use_graph`` defaults to "the model is on CUDA"; ``False`` runs the same body eagerly
    (on any device), which is how the CPU tests check it against the reference.
    """
    _check(n, length, temperature)
    stack, head = model.stack, model.head
    plan = model.sampling_plan(n, length, cond, prime)
    device = plan.prefix.device
    graphs = device.type == "cuda" if use_graph is None else use_graph
    if graphs and device.type != "cuda":
        raise ValueError("CUDA graphs need the model on a CUDA device")
    step = RingStep(stack, n, device)
    step.reset(plan.g)
    p = plan.prefix.shape[-1]
    local = plan.local
    uniforms = draw_uniforms(seed, length, n, head.uniforms_per_step).to(device)
    chunk = min(LOCAL_CHUNK, length)
    sampler = _Sampler(step, head, uniforms, length, temperature, chunk if local is not None else 0)
    sampler.params = step.prime(plan.prefix, None if local is None else local[..., 1 : p + 1])
    sampler.params = sampler.params.contiguous().clone()
    graph = None
    with tqdm(total=length, disable=not progress, unit="sample", desc="cuda-graph sampling") as bar:
        for s0 in range(0, length - 1, chunk):  # every sample but the last is drawn + fed
            s1 = min(length - 1, s0 + chunk)
            if sampler.loc is not None:
                assert local is not None
                rows = step.local_rows(local[..., p + 1 + s0 : p + 1 + s1])
                sampler.loc[: rows.shape[0]].copy_(rows)
                sampler.loc_index.zero_()
            s = s0
            if graphs and graph is None:  # warm up on a side stream, then record one sample
                warm = min(WARMUP, s1 - s0)
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(warm):
                        sampler.body()
                torch.cuda.current_stream().wait_stream(side)
                s += warm
                if s < s1:
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):  # recording runs nothing
                        sampler.body()
            for _ in range(s, s1):
                if graph is None:
                    sampler.body()
                else:
                    graph.replay()
            bar.update(s1 - s0)
        u_last = uniforms[length - 1]
        sampler.codes[:, length - 1] = head.sample(sampler.params, u_last, temperature)
        bar.update(1)
    return sampler.codes

