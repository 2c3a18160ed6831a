"""Harmonic additive synthesiser: ``K`` sinusoids at ``k * f0`` with a normalised distribution.

Amplitude of harmonic ``k`` = ``amplitude * distribution[k]``, the distribution renormalised
(sum 1) over the harmonics that stay below Nyquist, so a note keeps its loudness when its upper
harmonics are removed. Controls are blended between frames as in :func:`upsample_frames`
('window' for amplitudes, 'linear' for f0); instead of materialising ``[B, T, K]`` amplitudes,
the two frame vectors are applied by one matrix product per frame (same sum, less memory).

Phase is the exclusive cumulative sum of the per-sample frequency ``2 pi f(n) / sr``:
``phase[n] = phase0 + sum_{m < n} 2 pi f(m) / sr``, so a constant ``f0`` gives exactly
``sin(2 pi f0 n / sr + phase0)``. Because ``f`` is linear within a frame interval the sum has a
closed form per interval; it is accumulated over intervals in float64 and wrapped to one cycle
before the float32 sines, so phase stays exact over minutes of audio. Gradients reach f0
through the float32 phase within each interval (``interval_cycles`` keeps the graph).

Aliasing: frame ``i``'s window covers the samples between centres ``i - 1`` and ``i + 1``,
where the frequency moves linearly through ``f0[i-1], f0[i], f0[i+1]``; harmonic ``k`` of frame
``i`` is zeroed (before renormalising) when ``k * max(f0[i-1], f0[i], f0[i+1]) >= sample_rate / 2``.
So no sample ever carries a partial at or above Nyquist and nothing folds back, and a partial
that leaves fades out with its frame's window instead of stopping with a click. For a constant
f0 this is exactly "k f0 >= Nyquist is zeroed". The price is look-ahead: the samples of frame
``i`` need the f0 of frame ``i + 2`` (two frames of latency when streaming).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from waveloom.errors import ConfigError
from waveloom.nn.ddsp.upsample import blend_weights


def _check(f0_hz: Tensor, amplitude: Tensor, distribution: Tensor) -> None:
    if f0_hz.ndim != 2 or amplitude.shape != f0_hz.shape:
        raise ConfigError(f"harmonic_synth: f0 {tuple(f0_hz.shape)} and amplitude "
                          f"{tuple(amplitude.shape)} must both be [B, F]")
    if distribution.ndim != 3 or distribution.shape[:2] != f0_hz.shape:
        raise ConfigError(f"harmonic_synth: distribution {tuple(distribution.shape)} must be "
                          f"[B, F, K] with [B, F] = {tuple(f0_hz.shape)}")


def interval_cycles(f0_hz: Tensor, f0_next: Tensor, sample_rate: int, hop: int,
                    phase0: Tensor | None) -> tuple[Tensor, Tensor]:
    """Phase in cycles at every sample, wrapped to ``[0, 1)``, and the final phase in cycles.

    ``f0_hz``/``f0_next`` ``[B, F]``: f0 at the start and end of each frame interval. Returns
    ``(cycles [B, F, hop] float32, end [B] float64)``; ``end`` is the phase of sample ``F*hop``.
    """
    c0 = f0_hz.double() / sample_rate  # cycles per sample at the frame centres
    c1 = f0_next.double() / sample_rate
    d = torch.arange(hop, dtype=torch.float64, device=f0_hz.device)
    inner = d * c0.unsqueeze(-1) + (c1 - c0).unsqueeze(-1) / hop * (d * (d - 1) / 2)
    total = hop * c0 + (c1 - c0) * ((hop - 1) / 2)  # [B, F] cycles over each interval
    start = torch.zeros_like(c0[:, 0]) if phase0 is None else phase0.double() / (2 * math.pi)
    starts = start.unsqueeze(1) + torch.cumsum(total, dim=1) - total  # exclusive cumsum
    starts = starts - torch.floor(starts)
    cycles = starts.unsqueeze(-1) + inner
    cycles = cycles - torch.floor(cycles)
    end = starts[:, -1] + total[:, -1] if f0_hz.shape[1] else start
    return cycles.float(), end - torch.floor(end)


def masked_distribution(distribution: Tensor, limit_hz: Tensor, sample_rate: int) -> Tensor:
    """``distribution [B, F, K]`` with harmonics ``k * limit_hz >= Nyquist`` zeroed, renormalised
    to sum 1 over the rest (all zero when none survive)."""
    k = torch.arange(1, distribution.shape[-1] + 1, dtype=distribution.dtype,
                     device=distribution.device)
    keep = (k * limit_hz.unsqueeze(-1).to(distribution.dtype)) < sample_rate / 2
    kept = distribution * keep
    return kept / kept.sum(-1, keepdim=True).clamp_min(1e-12)


#: Sine elements per chunk when no gradient is needed (~400 KB of float32: stays in cache).
CHUNK_ELEMENTS = 100_000
#: Chunks per worker thread below which harmonic_sum stays on one thread (pool start-up ~ms).
THREAD_MIN_CHUNKS = 16
#: Python worker threads for the CPU chunks, used only while torch runs on one intra-op thread
#: (otherwise torch's own threads split each kernel, as before). ``waveloom transfer`` and
#: ``perform`` set torch to one thread and this to the core count (:func:`waveloom.app.ddsp.
#: _threads`): torch's intra-op threads cost more than they give on the decoder's and the
#: synthesiser's small kernels, twice the render time on a busy 2-core machine.
SYNTH_THREADS: int | None = None


def _highest_harmonic(pair: Tensor) -> Tensor:
    """``[B, F]``: per frame, the number of the highest harmonic with a non-zero amplitude."""
    k = torch.arange(1, pair.shape[-1] + 1, device=pair.device)
    return ((pair != 0).any(-2) * k).amax(-1) if pair.numel() else k.new_zeros(pair.shape[:2])


def harmonic_sum(cycles: Tensor, pair: Tensor, all_harmonics: bool = False) -> Tensor:
    """``sum_k pair[..., j, k] sin(2 pi k cycles[..., n])``: ``[B, F, hop]`` phases (cycles)
    and ``[B, F, 2, K]`` amplitudes -> ``[B, F, 2, hop]``.

    ``all_harmonics``: one matrix product over all ``K`` (no data-dependent Python: what an
    exported graph needs, :mod:`waveloom.models.ddsp.block`); the same sum.

    The sines are laid out ``[B, F, K, hop]`` (samples innermost, so the sine kernel runs on
    contiguous rows) and reduced by one batched matrix product. Harmonics above the highest
    non-zero one (those the Nyquist mask removed: harmonic 37 and up at 220 Hz, 16 kHz) are not
    computed at all; that is exact, their terms are zero. On CPU without autograd the frames go
    through in chunks of ~``CHUNK_ELEMENTS`` sines that stay in cache (2-3x faster on one core
    than materialising all sines, which is memory-bound), each chunk with its own top harmonic,
    the chunks shared among :data:`SYNTH_THREADS` Python threads when torch itself runs on one
    thread (torch releases the GIL in its kernels).
    """
    k = torch.arange(1, pair.shape[-1] + 1, dtype=cycles.dtype, device=cycles.device)
    k = (2 * math.pi * k)[:, None]  # [K, 1]
    pair = pair.to(cycles.dtype)
    if all_harmonics:
        return torch.matmul(pair, torch.sin(cycles.unsqueeze(-2) * k))
    top = _highest_harmonic(pair)  # [B, F]
    needs_grad = torch.is_grad_enabled() and (cycles.requires_grad or pair.requires_grad)
    if needs_grad or cycles.device.type != "cpu":  # accelerators: one big kernel is best
        n = max(1, int(top.max())) if top.numel() else 1
        return torch.matmul(pair[..., :n], torch.sin(cycles.unsqueeze(-2) * k[:n]))
    batch, frames, hop = cycles.shape
    step = max(1, CHUNK_ELEMENTS // max(1, batch * hop * pair.shape[-1]))
    tops = top.amax(0).tolist() if frames else []
    out = cycles.new_empty(batch, frames, 2, hop)
    starts = list(range(0, frames, step))

    def chunk(s: int) -> None:
        n = max(1, max(tops[s : s + step]))
        sines = torch.sin_(cycles[:, s : s + step].unsqueeze(-2) * k[:n])
        torch.matmul(pair[:, s : s + step, :, :n], sines, out=out[:, s : s + step])

    def run(chunk_starts: list[int]) -> None:
        torch.set_num_threads(1)  # OpenMP's setting is per thread: a new one starts at ncpu
        for s in chunk_starts:
            chunk(s)

    workers = min(SYNTH_THREADS or 1, len(starts) // THREAD_MIN_CHUNKS)
    if workers < 2 or torch.get_num_threads() != 1:  # torch's own threads, as before
        for s in starts:
            chunk(s)
        return out
    from concurrent.futures import ThreadPoolExecutor

    # chunks are independent, each computed on one thread: the same bits for any thread count;
    # handed out in small groups, so a worker whose core is busy elsewhere does fewer of them
    groups = [starts[i : i + 4] for i in range(0, len(starts), 4)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, groups))
    return out


def harmonic_core(f0_ext: Tensor, amp_ext: Tensor, dist_ext: Tensor, sample_rate: int, hop: int,
                  phase0: Tensor | None, all_harmonics: bool = False) -> tuple[Tensor, Tensor]:
    """The synthesiser on frames with explicit context (what the streaming synth feeds).

    ``f0_ext [B, F + 3]`` holds frames ``-1 .. F + 1``; ``amp_ext [B, F + 1]`` and ``dist_ext
    [B, F + 1, K]`` frames ``0 .. F``. Frames ``0 .. F - 1`` are rendered. Returns ``(audio
    [B, F*hop], final phase in cycles [B] float64)``.
    """
    f0, f0_next = f0_ext[:, 1:-2], f0_ext[:, 2:-1]
    cycles, end = interval_cycles(f0, f0_next, sample_rate, hop, phase0)
    limit = torch.maximum(torch.maximum(f0_ext[:, :-2], f0_ext[:, 1:-1]), f0_ext[:, 2:])
    amps = amp_ext.unsqueeze(-1) * masked_distribution(dist_ext, limit, sample_rate)
    pair = torch.stack([amps[:, :-1], amps[:, 1:]], dim=-2)  # [B, F, 2, K]: frames i, i + 1
    both = harmonic_sum(cycles, pair, all_harmonics)  # [B, F, 2, hop]
    w = blend_weights(hop, "window", both)
    audio = both[:, :, 0] * w + both[:, :, 1] * (1.0 - w)  # [B, F, hop]
    return audio.reshape(f0_ext.shape[0], -1), end


def hold_edges(f0_hz: Tensor, amplitude: Tensor, distribution: Tensor
               ) -> tuple[Tensor, Tensor, Tensor]:
    """Offline context for :func:`harmonic_core`: the first and last frames held."""
    f0_ext = torch.cat([f0_hz[:, :1], f0_hz, f0_hz[:, -1:], f0_hz[:, -1:]], dim=1)
    return (f0_ext, torch.cat([amplitude, amplitude[:, -1:]], dim=1),
            torch.cat([distribution, distribution[:, -1:]], dim=1))


def harmonic_synth(f0_hz: Tensor, amplitude: Tensor, distribution: Tensor, sample_rate: int,
                   hop: int, phase0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Render ``K`` harmonics of ``f0_hz``.

    Args:
        f0_hz: ``[B, F]`` fundamental in Hz per frame (0 for silence is fine).
        amplitude: ``[B, F]`` overall linear amplitude per frame (>= 0).
        distribution: ``[B, F, K]`` non-negative harmonic weights (K = 60..100 in DDSP); they
            are renormalised over the harmonics below Nyquist.
        sample_rate: Hz. hop: samples per frame.
        phase0: ``[B]`` starting phase in radians (default 0).

    Returns:
        ``(audio [B, F*hop], phase [B])``: the final phase (of sample ``F*hop``) in radians
        in ``[0, 2 pi)``, float64 so that chained calls stay exact; pass it as the next
        ``phase0`` to continue the oscillator without a click.
    """
    _check(f0_hz, amplitude, distribution)
    if f0_hz.shape[1] == 0:
        start = torch.zeros(f0_hz.shape[0], dtype=torch.float64) if phase0 is None else phase0
        return f0_hz.new_zeros(f0_hz.shape[0], 0), start.double() % (2 * math.pi)
    ext = hold_edges(f0_hz, amplitude, distribution)
    audio, end = harmonic_core(*ext, sample_rate, hop, phase0)
    return audio, end * (2 * math.pi)
