"""GANSynth (Engel et al. 2019): log magnitude + instantaneous frequency, conditioned on pitch.

::

    audio [B, 64000] -> STFT (n_fft 2048, hop 512; Nyquist bin dropped; 128 frames)
          -> [B, 2, 1024 bins, 128 frames]: normalised log magnitude, instantaneous frequency
             (the unwrapped phase's finite difference over time / pi, in [-1, 1))
          (mel option: both channels warped along frequency by a square mel matrix)
    G: [z (256), one-hot pitch] -> dense -> [2, 16] image -> (upsample, two 3x3 convs,
       LeakyReLU, pixel norm) x6 -> 1x1 conv -> tanh            (progressive-GAN layers)
    D: strided 5x5 convs, minibatch stddev, a score and a pitch classifier
    loss: WGAN-GP + 10 x cross-entropy of the pitch (real in D, fake in G)
    audio = iSTFT(exp(log magnitude) * exp(i * pi * cumsum(IF)))   (exact, no Griffin-Lim)

The inversion is the exact inverse of the analysis
(:func:`waveloom.audio.spectral.instantaneous_frequency` / :func:`~waveloom.audio.spectral.
phase_from_if`), so real notes round-trip to themselves up to the magnitude floor and the
dropped Nyquist bin; with ``mel: true`` the inverse warp is the least-squares (pseudo-)inverse
of the mel matrix, since narrow low mel bands share FFT bins. The paper grew its networks
progressively; here they are trained at full size from the start (progressive growing is a
schedule, not a different model). The tiny preset has 32 x 32 images.

Two additions, off in the paper presets: the harmonic IF prior (``harmonic_prior``) and the
source-filter output (``source_filter``, :mod:`waveloom.nn.envelope_synth`: the generator
paints an envelope, a pulse train at the labelled pitch carries the pitch), with its envelope
loss (``envelope_weight``); docs/gansynth.md measures both. Why the second: on a CPU budget the
plain generator never put its energy on the labelled pitch's harmonics (0 of 12 notes on pitch
after 1,445 steps, with or without the prior). Its critic hears the synthesised audio analysed
as real notes are (:meth:`GANSynth.analyse`), the IF channel without a gradient: the generator
cannot steer phase (the source fixes it), and the angle's derivative, 1 / |Y|^2, explodes in
near-silent bins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from waveloom.audio.spectral import hz_to_mel, instantaneous_frequency, istft, mel_to_hz, stft
from waveloom.audio.tuning import midi_hz
from waveloom.config import ModelConfig, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.adversarial import Adversarial, AdversarialConfig, CriticOutput
from waveloom.models.base import Batch
from waveloom.models.specgan import log_range
from waveloom.nn.envelope_synth import SourceFilterSynth
from waveloom.nn.gan import Conv2dDiscriminator, Upsample2dGenerator, randn


@dataclass
class GANSynthConfig(AdversarialConfig):
    n_fft: int = 2048
    hop: int = 512
    frames: int = 128  # clip length = frames * hop (65,536 covers NSynth's 64,000)
    layers: int = 6
    model_dim: int = 32  # channels of the last generator / first discriminator layer
    max_channels: int = 256
    mel: bool = False
    log_floor: float = 1e-6
    latent_dim: int = 256
    pitch_conditioning: bool = True
    # A one-hot instrument beside the pitch's in the generator's input, and an instrument head
    # beside the pitch head in the critic's auxiliary classifier (an addition: NSynth's
    # GANSynth took pitch only, and drew timbre from the latent).
    instrument_conditioning: bool = False
    num_instruments: int = 16
    min_pitch: int = 24
    max_pitch: int = 84
    aux_weight: float = 10.0
    d_lr: float = 8e-4
    d_betas: tuple[float, float] = (0.0, 0.99)
    # The harmonic IF prior (an addition; docs/gansynth.md): the generator's IF channel is a
    # residual over the IF a harmonic note at the labelled pitch has in every bin (each bin
    # turning at its nearest harmonic's frequency), so the energy the generator puts near a
    # harmonic comes out at exactly k x f0 (energy far between harmonics does not: it is left
    # to the magnitudes). The plain model had no note on pitch after 1,700 CPU steps; with the
    # prior the phase of the pitch need not be discovered.
    harmonic_prior: bool = False
    # Progressive GANs' equalised learning rate (waveloom.nn.gan.EqualizedConv2d), which
    # GANSynth's layers have. Off keeps the checkpoints trained before it loadable (their
    # weights are stored unscaled).
    equalized_lr: bool = False
    # The source-filter output (an addition; waveloom.nn.envelope_synth): the generator
    # paints a [2, envelope_bands, frames] envelope (the partials' level, the noise floor) and
    # a pulse train at the labelled pitch (up to ``harmonics`` partials) carries the pitch.
    source_filter: bool = False
    envelope_bands: int = 64
    harmonics: int = 80
    # The envelope loss (an addition, as pix2pix's L1 beside its GAN): weight x the mean
    # absolute difference between the normalised log magnitudes of each generated note and the
    # real note whose labels it was drawn with, both averaged over envelope_pool x
    # envelope_pool cells (bins x frames), so it asks for the labels' typical envelope (its
    # velocities differ) and leaves the fine detail to the critic. 0: the paper's GAN alone.
    envelope_weight: float = 0.0
    envelope_pool: int = 4

    @property
    def bins(self) -> int:
        return self.n_fft // 2

    @property
    def length(self) -> int:
        return self.frames * self.hop

    @property
    def num_pitches(self) -> int:
        return self.max_pitch - self.min_pitch + 1 if self.pitch_conditioning else 0

    @property
    def num_labels(self) -> int:
        """Width of the one-hot labels: pitches, then instruments."""
        return self.num_pitches + (self.num_instruments if self.instrument_conditioning else 0)

    def validate(self) -> None:
        super().validate()
        require_positive(self, "n_fft", "hop", "frames", "layers", "model_dim", "max_channels",
                         "num_instruments")
        if self.bins % 2**self.layers or self.frames % 2**self.layers:
            raise ConfigError(
                f"model.n_fft/2={self.bins} and model.frames={self.frames} must be divisible by "
                f"2**model.layers={2**self.layers}"
            )
        if not 0 <= self.min_pitch <= self.max_pitch <= 127:
            raise ConfigError(f"model.min_pitch={self.min_pitch}..max_pitch={self.max_pitch} "
                              "must be a MIDI range 0..127")
        if not self.log_floor > 0:
            raise ConfigError(f"model.log_floor={self.log_floor} must be > 0")
        if self.harmonic_prior and not self.pitch_conditioning:
            raise ConfigError("model.harmonic_prior needs model.pitch_conditioning: true (the "
                              "prior is the labelled pitch's harmonics)")
        if self.source_filter:
            self._validate_source_filter()
        if not self.envelope_weight >= 0:
            raise ConfigError(f"model.envelope_weight={self.envelope_weight} must be >= 0")
        require_positive(self, "envelope_pool")

    def _validate_source_filter(self) -> None:
        require_positive(self, "envelope_bands", "harmonics")
        if not self.pitch_conditioning:
            raise ConfigError("model.source_filter needs model.pitch_conditioning: true (the "
                              "source plays the labelled pitch)")
        if self.harmonic_prior:
            raise ConfigError("model.source_filter and model.harmonic_prior are two ways to "
                              "place the partials: set one of them")
        if self.envelope_bands < 2 or self.envelope_bands % 2**self.layers:
            raise ConfigError(f"model.envelope_bands={self.envelope_bands} must be >= 2 and "
                              f"divisible by 2**model.layers={2**self.layers}")


def wrap_unit(x: Tensor) -> Tensor:
    """IF values (phase / pi) wrapped to [-1, 1): the same phase advance modulo 2 pi."""
    return x - 2.0 * torch.floor((x + 1.0) / 2.0)


def _labels(values: Any, n: int, what: str) -> Tensor:
    """One label or ``n`` labels -> long [n] on the CPU; a one-line error for another count."""
    labels = torch.as_tensor(values).long().reshape(-1).cpu()
    labels = labels.expand(n) if labels.numel() == 1 else labels
    if labels.numel() != n:
        raise ConfigError(f"{labels.numel()} {what} for {n} samples")
    return labels


def harmonic_if(sr: int, n_fft: int, hop: int, bins: int, pitches: Tensor) -> Tensor:
    """The IF (as :func:`~waveloom.audio.spectral.instantaneous_frequency` gives it, frames
    after the first) of a harmonic note at each MIDI pitch, per linear bin: ``[P, bins]``.

    A stationary partial at ``h`` Hz turns the phase of every bin in its main lobe by
    ``2 pi h hop / sr`` per frame, so a bin's value is that of its nearest harmonic ``k f0``
    (k >= 1; bins below f0 / 2 take the fundamental's)."""
    f0 = midi_hz(pitches.double())[:, None]
    centre = torch.arange(bins, dtype=torch.float64)[None, :] * sr / n_fft
    harmonic = torch.clamp(torch.round(centre / f0), min=1.0) * f0
    return wrap_unit(2.0 * harmonic * hop / sr).float()


def mel_warp(sr: int, n_fft: int, bins: int) -> Tensor:
    """Square [bins, bins] map from linear-frequency bins (0 .. sr/2, Nyquist dropped) to
    ``bins`` mel-spaced bins (float64; rows sum to one).

    Row ``k`` is a triangle in Hz centred on mel point ``k`` (points evenly spaced in mel, see
    :func:`waveloom.audio.spectral.hz_to_mel`) reaching to its neighbours, but never narrower
    than one FFT bin: at low frequencies, where mel points are denser than FFT bins, rows
    interpolate between bins (nothing is lost and no row is empty, unlike a Slaney filterbank
    with as many bands as bins); at high frequencies they average several bins, which the
    inverse (a pseudo-inverse) can only spread back evenly.
    """
    df = sr / n_fft
    hz = torch.arange(bins, dtype=torch.float64) * df
    points = mel_to_hz(np.linspace(0.0, float(hz_to_mel(hz[-1].item())), bins))
    centre = torch.from_numpy(np.asarray(points, dtype=np.float64))
    left = torch.cat([centre[:1] - df, centre[:-1]])
    right = torch.cat([centre[1:], centre[-1:] + df])
    lo = centre - torch.maximum(centre - left, torch.tensor(df))
    hi = centre + torch.maximum(right - centre, torch.tensor(df))
    f = hz[None, :]
    rise = (f - lo[:, None]) / (centre - lo)[:, None]
    fall = (hi[:, None] - f) / (hi - centre)[:, None]
    w = torch.clamp(torch.minimum(rise, fall), min=0.0)
    return w / w.sum(dim=1, keepdim=True)


class GANSynth(Adversarial):
    """Pitch-conditioned log-magnitude + instantaneous-frequency GAN (see the module doc)."""

    config_class: ClassVar[type[ModelConfig]] = GANSynthConfig
    config: GANSynthConfig
    #: ``waveloom generate`` draws rainbowgrams (phase as colour) for this family's samples.
    rainbowgram: ClassVar[bool] = True

    def __init__(self, config: GANSynthConfig) -> None:
        super().__init__(config)
        c = config
        height = c.envelope_bands if c.source_filter else c.bins  # the envelope, or the image
        self.generator = Upsample2dGenerator(c.latent_dim + c.num_labels, 2, height, c.frames,
                                             c.layers, c.model_dim, pixel_norm=True,
                                             max_channels=c.max_channels,
                                             equalized=c.equalized_lr)
        self.discriminator = Conv2dDiscriminator(2, c.bins, c.frames, c.layers, c.model_dim,
                                                 classes=c.num_labels, stddev=True,
                                                 max_channels=c.max_channels,
                                                 equalized=c.equalized_lr)
        self.centre, self.scale = log_range(c.n_fft, c.log_floor)
        if c.mel:
            warp = mel_warp(c.sample_rate, c.n_fft, c.bins)
            self.register_buffer("warp", warp.float(), persistent=False)
            # the inverse warp turns a generated image into bins; a source-filter model makes
            # audio without one (and skips the pinv's 0.2 s at every load)
            unwarp = None if c.source_filter else torch.linalg.pinv(warp, rtol=1e-3).float()
            self.register_buffer("unwarp", unwarp, persistent=False)
        else:
            self.warp = self.unwarp = None
        if c.harmonic_prior:
            pitches = torch.arange(c.min_pitch, c.max_pitch + 1)
            table = harmonic_if(c.sample_rate, c.n_fft, c.hop, c.bins, pitches)
            self.register_buffer("prior_if", table, persistent=False)  # [P, bins], linear
        else:
            self.prior_if = None
        self.source = None
        if c.source_filter:
            self.source = SourceFilterSynth(c.sample_rate, c.n_fft, c.hop, c.envelope_bands,
                                            c.harmonics, self.centre, self.scale)

    # ------------------------------------------------------------------ representation

    def conditioning_keys(self) -> tuple[str, ...]:
        c = self.config
        return (("pitch",) if c.pitch_conditioning else ()) + (
            ("instrument",) if c.instrument_conditioning else ())

    def analyse(self, audio: Tensor) -> Tensor:
        """Audio [B, T] -> [B, 2, bins, frames]: normalised log magnitude, IF (both [-1, 1])."""
        c = self.config
        if audio.dim() != 2:
            raise DataError(f"audio has shape {tuple(audio.shape)}; expected [B, T]")
        x = F.pad(audio[:, : c.length], (0, max(0, c.length - audio.shape[-1])))
        spec = stft(x.float(), c.n_fft, c.hop)[:, : c.bins, : c.frames]
        logmag = (spec.abs().clamp_min(c.log_floor).log() - self.centre) / self.scale
        inst = instantaneous_frequency(torch.angle(spec))
        if self.warp is not None:
            logmag, inst = self.warp @ logmag, self.warp @ inst
        return torch.stack([logmag.clamp(-1.0, 1.0), inst], dim=1)

    def invert(self, image: Tensor, linear_if: Tensor | None = None) -> Tensor:
        """[B, 2, bins, frames] (as :meth:`analyse` makes) -> audio [B, frames * hop].
        ``linear_if`` [B, bins, frames], when given, is the IF on linear bins, used instead of
        un-warping the image's (the harmonic prior's exact IF, which a mel band's average of
        several bins would blur)."""
        c = self.config
        logmag, inst = image[:, 0].float(), image[:, 1].float()
        if self.unwarp is not None:
            logmag, inst = self.unwarp @ logmag, self.unwarp @ inst
        if linear_if is not None:
            inst = linear_if.float()
        mag = (logmag.clamp(-1.5, 1.5) * self.scale + self.centre).exp()
        phase = torch.cumsum(inst * math.pi, dim=-1)  # waveloom.audio.spectral.phase_from_if
        spec = torch.polar(mag, phase)
        # The dropped Nyquist bin and one trailing frame come back silent.
        spec = F.pad(spec, (0, 1, 0, 1))
        return istft(spec, c.hop, length=c.length)

    def pitch_index(self, pitch: Any, n: int) -> Tensor:
        """MIDI pitches -> indices into the one-hot range; a one-line error outside it."""
        c = self.config
        p = _labels(60 if pitch is None else pitch, n, "pitches")
        if p.numel() and (int(p.min()) < c.min_pitch or int(p.max()) > c.max_pitch):
            bad = int(p.min()) if int(p.min()) < c.min_pitch else int(p.max())
            raise ConfigError(f"pitch {bad} is outside this model's range "
                              f"{c.min_pitch}..{c.max_pitch} (model.min_pitch/max_pitch)")
        return (p - c.min_pitch).to(self._param_device())

    def with_prior(self, image: Tensor, index: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The generator's image [B, 2, bins, frames] with the harmonic IF prior added to its
        IF channel (on linear bins, wrapped, then warped back when ``mel``) -> (the image the
        critic sees, the linear IF [B, bins, frames] for :meth:`invert`); unchanged and None
        without the prior."""
        if self.prior_if is None or index is None:
            return image, None
        inst = image[:, 1] if self.unwarp is None else self.unwarp @ image[:, 1]
        linear = wrap_unit(inst + self.prior_if[index][:, :, None])
        warped = linear if self.warp is None else self.warp @ linear
        return torch.stack([image[:, 0], warped], dim=1), linear

    def instrument_index(self, instrument: Any, n: int) -> Tensor | None:
        """Instrument ids [n] (0 when not given), or None for a model without them; a one-line
        error outside 0..num_instruments - 1."""
        c = self.config
        if not c.instrument_conditioning:
            return None
        i = _labels(0 if instrument is None else instrument, n, "instruments")
        bad = [int(v) for v in i if not 0 <= int(v) < c.num_instruments]
        if bad:
            raise ConfigError(f"instrument id {bad[0]}: this model knows 0.."
                              f"{c.num_instruments - 1} (model.num_instruments)")
        return i.to(self._param_device())

    def _latent_input(self, z: Tensor, index: Tensor | None,
                      instrument: Tensor | None = None) -> Tensor:
        parts = [z]
        if index is not None:
            parts.append(F.one_hot(index, self.config.num_pitches).to(z.dtype))
        if instrument is not None:
            parts.append(F.one_hot(instrument, self.config.num_instruments).to(z.dtype))
        return torch.cat(parts, dim=-1)

    # ------------------------------------------------------------------ adversarial pieces

    def real_sample(self, batch: Batch, gen: torch.Generator | None) -> tuple[Tensor, dict]:
        x = self.analyse(batch["audio"].to(self._param_device()))
        cond: dict[str, Any] = {"n": x.shape[0], "index": None, "instrument": None}
        for key in self.conditioning_keys():
            if key not in batch:
                raise DataError(f"GANSynth is {key}-conditioned: the batch needs {key!r}")
        try:
            if self.config.pitch_conditioning:
                cond["index"] = self.pitch_index(batch["pitch"], x.shape[0])
            cond["instrument"] = self.instrument_index(batch.get("instrument"), x.shape[0])
        except ConfigError as err:
            raise DataError(f"training data: {err}") from None
        return x, cond

    def fake_sample(self, cond: dict[str, Any], gen: torch.Generator | None) -> Tensor:
        z = randn((cond["n"], self.latent_dim), gen, self._param_device())
        image = self.generator(self._latent_input(z, cond["index"], cond.get("instrument")))
        if self.source is not None:  # the critic hears the audio, its IF without a gradient
            analysed = self.analyse(self.source(image, self.pitch_hz(cond["index"]), gen))
            return torch.stack([analysed[:, 0], analysed[:, 1].detach()], dim=1)
        return self.with_prior(image, cond["index"])[0]

    def pitch_hz(self, index: Tensor) -> Tensor:
        """Indices into the pitch range [B] -> equal-tempered f0 in Hz [B] (A4 = 440)."""
        return midi_hz((index + self.config.min_pitch).float())

    def critic(self, x: Tensor, cond: dict[str, Any], gen: torch.Generator | None
               ) -> list[CriticOutput]:
        return [self.discriminator(x)]

    def reconstruction_loss(self, real: Tensor, fake: Tensor, cond: dict[str, Any]
                            ) -> Tensor | None:
        """``envelope_weight`` x L1 between the pooled log magnitudes (channel 0 of [B, 2,
        bins, frames]) of each fake and the real note it shares its labels with; None at 0."""
        c = self.config
        if c.envelope_weight <= 0:
            return None
        pool = (c.envelope_pool, c.envelope_pool)
        real_env = F.avg_pool2d(real[:, :1], pool, ceil_mode=True)
        fake_env = F.avg_pool2d(fake[:, :1], pool, ceil_mode=True)
        return c.envelope_weight * (fake_env - real_env).abs().mean()

    def class_target(self, cond: dict[str, Any]) -> Tensor | None:
        return cond.get("index")

    def aux_loss(self, logits: Tensor | None, cond: dict[str, Any]
                 ) -> tuple[Tensor, Tensor] | None:
        """Cross-entropy of the pitch head plus, with instruments, of the instrument head (the
        logits' last ``num_instruments`` columns); the accuracy is the pitch head's."""
        index, instrument = cond.get("index"), cond.get("instrument")
        if logits is None or (index is None and instrument is None):
            return None
        p = self.config.num_pitches
        loss, acc = logits.new_zeros(()), logits.new_zeros(())
        if index is not None:
            loss = F.cross_entropy(logits[:, :p], index)
            acc = (logits[:, :p].argmax(-1) == index).float().mean()
        if instrument is not None:
            loss = loss + F.cross_entropy(logits[:, p:], instrument)
        return loss, acc

    def synthesize(self, z: Tensor, cond: dict[str, Any] | None = None) -> Tensor:
        z, cond = z.to(self._param_device()), cond or {}
        index = None
        if self.config.pitch_conditioning:
            index = self.pitch_index(cond.get("pitch"), z.shape[0])
        instrument = self.instrument_index(cond.get("instrument"), z.shape[0])
        image = self.generator(self._latent_input(z, index, instrument))
        if self.source is not None:
            return self.source(image, self.pitch_hz(index)).clamp(-1.0, 1.0)
        image, linear_if = self.with_prior(image, index)
        return self.invert(image, linear_if).clamp(-1.0, 1.0)

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        batch = super().example_batch(batch_size, length, seed)
        g = torch.Generator().manual_seed(seed + 1)
        c = self.config
        batch["pitch"] = torch.randint(c.min_pitch, c.max_pitch + 1, (batch_size,), generator=g)
        batch["instrument"] = torch.randint(0, c.num_instruments, (batch_size,), generator=g)
        return batch
