"""1-D convolutions with the project's one copy of the padding arithmetic.

:class:`CausalConv1d` is the building block of every autoregressive stack: output ``t`` sees
inputs ``t - (K-1)*d .. t`` only. It carries its own incremental path, :meth:`CausalConv1d.step`,
which keeps the last ``(K-1)*d + 1`` inputs in a ring buffer so generation costs one small
matrix product per layer and sample instead of a re-run over the receptive field. The step path
is tested for equality with :meth:`CausalConv1d.forward` at every time step.

:class:`Conv1dSame` is the non-causal sibling for encoders: output length equals input length,
with the padding split as evenly as the kernel allows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def causal_padding(kernel_size: int, dilation: int = 1) -> int:
    """Left padding that keeps a causal conv's output as long as its input: ``(K-1)*d``."""
    return (kernel_size - 1) * dilation


def same_padding(kernel_size: int, dilation: int = 1) -> tuple[int, int]:
    """(left, right) padding for a length-preserving non-causal conv.

    The total ``(K-1)*d`` is split evenly; for an even kernel the extra sample goes to the
    right, so output ``t`` is centred on input ``t`` or half a sample before it.
    """
    total = (kernel_size - 1) * dilation
    return total // 2, total - total // 2


class CausalConv1d(nn.Conv1d):
    """Dilated causal convolution ``[B, C_in, T] -> [B, C_out, T]`` with a cached ``step``.

    The weight is an ordinary ``nn.Conv1d`` weight ``[C_out, C_in, K]`` (tap ``k`` multiplies
    input ``t - (K-1-k)*d``), so checkpoints and fused inference kernels read it directly.

    Incremental use::

        conv.reset_state(batch)           # zeros == the zero padding of forward()
        y_t = conv.step(x_t)              # x_t [B, C_in] -> y_t [B, C_out], t = 0, 1, ...

    The cache (:class:`StepCache`) is a ring of the last ``(K-1)*d + 1`` inputs, arranged so a
    step is K small copies and one ``addmm``. It is plain state, not a registered buffer, so it
    never enters a checkpoint.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        if kernel_size < 1 or dilation < 1:
            raise ValueError(f"kernel_size={kernel_size} and dilation={dilation} must be >= 1")
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        # Generation state (see reset_state); plain attributes, never in the state dict.
        self.cache: StepCache | None = None
        self.step_weight: Tensor | None = None
        self.step_bias: Tensor | None = None

    @property
    def left_context(self) -> int:
        """How many past inputs an output sees besides the current one: ``(K-1)*d``."""
        return causal_padding(self.kernel_size[0], self.dilation[0])

    def forward(self, x: Tensor, padded: bool = True) -> Tensor:
        """``x`` [B, C_in, T] -> [B, C_out, T] (``padded``) or [B, C_out, T - (K-1)*d] (valid).

        ``padded=True`` left-pads with zeros so output ``t`` aligns with input ``t``.
        ``padded=False`` computes only outputs whose whole receptive field is inside ``x``:
        output ``j`` aligns with input ``j + (K-1)*d``. Training uses it to skip positions whose
        result would be thrown away.
        """
        if padded and self.left_context:
            x = F.pad(x, (self.left_context, 0))
        return super().forward(x)

    # ------------------------------------------------------------------ incremental path

    @property
    def ring_size(self) -> int:
        """Inputs the step cache holds: ``(K-1)*d + 1``."""
        return self.left_context + 1

    def reset_state(
        self,
        batch: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """Allocate a zeroed cache for ``batch`` streams and snapshot the weights for ``step``.

        Zeros match forward()'s zero padding, so step ``t`` equals forward output ``t`` from the
        very first sample. Call again after changing the weights (the snapshot is taken here so
        the hot loop does no reshaping).
        """
        device = self.weight.device if device is None else torch.device(device)
        dtype = self.weight.dtype if dtype is None else dtype
        k, c_in = self.kernel_size[0], self.in_channels
        self.cache = StepCache(k, self.dilation[0], c_in, batch, device, dtype)
        w = self.weight.detach().to(device=device, dtype=dtype)
        # [C_out, C_in, K] -> [K*C_in, C_out]: row k*C_in + c is tap k of input channel c,
        # matching the cache's [B, K*C_in] rows (oldest tap first).
        self.step_weight = w.permute(2, 1, 0).reshape(k * c_in, self.out_channels).contiguous()
        if self.bias is not None:
            self.step_bias = self.bias.detach().to(device=device, dtype=dtype)
        else:
            self.step_bias = torch.zeros(self.out_channels, device=device, dtype=dtype)

    def clear_state(self) -> None:
        """Free the cache (it is never part of the state dict)."""
        self.cache = self.step_weight = self.step_bias = None

    def _cache(self) -> StepCache:
        cache = getattr(self, "cache", None)
        if cache is None:
            raise RuntimeError("call reset_state(batch) before step()")
        return cache

    def step(self, x_t: Tensor, bias: Tensor | None = None) -> Tensor:
        """One time step: ``x_t`` [B, C_in] -> ``y_t`` [B, C_out], equal to forward()[..., t].

        ``bias`` ([C_out] or [B, C_out]) replaces the conv's own bias; callers fold
        conditioning into it once per generation so the sum costs nothing per step.
        """
        taps = self._cache().push(x_t)
        return torch.addmm(self.step_bias if bias is None else bias, taps, self.step_weight)

    def fill_state(self, x: Tensor) -> None:
        """Load the cache from a whole input sequence ``x`` [B, C_in, T] at once.

        Afterwards ``step`` continues as if ``x`` had been fed through it sample by sample
        (after :meth:`reset_state`), which lets a long priming waveform go through the network
        in one parallel pass.
        """
        self._cache().fill(x)


class StepCache:
    """The past inputs of one causal conv, laid out so each step's taps are one ready row.

    A plain object (not a Module) so the hot loop pays no ``nn.Module`` attribute overhead.
    Storage is ``[R, B, K*C]`` with ``R = (K-1)*d + 1`` slots: slot ``t mod R`` is the
    contiguous tap row ``[x_{t-(K-1)d}, ..., x_{t-d}, x_t]`` that step ``t`` multiplies by the
    ``[K*C, C_out]`` weight. Each input is scattered on arrival into the K future rows that will
    read it (tap k of step ``t + (K-1-k)*d``), through views prepared once, so a step costs K
    small copies and returns a view: no concatenation, roll, gather or reshape per sample.
    """

    __slots__ = ("channels", "dilation", "kernel_size", "ring", "rows", "writes", "phase")

    def __init__(
        self,
        kernel_size: int,
        dilation: int,
        channels: int,
        batch: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        k, d, c = kernel_size, dilation, channels
        self.kernel_size, self.dilation, self.channels = k, d, c
        self.ring = (k - 1) * d + 1
        self.rows = torch.zeros(self.ring, batch, k * c, device=device, dtype=dtype)
        # writes[p][k]: where the input arriving at phase p goes as tap k.
        self.writes = [
            [self.rows[(p + (k - 1 - j) * d) % self.ring, :, j * c : (j + 1) * c] for j in range(k)]
            for p in range(self.ring)
        ]
        self.phase = 0

    def push(self, x_t: Tensor) -> Tensor:
        """Store ``x_t`` [B, C]; return this step's taps [B, K*C] (valid until R more pushes)."""
        p = self.phase
        for view in self.writes[p]:
            view.copy_(x_t)
        self.phase = p + 1 if p + 1 < self.ring else 0
        return self.rows[p]

    def fill(self, x: Tensor, length: int | None = None) -> None:
        """Set the state reached after pushing a sequence of ``length`` inputs one at a time,
        given its last frames ``x`` [B, C, M] (M >= R - 1 suffices; default: all of it)."""
        k, d, c, r = self.kernel_size, self.dilation, self.channels, self.ring
        m = x.shape[-1]
        t = m if length is None else length
        if m < min(t, r - 1):
            raise ValueError(f"fill needs the last {min(t, r - 1)} inputs, got {m}")
        self.rows.zero_()
        future = torch.arange(t, t + r, device=x.device)  # the next R steps
        seq = x.permute(2, 0, 1).to(self.rows.dtype)  # [M, B, C], frame i is time t - M + i
        for j in range(k - 1):  # tap K-1 is the step's own input, written when it arrives
            src = future - (k - 1 - j) * d
            ok = (src >= 0) & (src < t)
            self.rows[future[ok] % r, :, j * c : (j + 1) * c] = seq[src[ok] - (t - m)]
        self.phase = t % r


class Conv1dSame(nn.Conv1d):
    """Non-causal convolution ``[B, C_in, T] -> [B, C_out, T]`` (stride 1, 'same' length).

    Zero padding from :func:`same_padding`; used by encoders that see the whole signal.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        if kernel_size < 1 or dilation < 1:
            raise ValueError(f"kernel_size={kernel_size} and dilation={dilation} must be >= 1")
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self._pad = same_padding(kernel_size, dilation)

    def forward(self, x: Tensor) -> Tensor:
        if any(self._pad):
            x = F.pad(x, self._pad)
        return super().forward(x)
