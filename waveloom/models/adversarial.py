"""What the adversarial families share: the two players' losses, latents and interpolation.

A family registered with objective ``"adversarial"`` subclasses :class:`Adversarial` and
provides three pieces, all in the discriminator's domain (a waveform [B, 1, T] for WaveGAN and
MelGAN, a normalised spectrogram image [B, C, F, frames] for SpecGAN and GANSynth)::

    real_sample(batch, gen) -> (x_real, cond)     the data, plus what conditions both players
    fake_sample(cond, gen)  -> x_fake              the generator's output for that condition
    critic(x, cond, gen)    -> [(score [B], features, class logits | None), ...]  (per scale)

and, for sampling, ``synthesize(z, cond) -> audio``. The losses are written once, here:
WGAN-GP (``model.gan_loss=wgan-gp``: Wasserstein critic + gradient penalty, Gulrajani et al.
2017) or hinge (MelGAN), optional feature matching (``fm_weight``) and an auxiliary classifier
term (``aux_weight``, GANSynth's pitch head). The trainer's adversarial objective runs them with
two optimisers and ``n_critic`` discriminator updates per generator update.

There is no likelihood: ``loss`` (the contract's method) reports both players' objectives on one
batch, their sum as ``'loss'``, which is what validation logging and the contract tests use; the
trainer never optimises that sum. In eval mode the loss draws its latents and random choices from
a fixed seed, so it is a deterministic function of the weights and the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from waveloom.config import ModelConfig, SamplingOptions, require_positive
from waveloom.errors import ConfigError
from waveloom.models.base import Batch, Generative, require_default_engine
from waveloom.nn.gan import (
    feature_matching,
    gradient_penalty,
    hinge_d,
    hinge_g,
    slerp,
    wasserstein_d,
    wasserstein_g,
)

GAN_LOSSES = ("wgan-gp", "hinge")
CriticOutput = tuple[Tensor, list[Tensor], Tensor | None]


@dataclass
class AdversarialConfig(ModelConfig):
    """The objective's settings, shared by every adversarial family.

    They sit in the model section (not ``train``) because they define the family's objective,
    which the registry leaves to the family; ``train.lr``/``train.betas`` drive the generator's
    optimiser and ``d_lr``/``d_betas`` the discriminator's.
    """

    sample_rate: int = 16000
    latent_dim: int = 100
    gan_loss: str = "wgan-gp"  # wgan-gp | hinge
    gp_weight: float = 10.0  # WGAN-GP's lambda
    fm_weight: float = 0.0  # feature matching (MelGAN: 10)
    aux_weight: float = 0.0  # auxiliary classifier (GANSynth's pitch: 10)
    n_critic: int = 1  # discriminator updates per generator update (WaveGAN: 5)
    # steps the generator trains alone on its reconstruction loss before the discriminator
    # joins (Parallel WaveGAN's warm-up: 100k steps there); needs a family with one (MelGAN's
    # mel_weight)
    adversarial_start: int = 0
    d_lr: float = 0.0  # discriminator learning rate; 0 = train.lr
    d_betas: tuple[float, float] = (0.5, 0.9)

    def validate(self) -> None:
        if self.gan_loss not in GAN_LOSSES:
            raise ConfigError(f"model.gan_loss={self.gan_loss!r}: use one of "
                              f"{', '.join(GAN_LOSSES)}")
        require_positive(self, "sample_rate", "latent_dim", "n_critic")
        for name in ("gp_weight", "fm_weight", "aux_weight", "d_lr", "adversarial_start"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be >= 0")
        if not all(0.0 <= b < 1.0 for b in self.d_betas):
            raise ConfigError(f"model.d_betas={list(self.d_betas)} must be in [0, 1)")


def fit_length(audio: Tensor, length: int) -> Tensor:
    """Crop [n, T] audio to ``length`` samples, or pad it with silence (a GAN draws clips of a
    fixed length; a note decays to silence well before the end of one)."""
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return F.pad(audio, (0, length - audio.shape[-1]))


class Adversarial(Generative):
    """Base of the adversarial families (see the module docstring)."""

    config: AdversarialConfig
    generator: nn.Module
    discriminator: nn.Module

    # -- what a family provides
    def real_sample(self, batch: Batch, gen: torch.Generator | None) -> tuple[Tensor, dict]:
        raise NotImplementedError

    def fake_sample(self, cond: dict[str, Any], gen: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def critic(self, x: Tensor, cond: dict[str, Any], gen: torch.Generator | None
               ) -> list[CriticOutput]:
        raise NotImplementedError

    def synthesize(self, z: Tensor, cond: dict[str, Any] | None = None) -> Tensor:
        """Latents [n, latent_dim] -> audio [n, native length] in [-1, 1]."""
        raise NotImplementedError

    def crop_pair(self, real: Tensor, fake: Tensor, gen: torch.Generator | None
                  ) -> tuple[Tensor, Tensor]:
        """What the discriminator sees of a real and a fake batch (MelGAN: random windows)."""
        return real, fake

    def class_target(self, cond: dict[str, Any]) -> Tensor | None:
        """Labels of the auxiliary classifier ([B] long), or None without one."""
        return None

    def aux_loss(self, logits: Tensor | None, cond: dict[str, Any]
                 ) -> tuple[Tensor, Tensor] | None:
        """(cross-entropy, accuracy) of the auxiliary classifier's ``logits`` against
        :meth:`class_target`, or None without one. A family with several label heads in one
        logits vector (GANSynth's pitch and instrument) overrides this."""
        target = self.class_target(cond)
        if target is None or logits is None:
            return None
        return F.cross_entropy(logits, target), (logits.argmax(-1) == target).float().mean()

    def reconstruction_loss(self, real: Tensor, fake: Tensor, cond: dict[str, Any]
                            ) -> Tensor | None:
        """A weighted loss between the whole real and generated windows (before
        :meth:`crop_pair`), added to the generator's objective; None (the default) for none.
        A conditional vocoder's fake has a target (MelGAN: the mel loss of HiFi-GAN)."""
        return None

    # -- the shared objective
    def _eval_gen(self, gen: torch.Generator | None) -> torch.Generator | None:
        if gen is None and not self.training:
            return torch.Generator().manual_seed(0)
        return gen

    def _touch_generator(self) -> Tensor:
        """Zero that depends on every generator parameter: under DDP every parameter must get a
        gradient in every backward, and the discriminator's update does not use the generator
        otherwise (its fakes are drawn without a graph)."""
        return sum(p.sum() for p in self.generator.parameters()) * 0.0

    def _touch_discriminator(self) -> Tensor:
        """Zero that depends on every discriminator parameter (the warm-up's generator loss
        does not use it; under DDP every parameter needs a gradient)."""
        return sum(p.sum() for p in self.discriminator.parameters()) * 0.0

    def discriminator_loss(self, batch: Batch, gen: torch.Generator | None = None
                           ) -> dict[str, Tensor]:
        """The discriminator's objective on one batch (fresh latents): ``'loss'`` + terms."""
        c = self.config
        gen = self._eval_gen(gen)
        real, cond = self.real_sample(batch, gen)
        with torch.no_grad():
            fake = self.fake_sample(cond, gen)
        real, fake = self.crop_pair(real, fake, gen)
        outs_r, outs_f = self.critic(real, cond, gen), self.critic(fake, cond, gen)
        loss_fn = wasserstein_d if c.gan_loss == "wgan-gp" else hinge_d
        adv = sum(loss_fn(r[0], f[0]) for r, f in zip(outs_r, outs_f))
        out = {"d_adv": adv.detach(),
               "d_real": sum(r[0].mean() for r in outs_r).detach(),
               "d_fake": sum(f[0].mean() for f in outs_f).detach()}
        total = adv + self._touch_generator()
        if c.gan_loss == "wgan-gp" and c.gp_weight > 0:
            def score(x: Tensor) -> Tensor:
                return sum(o[0] for o in self.critic(x, cond, gen))

            gp = gradient_penalty(score, real, fake, gen)
            total = total + c.gp_weight * gp
            out["gp"] = gp.detach()
        aux = self.aux_loss(outs_r[0][2], cond) if c.aux_weight > 0 else None
        if aux is not None:
            total = total + c.aux_weight * aux[0]
            out["d_aux"], out["d_class_acc"] = aux[0].detach(), aux[1]
        return {"loss": total, **out}

    def generator_loss(self, batch: Batch, gen: torch.Generator | None = None,
                       adversarial: bool = True) -> dict[str, Tensor]:
        """The generator's objective on one batch: ``'loss'`` + terms; with ``adversarial``
        False (the warm-up before ``adversarial_start``) the reconstruction loss alone."""
        c = self.config
        gen = self._eval_gen(gen)
        real, cond = self.real_sample(batch, gen)
        fake = self.fake_sample(cond, gen)
        recon = self.reconstruction_loss(real, fake, cond)
        if not adversarial:
            if recon is None:
                raise ConfigError(f"model.adversarial_start={c.adversarial_start}: "
                                  f"{type(self).__name__} has no reconstruction loss to warm up "
                                  "on (MelGAN: set model.mel_weight)")
            return {"loss": recon + self._touch_discriminator(), "reconstruction":
                    recon.detach()}
        real, fake = self.crop_pair(real, fake, gen)
        outs_f = self.critic(fake, cond, gen)
        loss_fn = wasserstein_g if c.gan_loss == "wgan-gp" else hinge_g
        total = sum(loss_fn(f[0]) for f in outs_f)
        out = {"g_adv": total.detach()}
        if recon is not None:
            total = total + recon
            out["reconstruction"] = recon.detach()
        if c.fm_weight > 0:
            with torch.no_grad():
                outs_r = self.critic(real, cond, gen)
            # Summed over discriminators like the adversarial term (the paper's eq. 6).
            fm = sum(feature_matching(r[1], f[1]) for r, f in zip(outs_r, outs_f))
            total = total + c.fm_weight * fm
            out["feature_matching"] = fm.detach()
        aux = self.aux_loss(outs_f[0][2], cond) if c.aux_weight > 0 else None
        if aux is not None:
            total = total + c.aux_weight * aux[0]
            out["g_aux"] = aux[0].detach()
        return {"loss": total, **out}

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Both players' objectives on one batch; ``'loss'`` is their sum (see module doc)."""
        d = self.discriminator_loss(batch)
        g = self.generator_loss(batch)
        return {"loss": d["loss"] + g["loss"], "d_loss": d["loss"].detach(),
                "g_loss": g["loss"].detach(),
                **{k: v for k, v in {**d, **g}.items() if k != "loss"}}

    # -- sampling
    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    def _param_device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def sample_latents(self, n: int, seed: int | None = None) -> Tensor:
        """``n`` standard-normal latents [n, latent_dim], a pure function of ``seed``."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.randn(n, self.latent_dim, generator=gen).to(self._param_device())

    @torch.no_grad()
    def generate(self, n: int, length: int, cond: dict[str, Any] | None = None,
                 options: SamplingOptions | None = None) -> Tensor:
        """``n`` clips [n, length] from fresh latents (drawn with ``options.seed``, scaled by
        ``options.temperature``: < 1 trades variety for typicality, the "truncation" of GAN
        sampling). One forward pass: no progress to show. Longer requests are padded with
        silence past the model's clip."""
        options = options or SamplingOptions()
        require_default_engine(self, options)
        if n <= 0 or length <= 0:
            raise ConfigError(f"n={n} and length={length} must be positive")
        z = self.sample_latents(n, options.seed) * options.temperature
        return fit_length(self.synthesize(z, cond), length).clamp(-1.0, 1.0)

    @torch.no_grad()
    def interpolate(self, n: int, length: int, cond: dict[str, Any] | None = None, *,
                    seed: int = 0, temperature: float = 1.0) -> Tensor:
        """``n`` clips along the spherical path from latent ``seed`` to latent ``seed + 1``
        (the first and last are ``generate(1, ..., seed=seed)`` and ``seed=seed + 1``, up to
        rounding)."""
        if n < 2:
            raise ConfigError(f"--interpolate {n}: need at least 2 points")
        a = self.sample_latents(1, seed)[0] * temperature
        b = self.sample_latents(1, seed + 1)[0] * temperature
        t = torch.linspace(0.0, 1.0, n, device=a.device)
        z = slerp(a, b, t)
        return fit_length(self.synthesize(z, cond), length).clamp(-1.0, 1.0)
