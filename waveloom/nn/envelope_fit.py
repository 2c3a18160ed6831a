"""The envelope of a real note at its known pitch: the inverse of :class:`SourceFilterSynth`.

:class:`waveloom.nn.envelope_synth.SourceFilterSynth` turns a coarse envelope ``[B, 2, bands,
F]`` (the partials' peak level, the noise floor; normalised log STFT magnitudes at mel-spaced
band centres, linearly interpolated to the linear bins) and an f0 into audio. A model that
*learns* envelopes (DiffWave's source-filter mode denoises them) needs that envelope for every
training note, so this module fits one from the audio:

* **Where the f0 is** (:func:`fit_cents`, :func:`fit_note` with ``bent``): per frame, the
  peaks of the first partials, refined by parabolas, as cents from the labelled pitch (a
  vibrato, a scoop); the synth's pulse train can follow them.
* **Partials**: the STFT magnitude's peak within +-2 bins of each harmonic ``k f0`` below
  Nyquist (the same harmonics the synth's pulse train has), where that frame's f0 puts it,
  in natural log.
* **Noise floor**: the log magnitude of every bin at least 3 bins from any harmonic of the
  frame's f0 (outside a Hann window's main lobe), plus the Rayleigh correction ``ln E|X| -
  E ln |X| = 0.168``, since the synth's floor is a *mean* magnitude and a log-average of
  noise bins sits below the log of their mean.
* **Fit**: per note, channel and frame, the band values ``E`` that minimise ``sum (A E -
  y)^2 + smooth * |D E|^2``, ``A`` the synth's band-to-bin interpolation read at the measured
  frequencies and ``D`` the first difference across bands. The smoothness fills bands no
  harmonic reaches (below f0, between a high note's partials) with their neighbours' level
  instead of leaving them undetermined.

The result is normalised by the synth's ``centre`` and ``scale`` and clipped to [-1, 1], the
range a diffusion sampler clips its estimates to. How close ``synth(fit_note(x))`` comes to
``x`` is the ceiling of every model that learns these envelopes (measured in docs/diffwave.md).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from waveloom.audio.spectral import stft
from waveloom.nn.envelope_synth import SourceFilterSynth

#: ``ln E|X| - E ln|X|`` for Rayleigh-distributed magnitudes: ``ln sqrt(pi / 2) - (ln 2 -
#: Euler's gamma) / 2``.
RAYLEIGH_LOG_GAP = math.log(math.sqrt(math.pi / 2)) - (math.log(2.0) - 0.5772156649) / 2
PEAK_REACH = 2  # bins either side of a harmonic's frequency searched for its peak
CENTS_HARMONICS = 8  # the partials whose peaks' frequencies say where the f0 is in a frame
NOISE_GAP = 3.0  # bins from the nearest harmonic before a bin counts as noise floor


def _solve(band: Tensor, targets: Tensor, weight: Tensor, bands: int, smooth: float) -> Tensor:
    """Weighted, smoothed least squares per note and frame. Measurement ``k`` of frame ``f``
    sits at fractional band ``band`` ``[B, K, F]`` (the synth reads it as a linear blend of
    the two bands around it), with value ``targets`` and weight ``weight`` (0 drops it), both
    ``[B, K, F]`` -> band values ``[B, bands, F]``. Each row has two non-zeros, so the normal
    equations are gathered by scatter-adds, O(B K F), not by dense products."""
    low = band.floor().long().clamp(0, bands - 2)
    frac = (band - low.float()).clamp(0, 1)
    high = low + 1
    w_low, w_high = weight * (1 - frac), weight * frac
    gram = targets.new_zeros(band.shape[0], band.shape[2], bands * bands)
    rhs = targets.new_zeros(band.shape[0], band.shape[2], bands)
    for (i, wi) in ((low, w_low), (high, w_high)):
        rhs.scatter_add_(2, i.transpose(1, 2), (wi * targets).transpose(1, 2))
        for (j, wj) in ((low, 1 - frac), (high, frac)):
            gram.scatter_add_(2, (i * bands + j).transpose(1, 2), (wi * wj).transpose(1, 2))
    eye = torch.eye(bands, dtype=targets.dtype, device=targets.device)
    diff = torch.diff(eye, dim=0)
    gram = gram.unflatten(-1, (bands, bands)) + smooth * (diff.T @ diff) + 1e-6 * eye
    return torch.linalg.solve(gram, rhs[..., None])[..., 0].transpose(1, 2)


def _band_at(table: Tensor, position: Tensor) -> Tensor:
    """``table`` (fractional band per bin) read at fractional bins ``position``, linearly."""
    low = position.floor().long().clamp(0, table.shape[0] - 2)
    frac = (position - low.float()).clamp(0, 1)
    return table[low] * (1 - frac) + table[low + 1] * frac


def harmonic_positions(f0_hz: Tensor, sample_rate: int, n_fft: int, harmonics: int
                       ) -> tuple[Tensor, Tensor]:
    """Fractional bins of the harmonics ``k f0``, ``k = 1..harmonics``, ``[B, K]``, and which
    of them the synth's pulse train plays (below Nyquist) ``[B, K]`` bool."""
    k = torch.arange(1, harmonics + 1, device=f0_hz.device, dtype=torch.float64)
    hz = f0_hz.double()[:, None] * k[None]
    return (hz * n_fft / sample_rate).float(), hz < sample_rate / 2


def _peak_windows(log_mag: Tensor, position: Tensor) -> tuple[Tensor, Tensor]:
    """The log magnitudes within +-PEAK_REACH bins of each harmonic's bin ``position``
    ``[B, K, F]`` -> ``[B, K, 2R+1, F]``, and those bins' indices, same shape."""
    bins = log_mag.shape[1]
    reach = torch.arange(-PEAK_REACH, PEAK_REACH + 1, device=log_mag.device)[:, None]
    window = (position.round().long()[:, :, None] + reach).clamp(0, bins - 1)
    gathered = torch.gather(log_mag, 1, window.flatten(1, 2))
    return gathered.view(window.shape), window


def fit_cents(log_mag: Tensor, position: Tensor, plays: Tensor) -> Tensor:
    """Where the f0 sits in each frame, in cents from the labelled pitch ``[B, F]``: the
    peaks of the first :data:`CENTS_HARMONICS` partials, each refined by a parabola through
    its log magnitude and the two bins beside it, as a ratio to ``k f0``; averaged with
    weights ``k x`` the peak's magnitude (a high partial moves ``k`` times as many Hz for a
    cent, so it measures the f0 ``k`` times as finely; a loud one is less noise)."""
    frames = log_mag.shape[-1]
    low = position[:, :CENTS_HARMONICS, None].expand(-1, -1, frames)
    windows, index = _peak_windows(log_mag, low)
    best = windows.argmax(2, keepdim=True).clamp(1, 2 * PEAK_REACH - 1)  # [B, K, 1, F]
    a, b, c = (torch.gather(windows, 2, best + d)[:, :, 0] for d in (-1, 0, 1))
    bend = a - 2 * b + c
    offset = torch.where(bend < 0, 0.5 * (a - c) / bend.clamp(max=-1e-6), torch.zeros_like(a))
    peak_bin = torch.gather(index, 2, best)[:, :, 0].float() + offset.clamp(-1, 1)
    ratio = peak_bin.clamp_min(1e-3) / low
    k = torch.arange(1, ratio.shape[1] + 1, device=ratio.device)[None, :, None]
    weight = k * b.exp() * plays[:, :CENTS_HARMONICS, None]
    cents = 1200 * torch.log2(ratio)
    return (cents * weight).sum(1) / weight.sum(1).clamp_min(1e-12)


def fit_envelope(audio: Tensor, f0_hz: Tensor, synth: SourceFilterSynth, frames: int,
                 smooth: float = 0.05) -> Tensor:
    """Audio ``[B, >= frames * hop]`` and each note's f0 ``[B]`` (Hz) -> the envelope
    ``[B, 2, bands, frames]`` in [-1, 1] that ``synth`` turns back into the note (see the
    module docstring), the partials read at the steady f0."""
    return fit_note(audio, f0_hz, synth, frames, smooth, bent=False)[0]


def fit_note(audio: Tensor, f0_hz: Tensor, synth: SourceFilterSynth, frames: int,
             smooth: float = 0.05, bent: bool = True) -> tuple[Tensor, Tensor]:
    """(envelope ``[B, 2, bands, frames]`` in [-1, 1], cents ``[B, frames]``): as
    :func:`fit_envelope`, plus where the f0 sits in each frame (:func:`fit_cents`). With
    ``bent`` the partials and the gaps between them are read where that f0 puts them, frame
    by frame (vibrato sweeps a high partial across several bins); else at the steady f0 and
    the cents are zero."""
    if f0_hz.shape != (audio.shape[0],) or bool((f0_hz <= 0).any()):
        raise ValueError(f"fit_envelope needs one positive f0 per note, got {tuple(f0_hz.shape)}"
                         f" for {audio.shape[0]} notes")
    n_fft, hop = synth.n_fft, synth.hop
    if audio.shape[-1] < frames * hop:
        raise ValueError(f"fit_envelope: {frames} frames need {frames * hop} samples, got "
                         f"{audio.shape[-1]}")
    floor = synth.centre - synth.scale
    spec = stft(audio[:, : frames * hop].float(), n_fft, hop)[..., :frames]
    log_mag = spec.abs().clamp_min(math.exp(floor)).log()  # [B, bins, F]
    position, plays = harmonic_positions(f0_hz, synth.sample_rate, n_fft, synth.harmonics)
    cents = fit_cents(log_mag, position, plays) if bent else log_mag.new_zeros(
        audio.shape[0], frames)
    position = position[..., None] * torch.pow(2.0, cents / 1200.0)[:, None]  # [B, K, F]
    peaks = _peak_windows(log_mag, position)[0].amax(2)  # [B, K, F]
    weight = plays[..., None].float().expand_as(peaks)
    table, bands = synth.bin_band, synth.bands
    peak = _solve(_band_at(table, position), peaks, weight, bands, smooth)
    every_bin = table[None, :, None].expand_as(log_mag)
    noise = _solve(every_bin, log_mag + RAYLEIGH_LOG_GAP, _noise_bins(log_mag, position),
                   bands, smooth)
    envelope = torch.stack([peak, noise], 1)
    return ((envelope - synth.centre) / synth.scale).clamp(-1.0, 1.0), cents


def _noise_bins(log_mag: Tensor, position: Tensor) -> Tensor:
    """``[B, bins, F]`` 1 where a bin is at least :data:`NOISE_GAP` bins from every
    harmonic of the frame's f0 (``position`` ``[B, K, F]``, its first row the fundamental)
    and above the lowest two bins, else 0."""
    bins = log_mag.shape[1]
    index = torch.arange(bins, device=log_mag.device, dtype=torch.float32)[None, :, None]
    fundamental = position[:, :1]  # [B, 1, F]
    ratio = index / fundamental
    distance = (ratio - ratio.round().clamp_min(1)).abs() * fundamental
    return ((distance >= NOISE_GAP) & (index >= 2)).float()
