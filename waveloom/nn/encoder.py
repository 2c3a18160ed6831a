"""Non-causal encoders: dilated residual stacks, pooling to frames, and code statistics.

An encoder sees the whole signal at once (nothing is generated from it sample by sample), so its
convolutions look both ways; :class:`~waveloom.nn.conv.Conv1dSame` owns the padding. Used by the
NSynth WaveNet autoencoder's temporal encoder and meant for any model that compresses audio
into a slower sequence of codes (hierarchical or VQ models).

Residual block (Engel et al. 2017, sec. 3.1: "ReLU, dilated conv, ReLU, 1x1")::

    x' = x + W_1x1 relu(conv_dilated(relu(x)))

No gates and no skip paths: the encoder's output is the residual stream itself, read once at
the top by a 1x1 projection. The identity path lets a 30-layer stack train from scratch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.nn.conv import Conv1dSame, same_padding


class DilatedResidualBlock(nn.Module):
    """``x`` [B, C, T] -> ``x + W relu(conv_d(relu(x)))`` [B, C, T] (non-causal, same length)."""

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.conv = Conv1dSame(channels, channels, kernel_size, dilation)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.proj(F.relu(self.conv(F.relu(x))))


class DilatedEncoder(nn.Module):
    """Non-causal stack: [B, C_in, T] -> [B, C_out, T].

    Input conv (``C_in -> channels``), then :class:`DilatedResidualBlock` s with dilations
    1, 2, ..., 2^(L-1) repeated ``stacks`` times, then a 1x1 projection to ``out_channels``.
    Output ``t`` depends on inputs within ``t +- reach`` (see :attr:`reach`).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        out_channels: int,
        layers_per_stack: int = 10,
        stacks: int = 3,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if min(in_channels, channels, out_channels, layers_per_stack, stacks) <= 0:
            raise ValueError("encoder channels, layers and stacks must be > 0")
        self.input_conv = Conv1dSame(in_channels, channels, kernel_size)
        self.dilations = [2**i for i in range(layers_per_stack)] * stacks
        self.blocks = nn.ModuleList(
            DilatedResidualBlock(channels, kernel_size, d) for d in self.dilations
        )
        self.out = nn.Conv1d(channels, out_channels, 1)

    @property
    def reach(self) -> int:
        """Samples on either side an output may depend on: the sum of every conv's larger
        'same' padding (``(K-1)*d/2`` per conv for odd kernels; 1 + sum(dilations) for K=3)."""
        convs = [self.input_conv] + [b.conv for b in self.blocks]
        return sum(max(same_padding(c.kernel_size[0], c.dilation[0])) for c in convs)

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_conv(x)
        for block in self.blocks:
            x = block(x)
        return self.out(x)


def average_frames(x: Tensor, hop: int) -> Tensor:
    """Average pooling in non-overlapping frames: [B, C, T] -> [B, C, ceil(T / hop)].

    Frame ``k`` is the mean of samples ``[k*hop, (k+1)*hop)``; a trailing partial frame is the
    mean of the samples it has (not diluted by padding), so any length is valid and the frame
    grid always starts at sample 0 (the alignment :class:`~waveloom.nn.conditioning.
    UpsampleConditioning` assumes when it brings the frames back to the sample rate).
    """
    if hop <= 0:
        raise ValueError(f"hop={hop} must be > 0")
    t = x.shape[-1]
    if t == 0:
        raise ValueError("average_frames needs at least one sample")
    frames = -(-t // hop)
    pad = frames * hop - t
    summed = F.pad(x, (0, pad)).unflatten(-1, (frames, hop)).sum(-1)
    counts = torch.full((frames,), float(hop), dtype=x.dtype, device=x.device)
    counts[-1] = hop - pad
    return summed / counts


class CodeStatistics(nn.Module):
    """Running per-dimension mean and standard deviation of an encoder's codes [B, D, F].

    An autoencoder has no prior over its codes, yet ``generate`` must produce something from
    labels alone; drawing a code from a diagonal Gaussian fitted to the training codes (held
    constant over time) gives a plausible "average" sound instead of decoding an arbitrary
    vector. The statistics are buffers, so they travel with the checkpoint (and are averaged
    by EMA like the weights).
    """

    def __init__(self, dim: int, momentum: float = 0.01) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def update(self, codes: Tensor) -> None:
        """Fold a batch of codes [B, D, F] into the running statistics."""
        flat = codes.detach().float().transpose(0, 1).reshape(codes.shape[1], -1)
        self.mean.lerp_(flat.mean(1), self.momentum)
        if flat.shape[1] > 1:
            self.std.lerp_(flat.std(1), self.momentum)

    def sample(self, n: int, frames: int, seed: int | None = None) -> Tensor:
        """``n`` codes [n, D, frames], one Gaussian draw per example held over all frames."""
        gen = torch.Generator(device="cpu")
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        eps = torch.randn(n, self.mean.shape[0], 1, generator=gen).to(self.mean)
        z = self.mean[None, :, None] + self.std[None, :, None] * eps
        return z.expand(-1, -1, frames).contiguous()
