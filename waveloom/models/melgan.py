"""MelGAN (Kumar et al. 2019): a non-autoregressive mel-spectrogram -> waveform vocoder.

::

    log mel [B, 80, F] (waveloom.audio.spectral.mel_spectrogram: n_fft 1024, hop 256)
      G: conv k7 (512) -> [LeakyReLU, transposed conv x r, residual stack (dilations 1, 3, 9)]
         for r in (8, 8, 2, 2) (channels halve each time) -> LeakyReLU, conv k7 -> tanh
         -> audio [B, F * hop]          (all weight-normalised; no noise input: mel fixes it)
      D: 3 identical discriminators on the audio at 1, 1/2, 1/4 of the rate (average pooling):
         conv k15 -> grouped strided convs k41 s4 -> conv k5 -> conv k3 -> score map
      loss: hinge, + 10 x feature matching (L1 between D's features of real and fake, mean
            within a layer, summed over layers and discriminators as in the paper's eq. 5-6)
            [+ mel_weight x L1 between the log mels of fake and real, HiFi-GAN's eq. 3]

``model.mel_weight`` (0 = the paper's MelGAN) adds HiFi-GAN's mel-spectrogram loss (Kong et al.
2020: weight 45): the generated window's log mel, by the same analysis as the conditioning, is
pulled towards the real one. The adversarial terms alone take hundreds of thousands of steps to
leave buzzy, phase-scrambled output; with the mel loss the generator is usable after a few
thousand, which is what a CPU budget allows.

The discriminators see random windows (``model.disc_window`` samples, the same position for
the real and the generated audio) of the training window: the generator works on the whole
window, where its receptive field is complete, and the discriminators on shorter crops, which
is cheaper and serves more positions per batch.

``model.generator: istft`` swaps the upsampling generator for a source-filter one at the frame
rate with an inverse-STFT output (:mod:`waveloom.models.melgan_istft`; the shipped
``melgan-istft-notes``); the discriminators and losses are the same.

MelGAN has no latent: ``generate`` vocodes ``cond['mel']`` ([n, 80, F] log mel) or
resynthesises ``cond['prime']`` (or ``cond['audio']``, as the autoencoders read it) through its
mel (``waveloom generate --prime FILE``); ``waveloom vocode CKPT MEL.npy`` is its main use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from waveloom.audio.mel_features import MelFeatures
from waveloom.config import ModelConfig, SamplingOptions, require_positive
from waveloom.errors import ConfigError, DataError
from waveloom.models.adversarial import Adversarial, AdversarialConfig, CriticOutput, fit_length
from waveloom.models.base import Batch, require_default_engine
from waveloom.models.melgan_istft import (
    ISTFTSourceFilterGenerator,
    mel_prior_matrix,
    noise_generator,
)
from waveloom.nn.gan import ResidualStack, randint, wn_conv1d, wn_conv_transpose1d

# Log mels (natural log, floor 1e-5) span about [-11.5, 4]; this brings them near [-1.5, 1.5].
MEL_CENTRE, MEL_SCALE = -5.0, 5.0


@dataclass
class MelGANConfig(AdversarialConfig):
    n_mels: int = 80
    n_fft: int = 1024
    hop: int = 256  # = product of upsample_factors
    fmin: float = 0.0
    fmax: float = 0.0  # 0 = sample_rate / 2
    upsample_factors: tuple[int, ...] = (8, 8, 2, 2)
    channels: int = 512
    dilations: tuple[int, ...] = (1, 3, 9)
    scales: int = 3
    disc_channels: int = 16
    disc_max_channels: int = 1024
    disc_layers: int = 4  # strided (stride 4) grouped convs per discriminator
    disc_window: int = 8192  # samples each discriminator sees; 0 = the whole window
    latent_dim: int = 1  # unused (no latent); kept for the shared config
    gan_loss: str = "hinge"
    fm_weight: float = 10.0
    mel_weight: float = 0.0  # HiFi-GAN's mel loss (45 there); 0 = the paper's MelGAN
    # "single": HiFi-GAN's L1 of log mels at the model's own analysis (n_fft 1024, hop 256);
    # "multiscale": L1 of log mels at windows 256-2048 (hops a quarter of each; EnCodec's
    # scales), which also sees structure periodic in the model's hop (measured: after 11k
    # warm-up steps on "single", a 62.5 Hz = 16 kHz / 256 buzz that YIN read as the pitch);
    # "spectral": DDSP's multi-scale spectral loss on linear STFT magnitudes (FFT 64-2048, lin
    # + log terms; Parallel WaveGAN's multi-resolution STFT loss is the same idea), which sees
    # every harmonic's level where 80 mel bands average them (set mel_weight near 1: its scale
    # is ~10x the mel L1's times 45)
    mel_loss: str = "single"
    # > 0: a pitch excitation of this many harmonics at the tracked f0 (YIN on the audio) joins
    # every upsampling stage (NSF-HiFiGAN style; waveloom.nn.excitation): without it a steady
    # note comes out at multiples of sample_rate / hop (docs/melgan.md). The model then needs
    # the audio's f0 beside the mel: resynthesis tracks it; vocoding a bare mel cannot.
    excitation_harmonics: int = 0
    # "conv": the paper's generator (transposed convolutions up to the sample rate); "istft":
    # frame-rate residual stacks whose head filters a pulse train at the tracked f0 and shapes
    # noise, through an inverse STFT at (n_fft, hop) (waveloom.models.melgan_istft). "istft"
    # plays every harmonic below Nyquist up to excitation_harmonics, so set that to ~100.
    generator: str = "conv"
    istft_blocks: int = 2  # residual stacks of the istft generator
    # istft: the head's log-magnitudes are offsets from what the mel alone implies (its flat
    # inverse, the source's level, the partials' spacing; melgan_istft._prior_log_mags), the
    # same for every SoundFont, so the network learns corrections rather than the whole map
    mel_prior: bool = False
    d_lr: float = 1e-4

    def validate(self) -> None:
        super().validate()
        require_positive(
            self, "n_mels", "n_fft", "hop", "channels", "scales", "disc_channels", "disc_layers")
        if int(np.prod(self.upsample_factors)) != self.hop:
            raise ConfigError(f"model.upsample_factors={list(self.upsample_factors)} multiply "
                              f"to {int(np.prod(self.upsample_factors))}, not model.hop={self.hop}")
        if self.generator not in ("conv", "istft"):
            raise ConfigError(f"model.generator={self.generator!r}: use conv or istft")
        if self.mel_prior and self.generator != "istft":
            raise ConfigError("model.mel_prior is for model.generator=istft")
        if self.generator == "istft" and not self.excitation_harmonics:
            raise ConfigError("model.generator=istft filters a pulse train: set "
                              "model.excitation_harmonics (e.g. 100)")
        if self.generator == "conv" and self.channels % 2 ** len(self.upsample_factors):
            raise ConfigError(f"model.channels={self.channels} must be divisible by "
                              f"2**{len(self.upsample_factors)} (halved at each upsampling)")
        if self.disc_window < 0:
            raise ConfigError(f"model.disc_window={self.disc_window} must be >= 0")
        if self.mel_weight < 0:
            raise ConfigError(f"model.mel_weight={self.mel_weight} must be >= 0")
        if self.excitation_harmonics < 0:
            raise ConfigError(f"model.excitation_harmonics={self.excitation_harmonics} must "
                              "be >= 0")
        if self.mel_loss not in ("single", "multiscale", "spectral"):
            raise ConfigError(f"model.mel_loss={self.mel_loss!r}: use single, multiscale or "
                              "spectral")


class MelGANGenerator(nn.Module):
    def __init__(self, c: MelGANConfig) -> None:
        super().__init__()
        ch = c.channels
        layers: list[nn.Module] = [nn.ReflectionPad1d(3), wn_conv1d(c.n_mels, ch, 7)]
        self.sources = nn.ModuleList()
        remaining = int(np.prod(c.upsample_factors))
        for r in c.upsample_factors:
            layers += [nn.LeakyReLU(0.2),
                       wn_conv_transpose1d(ch, ch // 2, 2 * r, stride=r,
                                           padding=r // 2 + r % 2, output_padding=r % 2),
                       ResidualStack(ch // 2, c.dilations)]
            remaining //= r
            if c.excitation_harmonics:  # the excitation brought down to this stage's rate
                k = 2 * remaining if remaining > 1 else 1
                self.sources.append(wn_conv1d(c.excitation_harmonics, ch // 2, k,
                                              stride=remaining, padding=(k - remaining) // 2))
            ch //= 2
        layers += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(3), wn_conv1d(ch, 1, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, mel: Tensor, excitation: Tensor | None = None) -> Tensor:
        """Log mel [B, M, F] (+ excitation [B, K, F * hop]: after each upsampling, brought to
        its rate by a strided convolution and added) -> audio [B, 1, F * hop]."""
        if bool(self.sources) != (excitation is not None):
            raise ConfigError("this MelGAN " + ("needs" if self.sources else "takes no") +
                              " pitch excitation")
        x, stage = (mel - MEL_CENTRE) / MEL_SCALE, 0
        for layer in self.net:
            x = layer(x)
            if excitation is not None and isinstance(layer, nn.ConvTranspose1d):
                x = x + self.sources[stage](excitation)[..., : x.shape[-1]]
                stage += 1
        return x


class ScaleDiscriminator(nn.Module):
    """One of MelGAN's discriminators: (score map [B, T'], features of every layer)."""

    def __init__(self, c: MelGANConfig) -> None:
        super().__init__()
        ch = c.disc_channels
        layers = [nn.Sequential(nn.ReflectionPad1d(7), wn_conv1d(1, ch, 15), nn.LeakyReLU(0.2))]
        for _ in range(c.disc_layers):
            out = min(ch * 4, c.disc_max_channels)
            layers.append(nn.Sequential(
                wn_conv1d(ch, out, 41, stride=4, padding=20, groups=max(1, ch // 4)),
                nn.LeakyReLU(0.2)))
            ch = out
        layers.append(nn.Sequential(wn_conv1d(ch, ch, 5, padding=2), nn.LeakyReLU(0.2)))
        self.layers = nn.ModuleList(layers)
        self.out = wn_conv1d(ch, 1, 3, padding=1)

    def forward(self, x: Tensor) -> CriticOutput:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return self.out(x).flatten(1), feats, None


class MelGANDiscriminator(nn.Module):
    def __init__(self, c: MelGANConfig) -> None:
        super().__init__()
        self.scales = nn.ModuleList(ScaleDiscriminator(c) for _ in range(c.scales))
        self.pool = nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> list[CriticOutput]:
        outs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = self.pool(x)
            outs.append(disc(x))
        return outs


class _Vocoder(nn.Module):
    """What ``waveloom export`` traces: log mel [B, M, F] -> audio [B, F * hop], clamped."""

    def __init__(self, generator: MelGANGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, mel: Tensor) -> Tensor:
        return self.generator(mel)[:, 0].clamp(-1.0, 1.0)


class MelGAN(Adversarial):
    """Mel-spectrogram vocoder (see the module docstring)."""

    config_class: ClassVar[type[ModelConfig]] = MelGANConfig
    config: MelGANConfig

    def __init__(self, config: MelGANConfig) -> None:
        super().__init__(config)
        self.generator = (MelGANGenerator(config) if config.generator == "conv" else
                          ISTFTSourceFilterGenerator(
                              config.n_mels, config.n_fft, config.hop, config.sample_rate,
                              config.channels, config.istft_blocks,
                              config.excitation_harmonics, tuple(config.dilations),
                              self._mel_prior()))
        self.discriminator = MelGANDiscriminator(config)

    # ------------------------------------------------------------------ mel

    def _mel_prior(self) -> tuple[Tensor, Tensor] | None:
        """The istft generator's flat mel inverse and band widths (melgan_istft.
        mel_prior_matrix), or None without the prior."""
        c = self.config
        if not c.mel_prior:
            return None
        from waveloom.audio.spectral import mel_filterbank

        return mel_prior_matrix(mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin,
                                               c.fmax or None))

    def conditioning_keys(self) -> tuple[str, ...]:
        return ("mel",)

    def batch_keys(self) -> tuple[str, ...]:
        return ()  # the mel is computed from each training window

    @property
    def mel_features(self) -> MelFeatures:
        """This model's mel analysis (shared with mel-conditioned WaveNets)."""
        c = self.config
        return MelFeatures(c.sample_rate, c.n_fft, c.hop, c.n_mels, c.fmin, c.fmax)

    def mel(self, audio: Tensor) -> Tensor:
        """Audio [B, T] -> log mel [B, n_mels, 1 + T // hop], exactly as
        :func:`waveloom.audio.spectral.mel_spectrogram` makes it with this model's settings."""
        return self.mel_features(audio)

    def check_mel(self, mel: Any) -> Tensor:
        """A mel array -> float tensor [n, n_mels, frames] on the model's device, or a one-line
        :class:`ConfigError` naming the expected layout."""
        return self.mel_features.check(mel, self._param_device())

    def f0_of(self, audio: Tensor) -> Tensor:
        """Audio [B, T] -> f0 per mel frame [B, 1 + T // hop] (Hz, 0 = unvoiced): YIN over
        2,048-sample frames centred as the mel's, gated at CREPE's silence level (-60 dB)."""
        from waveloom.audio.crepe import SILENCE_DB
        from waveloom.audio.f0 import FMAX, FMIN
        from waveloom.audio.yin import yin

        c, x = self.config, audio.detach().float().cpu().numpy()
        frames = 1 + x.shape[-1] // c.hop
        padded = np.pad(x, ((0, 0), (512, 512)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, 1024, axis=-1)[:, ::c.hop]
        level = 10 * np.log10(np.maximum((windows[:, :frames] ** 2).mean(-1), 1e-20))
        f0 = np.stack([yin(row, c.sample_rate, c.hop, FMIN, FMAX, 2048)[:frames] for row in x])
        f0 = np.where(level >= SILENCE_DB, f0, 0.0)
        return torch.from_numpy(f0).float().to(audio.device)

    def _excitation(self, f0: Tensor, phase0: Tensor | None = None) -> Tensor | None:
        c = self.config
        if not c.excitation_harmonics:
            return None
        from waveloom.nn.excitation import harmonic_excitation

        return harmonic_excitation(f0, c.sample_rate, c.hop, c.excitation_harmonics, phase0)

    @torch.no_grad()
    def vocode(self, mel: Any, *, seed: int = 0, f0: Any = None) -> Tensor:
        """Log mel [n, M, F] (or [M, F]) -> audio [n, (F - 1) * hop] (the length of the audio a
        centred mel of F frames was computed from, rounded down to whole hops). ``seed`` draws
        the istft generator's noise (the same seed, the same audio); the conv generator is
        deterministic and ignores it.
        An excited MelGAN also needs ``f0`` [n, F] (Hz per frame, :meth:`f0_of`)."""
        m = self.check_mel(mel)
        if self.config.excitation_harmonics:
            if f0 is None:
                raise ConfigError("this MelGAN plays a pitch excitation and needs the audio's f0 "
                                  "beside the mel: give it (waveloom vocode CKPT MEL.npy --f0 "
                                  "F0.npy) or resynthesise the audio (waveloom generate CKPT "
                                  "--prime FILE)")
            f0 = torch.as_tensor(f0 if isinstance(f0, Tensor) else np.asarray(f0),
                                 device=m.device).float()
            if f0.numel() != m.shape[0] * m.shape[-1] or not torch.isfinite(f0).all():
                raise ConfigError(f"f0 has shape {tuple(f0.shape)} for {m.shape[0]} mel(s) of "
                                  f"{m.shape[-1]} frames; expected finite Hz, one a frame")
            f0 = f0.reshape(m.shape[0], -1).clamp_min(0.0)
        audio = self._synthesise(m, f0, None, noise_generator(seed))[:, 0]
        return audio[:, : self.mel_features.samples(m.shape[-1])].clamp(-1.0, 1.0)

    # ------------------------------------------------------------------ adversarial pieces

    def real_sample(self, batch: Batch, gen: torch.Generator | None) -> tuple[Tensor, dict]:
        audio = batch["audio"].to(self._param_device())
        if audio.dim() != 2:
            raise DataError(f"batch['audio'] has shape {tuple(audio.shape)}; expected [B, T]")
        cond = {"mel": self.mel(audio), "length": audio.shape[-1]}
        if self.config.excitation_harmonics:
            cond["f0"] = self.f0_of(audio)
            cond["phase0"] = (torch.rand(audio.shape[0], generator=gen) * 2 * math.pi
                              if self.training else torch.zeros(audio.shape[0])).to(audio.device)
        return audio[:, None], cond

    def fake_sample(self, cond: dict[str, Any], gen: torch.Generator | None) -> Tensor:
        return self._synthesise(cond["mel"], cond.get("f0"), cond.get("phase0"), gen
                                )[..., : cond["length"]]

    def _synthesise(self, mel: Tensor, f0: Tensor | None, phase0: Tensor | None,
                    gen: torch.Generator | None) -> Tensor:
        """Log mel [B, M, F] (+ f0 [B, F] Hz when the model is excited) -> audio [B, 1, T]
        through whichever generator the config names; ``gen`` seeds the istft's noise."""
        if self.config.generator == "istft":
            return self.generator((mel - MEL_CENTRE) / MEL_SCALE, f0, phase0, gen, mel)
        excitation = self._excitation(f0, phase0) if self.config.excitation_harmonics else None
        return self.generator(mel, excitation)

    def reconstruction_loss(self, real: Tensor, fake: Tensor, cond: dict[str, Any]
                            ) -> Tensor | None:
        """``mel_weight`` x mean |log mel(fake) - log mel(real)| over the whole window (the
        real mel is the conditioning itself), the same L1 of log mels at four resolutions
        (``mel_loss='multiscale'``), or DDSP's multi-scale spectral loss on linear STFT
        magnitudes (``'spectral'``); None when ``mel_weight`` is 0."""
        c = self.config
        if not c.mel_weight:
            return None
        if c.mel_loss == "multiscale":
            from waveloom.nn.codec_losses import multiscale_mel_loss

            return c.mel_weight * multiscale_mel_loss(fake[:, 0], real[:, 0], c.sample_rate,
                                                      log=True)
        if c.mel_loss == "spectral":
            from waveloom.audio.spectral import multiscale_spectral_distance

            return c.mel_weight * multiscale_spectral_distance(fake[:, 0], real[:, 0]).mean()
        return c.mel_weight * (self.mel(fake[:, 0]) - cond["mel"]).abs().mean()

    def crop_pair(self, real: Tensor, fake: Tensor, gen: torch.Generator | None
                  ) -> tuple[Tensor, Tensor]:
        w, t = self.config.disc_window, real.shape[-1]
        if not w or w >= t:
            return real, fake
        start = randint(t - w + 1, (real.shape[0],), gen).to(real.device)
        index = (start[:, None] + torch.arange(w, device=real.device))[:, None]
        return real.gather(2, index), fake.gather(2, index)

    def critic(self, x: Tensor, cond: dict[str, Any], gen: torch.Generator | None
               ) -> list[CriticOutput]:
        return self.discriminator(x)

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        """Vocode ``cond['mel']`` or resynthesise ``cond['prime']`` (see the module docstring).
        The conv generator is deterministic; the istft one draws its noise from the seed of
        ``options`` (None counts as 0, so a resynthesis is always reproducible)."""
        options = options or SamplingOptions()
        require_default_engine(self, options)
        if n <= 0 or length <= 0:
            raise ConfigError(f"n={n} and length={length} must be positive")
        cond, f0 = cond or {}, None
        if "mel" in cond:
            mel, f0 = self.check_mel(cond["mel"]), cond.get("f0")
        elif "prime" in cond or "audio" in cond:  # resynthesis (as autoencoders read 'audio')
            audio = torch.as_tensor(cond["prime"] if "prime" in cond else cond["audio"])
            audio = audio.float().to(self._param_device()).reshape(-1, audio.shape[-1])
            mel = self.mel(audio)
            f0 = self.f0_of(audio) if self.config.excitation_harmonics else None
        else:
            raise ConfigError("MelGAN is a vocoder: give it a mel (waveloom vocode CKPT MEL.npy) "
                              "or audio to resynthesise (waveloom generate CKPT --prime FILE)")
        if mel.shape[0] == 1 and n > 1:
            mel = mel.expand(n, -1, -1)
            f0 = None if f0 is None else torch.as_tensor(f0).reshape(1, -1).expand(n, -1)
        if mel.shape[0] != n:
            raise ConfigError(f"{mel.shape[0]} mels for {n} samples")
        return fit_length(self.vocode(mel, f0=f0, seed=options.seed or 0), length)

    def export_spec(self) -> Any:
        """The generator as a vocoder: log mel [B, n_mels, F] -> audio [B, F x hop] in
        [-1, 1] (the last hop is the centred frame's right half: trim it, as ``vocode`` does,
        when the mel came from a whole file)."""
        from waveloom.models.export_spec import ExportSpec

        c = self.config
        if c.excitation_harmonics:
            raise ConfigError("exporting a MelGAN with a pitch excitation is not built yet "
                              "(its f0 tracking runs in numpy); export one without it")
        g = torch.Generator().manual_seed(0)
        examples = [(MEL_CENTRE + MEL_SCALE * torch.randn(1, c.n_mels, frames, generator=g),)
                    for frames in (32, 17)]
        return ExportSpec(
            module=_Vocoder(self.generator).eval(), examples=examples, inputs=["mel"],
            outputs=["audio"], dynamic={"mel": {0: "batch", 2: "frames"},
                                        "audio": {0: "batch", 1: "samples"}},
            info={"sample_rate": c.sample_rate, "hop": c.hop,
                  "mel": self.mel_features.layout(), "latency_ms": 0.0})

    def interpolate(self, *args: Any, **kwargs: Any) -> Tensor:
        raise ConfigError("MelGAN has no latent to interpolate; --interpolate is for "
                          "wavegan, specgan and gansynth")

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        batch = super().example_batch(batch_size, length, seed)
        batch["mel"] = self.mel(batch["audio"])
        return batch
