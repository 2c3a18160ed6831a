"""A source-filter synthesiser driven by a coarse spectral envelope: a note on pitch by design.

Two families paint an envelope instead of samples and let a source carry the pitch, as NSF
(Wang et al. 2019) and DDSP (Engel et al. 2020) do: GANSynth's source-filter output (its
generator paints the envelope; docs/gansynth.md) and DiffWave's (its sampler denoises one;
docs/diffwave.md). :func:`waveloom.nn.envelope_fit.fit_envelope` is the inverse: the envelope
of a real note at its known pitch, the target a diffusion model learns.

::

    envelope [B, 2, bands, F] in [-1, 1]
       (channel 0: the partials' peak level, channel 1: the noise floor; both normalised
        natural-log STFT magnitudes, at ``bands`` mel-spaced frequencies)
    -> interpolated along frequency to the n_fft / 2 + 1 linear bins
    source: band-limited pulse train at f0 (waveloom.nn.excitation.pulse_train)
    Y = peak / source peak * STFT(source) + floor / noise level * STFT(white noise)
    audio = iSTFT(Y)                                           [B, F * hop]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from waveloom.audio.spectral import hz_to_mel, stft
from waveloom.nn.excitation import pulse_train
from waveloom.nn.gan import randn
from waveloom.nn.source_filter import noise_log_level, shape_and_invert, source_log_peak


def band_position(hz: np.ndarray, sample_rate: int, bands: int) -> np.ndarray:
    """Frequencies (Hz) -> fractional band index: band centres evenly spaced in mel from 0 Hz
    (band 0) to Nyquist (band ``bands - 1``)."""
    top = float(np.asarray(hz_to_mel(np.array([sample_rate / 2.0])))[0])
    return np.asarray(hz_to_mel(np.asarray(hz, dtype=np.float64)), dtype=np.float64) / top * (
        bands - 1)


def band_interpolation(sample_rate: int, n_fft: int, bands: int) -> Tensor:
    """``[n_fft // 2 + 1, bands]``: each linear bin's value as a linear interpolation between
    the two mel-spaced band centres around it (:func:`band_position`; rows sum to one). Mel
    spacing gives the low partials, which decide the pitch and most of the timbre, the finest
    control."""
    hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    position = band_position(hz, sample_rate, bands)
    low = np.clip(np.floor(position).astype(np.int64), 0, bands - 2)
    frac = position - low
    out = np.zeros((hz.size, bands))
    rows = np.arange(hz.size)
    out[rows, low] = 1.0 - frac
    out[rows, low + 1] += frac
    return torch.from_numpy(out).float()


class SourceFilterSynth(nn.Module):
    """Envelope ``[B, 2, bands, F]`` (tanh range) + f0 ``[B]`` Hz -> audio ``[B, F * hop]``.

    ``centre`` and ``scale`` map the envelope to natural-log magnitudes (those of
    :func:`waveloom.models.specgan.log_range`, GANSynth's critic's own scale), so its numbers
    mean what the analysis of a real note means: channel 0 is the STFT peak of each partial
    in that band, channel 1 the mean STFT magnitude of the noise there.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop: int, bands: int, harmonics: int,
                 centre: float, scale: float) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop = sample_rate, n_fft, hop
        self.harmonics, self.centre, self.scale = harmonics, centre, scale
        self.bands = bands
        self.register_buffer("to_bins", band_interpolation(sample_rate, n_fft, bands),
                             persistent=False)
        hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # each linear bin's band, for
        self.register_buffer("bin_band", torch.from_numpy(  # the fit (envelope_fit.py)
            band_position(hz, sample_rate, bands)).float(), persistent=False)
        self.source_log_peak = source_log_peak(n_fft)
        self.noise_log_level = noise_log_level(n_fft)

    def source_spectrum(self, f0_hz: Tensor, frames: int, cents: Tensor | None = None
                        ) -> Tensor:
        """STFT of the pulse train at each note's f0: complex ``[B, bins, frames + 1]``.
        With ``cents`` ``[B, frames]`` (a deviation per frame: vibrato, a scoop) each note
        gets its own train, f0 blended linearly between frames; without, one train per
        distinct pitch serves every note at it (a batch of 64 notes at one pitch costs one
        train, not 64: the train sums up to ``harmonics`` sines per sample)."""
        if cents is None:
            distinct, index = torch.unique(f0_hz.float(), return_inverse=True)
            per_frame = distinct[:, None].expand(-1, frames + 1)
        else:
            bent = torch.cat([cents, cents[:, -1:]], dim=1).float()
            per_frame, index = f0_hz.float()[:, None] * torch.pow(2.0, bent / 1200.0), None
        source = pulse_train(per_frame, self.sample_rate, self.hop, self.harmonics)
        spectrum = stft(source[:, : frames * self.hop], self.n_fft, self.hop)
        return spectrum if index is None else spectrum[index]

    def bin_levels(self, envelope: Tensor) -> Tensor:
        """Envelope ``[B, 2, bands, F]`` -> natural-log magnitudes per linear bin ``[B, 2,
        bins, F]`` (the interpolation :func:`waveloom.nn.envelope_fit.fit_envelope` inverts)."""
        log_levels = torch.einsum("kb,ncbf->nckf", self.to_bins, envelope.float())
        return log_levels * self.scale + self.centre

    def forward(self, envelope: Tensor, f0_hz: Tensor, gen: torch.Generator | None = None,
                cents: Tensor | None = None) -> Tensor:
        """``cents`` ``[B, F]``: the f0's deviation from ``f0_hz`` per frame (None: steady)."""
        frames = envelope.shape[-1]
        length = frames * self.hop
        log_levels = self.bin_levels(envelope)
        log_levels = torch.cat([log_levels, log_levels[..., -1:]], dim=-1)  # the last frame
        peak, floor = log_levels[:, 0], log_levels[:, 1]
        gain = (peak - self.source_log_peak).exp()
        level = (floor - self.noise_log_level).exp()
        noise = randn((envelope.shape[0], length), gen, envelope.device)
        source = self.source_spectrum(f0_hz.to(envelope.device), frames, cents)
        return shape_and_invert(gain, source, level, noise, self.n_fft, self.hop, length)
