"""WaveGlow-lite (Prenger et al. 2019): a normalising flow from audio to Gaussian noise.

Why a flow: it has an exact likelihood (trained by maximum likelihood like a WaveNet) yet
samples in one parallel pass, since every layer is invertible in closed form.

    audio [B, T] --squeeze (group G)--> [B, G, T/G]
      --K flows: invertible 1x1 conv, affine coupling (a non-causal WaveNet of the first half
        and the conditioning gives scale and shift of the second half)-->
      every ``early_every`` flows ``early_size`` channels leave early (WaveGlow's early
      outputs: lower flows model fewer channels) --> z ~ N(0, sigma^2 I)

Negative log-likelihood per sample (nats): ``(|z|^2 / (2 sigma^2) + N/2 log(2 pi sigma^2) -
sum log|det|) / N``. A continuous density of float audio: its bits are *not* comparable with
the categorical families' bits per mu-law code.

Conditioning (``model.conditioning``): ``mel`` (a vocoder: MelGAN's log mel, upsampled to the
sample rate by the shared ``UpsampleConditioning`` and squeezed like the audio, as in the
paper), ``class`` (pitch and instrument vectors, broadcast in time) or ``none``. Sampling draws
``z`` at ``sigma x temperature`` (the paper samples at sigma 0.6 after training at 1.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from waveloom.config import ModelConfig, SamplingOptions, require_positive
from waveloom.errors import ConfigError
from waveloom.models.base import Batch, Likelihood, require_default_engine
from waveloom.models.vocoder_conditioning import (
    LabelOrMelConditioning,
    LabelOrMelConfig,
    LabelOrMelModel,
)
from waveloom.nn.flows import AffineCoupling, InvertibleConv1x1, squeeze, unsqueeze


@dataclass
class WaveGlowConfig(LabelOrMelConfig):
    """Hyper-parameters; the defaults are a CPU-sized 'lite' model (paper: 12 flows, 8
    groups, coupling WaveNets of 8 layers x 256 channels); conditioning fields are
    :class:`LabelOrMelConfig`'s, a mel vocoder by default."""

    flows: int = 8
    group: int = 8
    early_every: int = 4
    early_size: int = 2
    hidden: int = 64
    coupling_layers: int = 4
    sigma: float = 1.0  # training sigma of z
    sample_sigma: float = 0.6  # sampling sigma (x --temperature)
    conditioning: str = "mel"
    cond_dim: int = 16
    cond_dropout: float = 0.0

    def validate(self) -> None:
        super().validate()
        require_positive(self, "flows", "group", "early_every", "hidden", "coupling_layers",
                         "sigma", "sample_sigma")
        left = self.group - self.early_size * ((self.flows - 1) // self.early_every)
        if self.group % 2 or left < 2:
            raise ConfigError(f"model.group={self.group} must be even and keep >= 2 channels "
                              f"after the early outputs ({self.flows} flows, early_size "
                              f"{self.early_size} every {self.early_every})")


class WaveGlow(LabelOrMelModel, Likelihood):
    """An invertible map audio <-> z; see the module docstring."""

    config_class: ClassVar[type[ModelConfig]] = WaveGlowConfig
    config: WaveGlowConfig

    def __init__(self, config: WaveGlowConfig) -> None:
        super().__init__(config)
        c = config
        self.conditioner = LabelOrMelConditioning(c)
        # a mel is squeezed like the audio: G x n_mels channels per group step
        cond_channels = self.conditioner.channels * (c.group if c.conditioning == "mel" else 1)
        self.mixes, self.couplings, channels = nn.ModuleList(), nn.ModuleList(), c.group
        for k in range(c.flows):
            if k and k % c.early_every == 0:
                channels -= c.early_size
            self.mixes.append(InvertibleConv1x1(channels, seed=k))
            self.couplings.append(AffineCoupling(channels, c.hidden, c.coupling_layers,
                                                 cond_channels))

    def _cond(self, labels: dict[str, Any], batch: int, length: int,
              audio: Tensor | None = None) -> Tensor | None:
        """The couplings' conditioning ``[B, Cc, T/G]`` (or ``[B, Cc, 1]`` for labels)."""
        up = self.conditioner(labels, batch, length, audio, dropout=self.training)
        if up is None or self.config.conditioning != "mel":
            return up
        b, m, t = up.shape
        g = self.config.group
        return up.view(b, m, t // g, g).permute(0, 1, 3, 2).reshape(b, m * g, t // g)

    def _length(self, length: int) -> int:
        g = self.config.group
        if length % g:
            raise ConfigError(f"WaveGlow reads whole groups: {length} samples is not a "
                              f"multiple of model.group={g}")
        return length

    def flow(self, audio: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        """Audio ``[B, T]`` -> (z ``[B, T]``, log|det dz/dx| ``[B]``)."""
        x = squeeze(audio, self.config.group)
        early, logdet = [], audio.new_zeros(audio.shape[0])
        for k, (mix, coupling) in enumerate(zip(self.mixes, self.couplings)):
            if k and k % self.config.early_every == 0:
                early.append(x[:, : self.config.early_size])
                x = x[:, self.config.early_size:]
            x, ld1 = mix(x)
            x, ld2 = coupling(x, cond)
            logdet = logdet + ld1 + ld2
        return unsqueeze(torch.cat([*early, x], 1)), logdet

    def inverse(self, z: Tensor, cond: Tensor | None) -> Tensor:
        """z ``[B, T]`` -> audio ``[B, T]`` (the exact inverse of :meth:`flow`)."""
        c = self.config
        parts = squeeze(z, c.group)
        n_early = (c.flows - 1) // c.early_every
        early = [parts[:, i * c.early_size:(i + 1) * c.early_size] for i in range(n_early)]
        x = parts[:, n_early * c.early_size:]
        for k in reversed(range(c.flows)):
            x = self.couplings[k].inverse(x, cond)
            x = self.mixes[k].inverse(x)
            if k and k % c.early_every == 0:
                x = torch.cat([early.pop(), x], 1)
        return unsqueeze(x)

    def _nll(self, batch: Batch) -> Tensor:
        """NLL in nats per example ``[B]``."""
        audio = batch["audio"].float()
        n = self._length(audio.shape[-1])
        cond = self._cond(batch, audio.shape[0], n, audio=audio)
        z, logdet = self.flow(audio, cond)
        var = self.config.sigma ** 2
        return (z.pow(2).sum(-1) / (2 * var) + 0.5 * n * math.log(2 * math.pi * var) - logdet)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Mean NLL in nats per sample (a continuous density; see the module docstring)."""
        nll = self._nll(batch)
        loss = nll.mean() / batch["audio"].shape[-1]
        return {"loss": loss, "nats_per_sample": loss.detach()}

    def log_prob(self, batch: Batch) -> Tensor:
        """The exact log-density, spread evenly over the samples ``[B, T]`` (a flow scores a
        clip as a whole)."""
        nll = self._nll(batch)
        t = batch["audio"].shape[-1]
        return (-nll / t)[:, None].expand(-1, t)

    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        """``z ~ N(0, (sample_sigma x temperature)^2)`` through the inverse flow ->
        ``[n, length]`` (rounded up to whole groups, then cut)."""
        options = options or SamplingOptions()
        require_default_engine(self, options)
        g = self.config.group
        full = -(-length // g) * g
        device = self.mixes[0].log_s.device
        c = self._cond(dict(cond or {}), n, full)
        gen = torch.Generator(device=device).manual_seed(int(options.seed or 0))
        sigma = self.config.sample_sigma * options.temperature
        z = torch.randn(n, full, generator=gen, device=device) * sigma
        return self.inverse(z, c)[:, :length].clamp(-1, 1)

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        batch = super().example_batch(batch_size, length - length % self.config.group, seed)
        batch["instrument"] = batch["instrument"] % self.config.num_instruments
        if self.mel_features is not None:
            batch["mel"] = self.mel_features(batch["audio"])
        return batch
