"""The WaveNet stack: gated dilated residual blocks with skip paths and conditioning.

Used by the WaveNet family, the NSynth decoder and any autoregressive prior over codes. Each
piece carries its incremental path next to its parallel one:

* :class:`ResidualBlock` - ``forward`` over a sequence; ``reset_state`` -> :class:`BlockStep`,
  the same layer for one sample.
* :class:`WaveNetStack` - ``forward(codes, g, l)`` for training and scoring; ``reset_state`` /
  ``prime`` / ``step`` for generation at O(layers) cost per sample.

Block (van den Oord et al. 2016, eq. 2-3; one conv makes filter and gate)::

    h = W * x + V_g g + V_l l          # causal dilated conv: C_res -> 2 C_dil
    z = tanh(h[:C_dil]) * sigmoid(h[C_dil:])
    x' = x + R z      (1x1)            # the last block has no R: its output is never read
    s  = S z          (1x1)            # skip contribution

Stack: codes -> embedding (or one-hot, or the code's scalar value) -> causal conv -> blocks
with dilations
1, 2, ..., 2^(L-1) repeated ``stacks`` times -> sum of skips -> ReLU -> 1x1 -> ReLU -> 1x1.

Weights are plain ``nn.Conv1d`` / ``nn.Linear`` / ``nn.Embedding`` attributes (see
:meth:`WaveNetStack.describe`), so a fused inference engine can read them without adapters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from waveloom.nn.conv import CausalConv1d, StepCache
from waveloom.nn.wavenet_fast import fast_forward

#: How the previous step enters the stack: a learnt embedding of its code, a one-hot code, or
#: the code's value as one channel (which also takes float values: a distillation teacher).
STACK_INPUTS = ("embedding", "onehot", "scalar")


class BlockStep:
    """One :class:`ResidualBlock` for one sample, with every weight prepared for the hot loop.

    Two algebraic rewrites make a step 5 tensor ops plus the cache copies:

    * ``sigmoid(a) = (1 + tanh(a/2)) / 2``: the gate rows of the conv weight and of every
      conditioning bias are pre-halved, so ONE in-place tanh covers filter and gate, and
      ``2z = tanh(f) + tanh(f) * tanh(g/2)`` is one ``addcmul``; the residual and skip weights
      are pre-halved to absorb the factor 2.
    * The skip 1x1 is not applied per layer: each layer writes ``2z`` into its slice of one
      ``[B, n_layers * C_dil]`` buffer and the stack applies all skip weights in one product.

    Plain object with slots: no ``nn.Module`` attribute lookups per step.
    """

    __slots__ = ("cache", "conv_w", "h", "filt", "gate", "res_w", "res_b", "res_out")

    def __init__(
        self, block: ResidualBlock, batch: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        c = block.dilation_channels
        self.cache = StepCache(
            block.conv.kernel_size[0],
            block.conv.dilation[0],
            block.residual_channels,
            batch,
            device,
            dtype,
        )
        w = block.conv.weight.detach().to(device=device, dtype=dtype)
        k = w.shape[-1]
        w = w.permute(2, 1, 0).reshape(k * block.residual_channels, 2 * c).clone()
        w[:, c:] *= 0.5
        self.conv_w = w.contiguous()
        self.h = torch.empty(batch, 2 * c, device=device, dtype=dtype)
        self.filt, self.gate = self.h[:, :c], self.h[:, c:]
        if block.res is not None:
            self.res_w = (0.5 * block.res.weight.detach()[:, :, 0]).t().to(device, dtype)
            self.res_w = self.res_w.contiguous()
            self.res_b = block.res.bias.detach().to(device, dtype)
            self.res_out = torch.empty(batch, block.residual_channels, device=device, dtype=dtype)
        else:
            self.res_w = self.res_b = self.res_out = None

    def __call__(self, x: Tensor, bias: Tensor, z2: Tensor) -> None:
        """x [B, C_res] (updated in place to x'), bias [B, 2 C_dil] (step form), z2 -> 2z."""
        h = self.h
        torch.addmm(bias, self.cache.push(x), self.conv_w, out=h)
        h.tanh_()
        torch.addcmul(self.filt, self.filt, self.gate, out=z2)
        if self.res_w is not None:
            torch.addmm(self.res_b, z2, self.res_w, out=self.res_out)
            x.add_(self.res_out)


def _step_form(bias: Tensor, channels: int) -> Tensor:
    """A gate pre-activation [..., 2C] -> the form BlockStep adds (gate half halved)."""
    out = bias.clone()
    out[..., channels:] *= 0.5
    return out


class ResidualBlock(nn.Module):
    """One gated residual layer: x [B, C_res, T] -> (x' [B, C_res, T'], skip [B, C_skip, T'])."""

    def __init__(
        self,
        residual_channels: int,
        dilation_channels: int,
        skip_channels: int,
        kernel_size: int,
        dilation: int,
        global_channels: int = 0,
        local_channels: int = 0,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.residual_channels = residual_channels
        self.dilation_channels = dilation_channels
        self.skip_channels = skip_channels
        self.conv = CausalConv1d(residual_channels, 2 * dilation_channels, kernel_size, dilation)
        # Conditioning projections carry no bias: the conv's bias already is one.
        self.global_proj = (
            nn.Linear(global_channels, 2 * dilation_channels, bias=False)
            if global_channels
            else None
        )
        self.local_proj = (
            nn.Conv1d(local_channels, 2 * dilation_channels, 1, bias=False)
            if local_channels
            else None
        )
        self.res = nn.Conv1d(dilation_channels, residual_channels, 1) if residual else None
        self.skip = nn.Conv1d(dilation_channels, skip_channels, 1)

    def forward(
        self,
        x: Tensor,
        g: Tensor | None = None,
        l: Tensor | None = None,
        padded: bool = True,
    ) -> tuple[Tensor | None, Tensor]:
        """x [B, C_res, T], g [B, G], l [B, L, T'] -> (x' or None, skip [B, C_skip, T']).

        ``T' = T`` when ``padded``, else ``T - (K-1)*d`` (valid positions only; ``l`` must
        already be cropped to them).
        """
        h = self.conv(x, padded)
        if self.global_proj is not None:
            if g is None:
                raise ValueError("this block is globally conditioned: pass g [B, G]")
            h = h + self.global_proj(g).unsqueeze(-1)
        if self.local_proj is not None:
            if l is None:
                raise ValueError("this block is locally conditioned: pass l [B, L, T]")
            h = h + self.local_proj(l)
        c = self.dilation_channels
        z = torch.tanh(h[:, :c]) * torch.sigmoid(h[:, c:])
        skip = self.skip(z)
        if self.res is None:
            return None, skip
        return x[..., -h.shape[-1] :] + self.res(z), skip

    # ------------------------------------------------------------------ incremental path

    @torch.no_grad()
    def reset_state(
        self,
        batch: int,
        device: torch.device | str,
        dtype: torch.dtype,
        g: Tensor | None = None,
    ) -> tuple[BlockStep, Tensor]:
        """Prepare one-sample steps: returns ``(step, const_bias)``.

        ``const_bias`` [B, 2 C_dil] is the conv bias plus the global projection of ``g`` in
        step form, computed once per generation; a step adds at most a local row
        (:meth:`local_rows`) to it. ``step(x, bias, z2)`` updates ``x`` [B, C_res] in place to
        ``x'`` and writes ``2z`` [B, C_dil] (see :meth:`skip_of`).
        """
        step = BlockStep(self, batch, device, dtype)
        bias = self.conv.bias.detach().to(device=device, dtype=dtype).expand(batch, -1)
        if self.global_proj is not None:
            if g is None:
                raise ValueError("this block is globally conditioned: pass g to reset_state")
            weight = self.global_proj.weight.detach().to(device=device, dtype=dtype)
            bias = bias + F.linear(g.to(device=device, dtype=dtype), weight)
        return step, _step_form(bias, self.dilation_channels).contiguous()

    @torch.no_grad()
    def local_rows(self, l: Tensor) -> Tensor:
        """Local projections in step form: l [B, L, T] -> [T, B, 2 C_dil]."""
        w = _step_form(self.local_proj.weight.detach()[:, :, 0].t(), self.dilation_channels)
        return torch.einsum("blt,lo->tbo", l.to(w.dtype), w)

    @torch.no_grad()
    def skip_of(self, z2: Tensor) -> Tensor:
        """This block's skip output [B, C_skip] from the ``2z`` a step wrote."""
        return F.linear(0.5 * z2, self.skip.weight[:, :, 0], self.skip.bias)


class WaveNetStack(nn.Module):
    """Codes [B, T] (+ global g [B, G], local l [B, L, T]) -> head parameters [B, P, T].

    Output ``t`` depends on input codes ``t - receptive_field + 1 .. t``; the model shifts
    codes by one so that output ``t`` predicts sample ``t + 1``.
    """

    def __init__(
        self,
        out_channels: int,
        residual_channels: int = 64,
        dilation_channels: int = 64,
        skip_channels: int = 256,
        end_channels: int = 256,
        layers_per_stack: int = 10,
        stacks: int = 2,
        kernel_size: int = 2,
        input: str = "embedding",
        global_channels: int = 0,
        local_channels: int = 0,
        input_levels: int = 256,
        checkpoint_activations: bool = False,
    ) -> None:
        super().__init__()
        self.checkpoint_activations = checkpoint_activations
        if input not in STACK_INPUTS:
            raise ValueError(f"input={input!r}: use one of {', '.join(STACK_INPUTS)}")
        self.input = input
        self.input_levels = input_levels
        self.residual_channels = residual_channels
        self.dilation_channels = dilation_channels
        self.skip_channels = skip_channels
        self.global_channels = global_channels
        self.local_channels = local_channels
        self.embed: nn.Embedding | None = None
        if input == "embedding":
            self.embed = nn.Embedding(input_levels, residual_channels)
            in_ch = residual_channels
        elif input == "scalar":
            # Code v enters as its value 2v / (levels - 1) - 1 (the mu-law companded level):
            # one channel, so float values in between enter as well (a distilled student's
            # samples, with gradients), and every code-driven engine reads it as a table.
            # (2v - top) / top: an exact numerator, so mirrored codes give opposite values
            # (on the CPU explicitly: built on the meta device to count parameters, a meta
            # arange goes through torch's Python decompositions, ~1.5 s of `generate`'s start-up)
            top = input_levels - 1
            levels = (2.0 * torch.arange(input_levels, dtype=torch.float32, device="cpu")
                      - top) / top
            self.register_buffer("scalar_levels", levels[:, None], persistent=False)
            in_ch = 1
        else:
            in_ch = input_levels
        self.input_conv = CausalConv1d(in_ch, residual_channels, kernel_size)
        self.dilations = [2**i for i in range(layers_per_stack)] * stacks
        n = len(self.dilations)
        self.blocks = nn.ModuleList(
            ResidualBlock(
                residual_channels,
                dilation_channels,
                skip_channels,
                kernel_size,
                d,
                global_channels,
                local_channels,
                residual=i < n - 1,
            )
            for i, d in enumerate(self.dilations)
        )
        self.out1 = nn.Conv1d(skip_channels, end_channels, 1)
        self.out2 = nn.Conv1d(end_channels, out_channels, 1)
        self.stepper: StackStep | None = None

    @property
    def receptive_field(self) -> int:
        """Input codes one output depends on: ``1 + (K-1) * (1 + sum(dilations))``."""
        return 1 + self.input_conv.left_context + sum(b.conv.left_context for b in self.blocks)

    def code_inputs(self) -> Tensor | None:
        """What code ``v`` feeds the input conv, as a matrix ``[levels, C_in]`` (the embedding's
        rows, or each level's scalar value); None for one-hot input (the identity)."""
        if self.embed is not None:
            return self.embed.weight
        if self.input == "scalar":
            return self.scalar_levels.to(self.input_conv.weight.dtype)
        return None

    def _inputs(self, codes: Tensor) -> Tensor:
        """Codes [B, T] (or, for scalar input, float values [B, T]) -> input [B, C_in, T]."""
        if codes.is_floating_point():
            if self.input != "scalar":
                raise ValueError(f"float inputs need input='scalar', not {self.input!r}")
            return codes.to(self.input_conv.weight.dtype).unsqueeze(1)
        table = self.code_inputs()
        if table is not None:
            return F.embedding(codes, table).transpose(1, 2)
        dtype = self.input_conv.weight.dtype
        return F.one_hot(codes, self.input_levels).to(dtype).transpose(1, 2)

    def forward(
        self,
        codes: Tensor,
        g: Tensor | None = None,
        l: Tensor | None = None,
        padded: bool = True,
        reference: bool = False,
    ) -> Tensor:
        """codes [B, T] long, g [B, G], l [B, L, T] -> params [B, P, T_out].

        ``padded=True``: ``T_out = T``, zero history before the first code (causal padding).
        ``padded=False``: only outputs with a complete receptive field,
        ``T_out = T - receptive_field + 1``, output ``j`` aligned with input
        ``j + receptive_field - 1``. This skips all work whose result a loss over the last
        positions would discard.

        By default this runs :func:`waveloom.nn.wavenet_fast.fast_forward` (time-major rows,
        dilated taps as GEMMs on row slices, a hand-written backward, one skip GEMM; measured
        by ``benchmarks/train_speed.py --compare-reference``); ``reference=True`` runs the
        plain layer-by-layer path it is tested against (same outputs and gradients to float32
        rounding).
        """
        if reference:
            return self._run(codes, g, l, padded)
        return fast_forward(self, codes, g, l, padded)

    @torch.no_grad()
    def forward_keeping_history(
        self, codes: Tensor, g: Tensor | None, l: Tensor | None, keep: Sequence[int]
    ) -> tuple[Tensor, list[Tensor | None]]:
        """Padded forward over a prefix that also returns, for the input conv and then each
        block, the last ``keep[i]`` frames of that layer's input ([B, C, <= keep[i]], or None
        where ``keep[i]`` is 0): exactly what a sampler's caches must hold after the prefix.

        Every sampling engine primes through this. Only the tails are kept, each a copy, so a
        layer's full-length activations are freed as the pass moves on: priming a paper-sized
        model for 256 streams needs one layer's activations at a time, not all 30 (which would
        be ~100 GB at the receptive field of the ``nsynth`` preset).
        """
        if len(keep) != len(self.blocks) + 1:
            raise ValueError(f"keep needs {len(self.blocks) + 1} lengths, got {len(keep)}")
        kept: list[Tensor | None] = []
        out = self._run(codes, g, l, True, capture=kept, keep=list(keep))
        return out, kept

    def _run(
        self,
        codes: Tensor,
        g: Tensor | None,
        l: Tensor | None,
        padded: bool,
        capture: list[Tensor | None] | None = None,
        keep: list[int] | None = None,
    ) -> Tensor:
        def remember(x: Tensor) -> None:
            if capture is not None and keep is not None:
                n = keep[len(capture)]
                capture.append(x[..., max(0, x.shape[-1] - n) :].clone() if n > 0 else None)

        x = self._inputs(codes)
        remember(x)
        x = self.input_conv(x, padded)
        skip: Tensor | None = None
        for block in self.blocks:
            remember(x)
            t_out = x.shape[-1] if padded else x.shape[-1] - block.conv.left_context
            l_i = None if l is None else l[..., l.shape[-1] - t_out :]
            if self.checkpoint_activations and self.training and torch.is_grad_enabled():
                # Activation checkpointing: keep only block inputs, recompute inside on backward.
                x_next, s = checkpoint(block, x, g, l_i, padded, use_reentrant=False)
            else:
                x_next, s = block(x, g, l_i, padded)
            skip = s if skip is None else skip[..., skip.shape[-1] - t_out :] + s
            if x_next is not None:
                x = x_next
        assert skip is not None
        return self.out2(F.relu(self.out1(F.relu(skip))))

    # ------------------------------------------------------------------ incremental path

    @torch.no_grad()
    def reset_state(
        self,
        batch: int,
        g: Tensor | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """Prepare ``batch`` streams for :meth:`step`: zero caches (== forward's zero padding),
        step-ready weights, and the global conditioning folded into every layer's bias."""
        if self.global_channels and g is None:
            raise ValueError("this stack is globally conditioned: pass g [B, G]")
        ref = self.out2.weight
        device = ref.device if device is None else torch.device(device)
        self.stepper = StackStep(self, batch, g, device, ref.dtype if dtype is None else dtype)

    def clear_state(self) -> None:
        """Free every cache (they are never part of the state dict)."""
        self.stepper = None

    def _stepper(self) -> StackStep:
        if self.stepper is None:
            raise RuntimeError("call reset_state(batch, g) before prime/step")
        return self.stepper

    @torch.no_grad()
    def local_bias(self, l: Tensor) -> Tensor:
        """Every layer's local projection for a span of samples: l [B, L, T] -> [T, B, n*2C].

        Row ``t`` is what :meth:`step` takes as ``l_t`` for the output at sample ``t``; a
        sampler computes it for a chunk of samples with one product instead of one per layer
        and step.
        """
        st = self._stepper()
        if st.local_w is None:
            raise ValueError("this stack has no local conditioning")
        return torch.einsum("blt,lo->tbo", l.to(st.local_w.dtype), st.local_w).contiguous()

    @torch.no_grad()
    def prime(self, codes: Tensor, l: Tensor | None = None) -> Tensor:
        """Feed a whole prefix in one parallel pass; return the last output's params [B, P].

        codes [B, T], l [B, L, T] (local features of the outputs, as in forward). After
        :meth:`reset_state`, this leaves every cache exactly as T calls of :meth:`step` would.
        Only the last ``receptive_field`` codes can reach the caches, so the prefix is cropped
        to them first.
        """
        st = self._stepper()
        rf = self.receptive_field
        if codes.shape[-1] > rf:
            codes = codes[..., -rf:]
            l = None if l is None else l[..., -rf:]
        caches = [st.input_cache] + [b.cache for b in st.blocks]
        out, kept = self.forward_keeping_history(codes, st.g, l, [c.ring for c in caches])
        for cache, tail in zip(caches, kept):
            assert tail is not None
            cache.fill(tail, codes.shape[-1])
        return out[..., -1]

    @torch.no_grad()
    def step(self, code_t: Tensor, l_t: Tensor | None = None) -> Tensor:
        """One sample: code_t [B] long (+ l_t [B, n*2C] from :meth:`local_bias`) -> [B, P].

        Equals ``forward(codes, g, l)[..., t]`` for the t-th call after :meth:`reset_state`
        (to float rounding), at the cost of a handful of small products per layer.
        """
        return self._stepper()(code_t, l_t)

    def describe(self) -> dict[str, object]:
        """Shapes and hyper-parameters a fused engine needs to read the weights directly."""
        return {
            "input": self.input,
            "input_levels": self.input_levels,
            "kernel_size": self.input_conv.kernel_size[0],
            "dilations": list(self.dilations),
            "residual_channels": self.residual_channels,
            "dilation_channels": self.dilation_channels,
            "skip_channels": self.skip_channels,
            "global_channels": self.global_channels,
            "local_channels": self.local_channels,
            "receptive_field": self.receptive_field,
        }


class StackStep:
    """A :class:`WaveNetStack` prepared for one-sample steps (built by ``reset_state``).

    Holds the caches, the step-form weights and every buffer a step writes, so the loop
    allocates only the returned parameters. Per step: one embedding row, the input conv, a
    :class:`BlockStep` per layer, then one product for all skips and the two output 1x1s.
    """

    def __init__(
        self,
        stack: WaveNetStack,
        batch: int,
        g: Tensor | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        def prep(t: Tensor) -> Tensor:
            return t.detach().to(device=device, dtype=dtype).contiguous()

        self.g = None if g is None else g.to(device=device, dtype=dtype)
        conv = stack.input_conv
        self.input_cache = StepCache(conv.kernel_size[0], 1, conv.in_channels, batch, device, dtype)
        k = conv.kernel_size[0]
        self.input_w = prep(
            conv.weight.permute(2, 1, 0).reshape(k * conv.in_channels, conv.out_channels)
        )
        self.input_b = prep(conv.bias)
        table = stack.code_inputs()
        if table is not None:
            self.embed_w: Tensor | None = prep(table)
            self.onehot = None
        else:
            self.embed_w = None
            self.onehot = torch.zeros(batch, stack.input_levels, device=device, dtype=dtype)
        prepared = [b.reset_state(batch, device, dtype, self.g) for b in stack.blocks]
        self.blocks = [p[0] for p in prepared]
        width = 2 * stack.dilation_channels
        n = len(self.blocks)
        self.const = torch.cat([p[1] for p in prepared], dim=1)  # [B, n * 2 C_dil]
        self.const_views = [self.const[:, i * width : (i + 1) * width] for i in range(n)]
        self.local_w: Tensor | None = None
        if stack.local_channels:
            w = torch.cat([b.local_proj.weight.detach()[:, :, 0] for b in stack.blocks], 0)
            w = _step_form(w.view(n, width, -1).transpose(1, 2), width // 2)  # [n, L, 2C]
            self.local_w = prep(w.transpose(0, 1).reshape(-1, n * width))  # [L, n * 2C]
            self.bias_buf = torch.empty_like(self.const)
            self.bias_views = [self.bias_buf[:, i * width : (i + 1) * width] for i in range(n)]
        c = stack.dilation_channels
        self.z2 = torch.empty(batch, n * c, device=device, dtype=dtype)
        self.z2_views = [self.z2[:, i * c : (i + 1) * c] for i in range(n)]
        skip_w = torch.cat([0.5 * b.skip.weight.detach()[:, :, 0].t() for b in stack.blocks], 0)
        self.skip_w = prep(skip_w)  # [n * C_dil, C_skip]
        self.skip_b = prep(torch.stack([b.skip.bias.detach() for b in stack.blocks]).sum(0))
        self.skip = torch.empty(batch, stack.skip_channels, device=device, dtype=dtype)
        self.out1_w = prep(stack.out1.weight[:, :, 0].t())
        self.out1_b = prep(stack.out1.bias)
        self.hidden = torch.empty(batch, stack.out1.out_channels, device=device, dtype=dtype)
        self.out2_w = prep(stack.out2.weight[:, :, 0].t())
        self.out2_b = prep(stack.out2.bias)
        self.x = torch.empty(batch, stack.residual_channels, device=device, dtype=dtype)
        self.local = stack.local_channels > 0

    def __call__(self, code_t: Tensor, l_t: Tensor | None) -> Tensor:
        if self.embed_w is not None:
            x_in = self.embed_w.index_select(0, code_t)
        else:
            x_in = self.onehot
            x_in.zero_()
            x_in.scatter_(1, code_t.unsqueeze(1), 1.0)
        x = self.x
        torch.addmm(self.input_b, self.input_cache.push(x_in), self.input_w, out=x)
        if l_t is None:
            if self.local:
                raise ValueError("this stack is locally conditioned: pass l_t")
            biases = self.const_views
        else:
            torch.add(self.const, l_t, out=self.bias_buf)
            biases = self.bias_views
        for block, bias, z2 in zip(self.blocks, biases, self.z2_views):
            block(x, bias, z2)
        skip = torch.addmm(self.skip_b, self.z2, self.skip_w, out=self.skip).relu_()
        hidden = torch.addmm(self.out1_b, skip, self.out1_w, out=self.hidden).relu_()
        return torch.addmm(self.out2_b, hidden, self.out2_w)

