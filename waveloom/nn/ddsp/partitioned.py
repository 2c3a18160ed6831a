"""Uniformly partitioned convolution (overlap-save in the frequency domain) for streaming reverb.

Convolving every streamed block with a whole 1-3 s impulse response costs an FFT of the IR's
length per block (~2 ms per 10 ms block on one core). Here the IR is cut into ``M`` partitions of
``P`` samples (``P`` = the synth's hop, so every rendered block is a whole number of them), each
partition's spectrum ``H_m`` (FFT of ``2P``) is computed once, and input sub-block ``j``'s
spectrum ``X_j`` (FFT of the previous and the current sub-block) joins a delay line. Output
sub-block ``j`` is the second half of ``irfft(sum_m X_{j-m} H_m)``: exact linear convolution
(up to float rounding) with no latency beyond the sub-block, at two small FFTs and ``M``
complex multiply-adds per bin per sub-block.
"""

from __future__ import annotations

import torch
from torch import Tensor

from waveloom.errors import ConfigError


class PartitionedConvolver:
    """Streams ``x * ir`` (the first ``len(x)`` samples of it) in blocks of whole sub-blocks.

    ``ir [L]`` is read once, at construction (a trained reverb's IR is fixed when streaming).
    """

    def __init__(self, ir: Tensor, block: int):
        if block < 1:
            raise ConfigError(f"PartitionedConvolver: block={block} must be positive")
        self.block = int(block)
        parts = -(-ir.shape[-1] // self.block)
        padded = torch.nn.functional.pad(ir.detach(), (0, parts * self.block - ir.shape[-1]))
        spectra = torch.fft.rfft(padded.reshape(parts, self.block), n=2 * self.block)  # [M, bins]
        self.filters = spectra.flip(0).T.contiguous()  # [bins, M], oldest input's partition first
        self._spectra: Tensor | None = None  # [B, M - 1, bins]: the delay line
        self._last: Tensor | None = None  # [B, block]: the previous input sub-block

    def __call__(self, x: Tensor) -> Tensor:
        """``x [B, n * block]`` -> the convolution's next ``n * block`` output samples."""
        batch, length = x.shape
        if length % self.block:
            raise ConfigError(f"PartitionedConvolver: {length} samples is not a whole number "
                              f"of {self.block}-sample blocks")
        if length == 0:
            return x
        parts, bins = self.filters.shape[1], self.filters.shape[0]
        if self._spectra is None:
            self._spectra = x.new_zeros(batch, parts - 1, bins, dtype=self.filters.dtype)
            self._last = x.new_zeros(batch, self.block)
        blocks = torch.cat([self._last, x], dim=1).unfold(1, 2 * self.block, self.block)
        spectra = torch.fft.rfft(blocks.to(self.filters.real.dtype), n=2 * self.block)
        line = torch.cat([self._spectra, spectra], dim=1)  # [B, M - 1 + S, bins]
        windows = line.unfold(1, parts, 1)  # [B, S, bins, M]
        out = torch.fft.irfft((windows * self.filters).sum(-1), n=2 * self.block)
        self._spectra = line[:, line.shape[1] - (parts - 1) :]
        self._last = x[:, -self.block :]
        return out[..., self.block :].reshape(batch, length).to(x.dtype)
