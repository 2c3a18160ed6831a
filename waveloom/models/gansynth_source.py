"""GANSynth's source-filter output (``model.source_filter``): a note that is on pitch by design.

The plain GANSynth generator paints every bin of a [log magnitude, IF] image; on a CPU budget
it never put its energy on the labelled pitch's harmonics (docs/gansynth.md: 0 of 12 notes on
pitch after 1,445 steps, with or without the harmonic IF prior). Here the generator paints a
coarse spectral *envelope* instead and the pitch comes from a source, as in NSF (Wang et al.
2019), DDSP (Engel et al. 2020) and waveloom's MelGAN vocoder (``melgan_istft``):

::

    G: [z, one-hot pitch, one-hot instrument] -> [B, 2, bands, frames] in [-1, 1]
       (channel 0: the partials' peak level, channel 1: the noise floor; both on the
        critic's normalised log-magnitude scale, at ``bands`` mel-spaced frequencies)
    -> interpolated along frequency to the n_fft / 2 + 1 linear bins
    source: band-limited pulse train at the labelled pitch (waveloom.nn.excitation.pulse_train)
    Y = peak / source peak * STFT(source) + floor / noise level * STFT(white noise)
    audio = iSTFT(Y)                                           [B, frames * hop]

The critic sees the audio analysed exactly as real notes are (:meth:`GANSynth.analyse`: log
magnitude and IF, mel-warped), so it judges what a user hears, not the generator's image. The
IF channel of a generated note is passed to the critic without a gradient: the generator
cannot steer phase (the source fixes it), and the angle's derivative, 1 / |Y|^2, explodes in
near-silent bins.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from waveloom.audio.spectral import hz_to_mel, stft
from waveloom.nn.excitation import pulse_train
from waveloom.nn.gan import randn
from waveloom.nn.source_filter import noise_log_level, shape_and_invert, source_log_peak


def band_interpolation(sample_rate: int, n_fft: int, bands: int) -> Tensor:
    """``[n_fft // 2 + 1, bands]``: each linear bin's value as a linear interpolation between
    the two mel-spaced band centres around it (centres evenly spaced in mel from 0 Hz to
    Nyquist; rows sum to one). Mel spacing gives the low partials, which decide the pitch and
    most of the timbre, the finest control."""
    hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    position = np.asarray(hz_to_mel(hz), dtype=np.float64)
    position = position / position[-1] * (bands - 1)
    low = np.clip(np.floor(position).astype(np.int64), 0, bands - 2)
    frac = position - low
    out = np.zeros((hz.size, bands))
    rows = np.arange(hz.size)
    out[rows, low] = 1.0 - frac
    out[rows, low + 1] += frac
    return torch.from_numpy(out).float()


class SourceFilterSynth(nn.Module):
    """Envelope image ``[B, 2, bands, frames]`` (tanh range) + f0 ``[B]`` Hz -> audio
    ``[B, frames * hop]``.

    ``centre`` and ``scale`` map the image to natural-log magnitudes (those of
    :func:`waveloom.models.specgan.log_range`, the critic's own scale), so the generator's
    numbers mean what the analysis of a real note means: channel 0 is the STFT peak of each
    partial in that band, channel 1 the mean STFT magnitude of the noise there.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop: int, frames: int, bands: int,
                 harmonics: int, centre: float, scale: float) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop = sample_rate, n_fft, hop
        self.frames, self.harmonics = frames, harmonics
        self.centre, self.scale = centre, scale
        self.register_buffer("to_bins", band_interpolation(sample_rate, n_fft, bands),
                             persistent=False)
        self.source_log_peak = source_log_peak(n_fft)
        self.noise_log_level = noise_log_level(n_fft)

    @property
    def length(self) -> int:
        return self.frames * self.hop

    def source_spectrum(self, f0_hz: Tensor) -> Tensor:
        """STFT of the pulse train at each note's (constant) f0: complex ``[B, bins + 1,
        frames + 1]``. Computed once per distinct pitch: a batch of 64 notes at one pitch
        costs one pulse train, not 64 (the train sums up to ``harmonics`` sines per sample)."""
        distinct, index = torch.unique(f0_hz.float(), return_inverse=True)
        per_frame = distinct[:, None].expand(-1, self.frames + 1)
        source = pulse_train(per_frame, self.sample_rate, self.hop, self.harmonics)
        return stft(source[:, : self.length], self.n_fft, self.hop)[index]

    def forward(self, envelope: Tensor, f0_hz: Tensor, gen: torch.Generator | None = None
                ) -> Tensor:
        log_levels = torch.einsum("kb,ncbf->nckf", self.to_bins, envelope.float())
        log_levels = log_levels * self.scale + self.centre
        log_levels = torch.cat([log_levels, log_levels[..., -1:]], dim=-1)  # the last frame
        peak, floor = log_levels[:, 0], log_levels[:, 1]
        gain = (peak - self.source_log_peak).exp()
        level = (floor - self.noise_log_level).exp()
        noise = randn((envelope.shape[0], self.length), gen, envelope.device)
        return shape_and_invert(gain, self.source_spectrum(f0_hz.to(envelope.device)), level,
                                noise, self.n_fft, self.hop, self.length)
