"""Filtered noise: white noise shaped by a time-varying linear-phase FIR, one per frame.

Each frame's ``N`` band magnitudes (``N = 65`` in DDSP), uniformly spaced from 0 Hz to Nyquist,
are the frequency samples of a zero-phase filter: ``irfft`` gives ``2 (N - 1)`` taps symmetric
about tap 0, which are rotated to be centred on tap ``N - 1`` (linear phase) and multiplied by a
periodic Hann window of the same length (the window trades the sharp band edges of plain
frequency sampling for low ripple and ~-44 dB side lobes).

The noise is cut into blocks of ``hop`` samples, block ``i`` = samples ``[i hop, (i+1) hop)``,
filtered by frame ``i``'s FIR (FFT convolution), and the filtered blocks are overlap-added. The
output is advanced by the filter's delay (``N - 1`` taps), so the result is aligned with its input
and output sample ``n`` depends on noise up to ``n + N - 2``: with ``N - 1 <= hop`` (65 bands,
hop 64) that is at most one frame ahead, the same look-ahead as the harmonic synthesiser.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from waveloom.errors import ConfigError


def frame_filters(magnitudes: Tensor) -> Tensor:
    """``[B, F, N]`` band magnitudes -> windowed linear-phase impulse responses
    ``[B, F, 2 (N - 1)]``, centred on tap ``N - 1``."""
    n_taps = 2 * (magnitudes.shape[-1] - 1)
    impulse = torch.fft.irfft(magnitudes.to(torch.complex64 if magnitudes.dtype == torch.float32
                                            else torch.complex128), n=n_taps)
    impulse = torch.roll(impulse, shifts=n_taps // 2, dims=-1)
    return impulse * _hann(n_taps, impulse.dtype, impulse.device)


@lru_cache(maxsize=16)
def _hann(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Periodic Hann window (cached: the streaming synth filters a few frames per call)."""
    return torch.hann_window(n, periodic=True, dtype=dtype, device=device)


def white_noise(shape: tuple[int, int], generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> Tensor:
    """Uniform white noise in ``[-1, 1)`` of ``shape`` (float32)."""
    return torch.rand(shape, generator=generator, device=device) * 2.0 - 1.0


def filter_blocks(magnitudes: Tensor, noise: Tensor, hop: int) -> Tensor:
    """Each frame's FIR applied to its block of noise: ``[B, F, hop + L - 1]`` with ``L`` taps
    (not yet overlap-added or delay-compensated)."""
    batch, frames, _ = magnitudes.shape
    taps = frame_filters(magnitudes)
    n_out = hop + taps.shape[-1] - 1
    n_fft = 1 << (n_out - 1).bit_length()
    blocks = noise.reshape(batch, frames, hop).to(taps.dtype)
    spec = torch.fft.rfft(blocks, n=n_fft) * torch.fft.rfft(taps, n=n_fft)
    return torch.fft.irfft(spec, n=n_fft)[..., :n_out]


def overlap_add(blocks: Tensor, hop: int) -> Tensor:
    """``[B, F, L]`` blocks placed at ``i * hop`` and summed -> ``[B, (F - 1) hop + L]``."""
    batch, frames, length = blocks.shape
    total = (frames - 1) * hop + length
    out = torch.nn.functional.fold(blocks.transpose(1, 2), output_size=(1, total),
                                   kernel_size=(1, length), stride=(1, hop))
    return out.reshape(batch, total)


def filtered_noise(magnitudes: Tensor, hop: int, noise: Tensor | None = None,
                   generator: torch.Generator | None = None) -> Tensor:
    """White noise filtered per frame by the band ``magnitudes``.

    Args:
        magnitudes: ``[B, F, N]`` linear gains at ``N`` frequencies uniformly spaced from 0 Hz
            to Nyquist (N = 65 in DDSP; needs ``N - 1 <= hop`` for one frame of look-ahead,
            but any ``N >= 2`` works offline).
        hop: samples per frame.
        noise: ``[B, F*hop]`` the noise to filter; default uniform in ``[-1, 1)`` drawn from
            ``generator`` (pass one for reproducible audio).

    Returns:
        ``[B, F*hop]`` audio (differentiable in ``magnitudes``).
    """
    if magnitudes.ndim != 3 or magnitudes.shape[-1] < 2:
        raise ConfigError(f"filtered_noise: magnitudes {tuple(magnitudes.shape)} must be "
                          "[B, F, N] with N >= 2 bands")
    batch, frames, bands = magnitudes.shape
    if noise is None:
        noise = white_noise((batch, frames * hop), generator, magnitudes.device)
    if noise.shape != (batch, frames * hop):
        raise ConfigError(f"filtered_noise: noise {tuple(noise.shape)} must be "
                          f"[B, F*hop] = {(batch, frames * hop)}")
    if frames == 0:
        return noise.new_zeros(batch, 0)
    out = overlap_add(filter_blocks(magnitudes, noise, hop), hop)
    delay = bands - 1
    return out[:, delay : delay + frames * hop].to(noise.dtype)
