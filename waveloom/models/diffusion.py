"""What every diffusion family shares: the noise schedule, the denoising loss, the sampler's
view of the network. The samplers themselves live in :mod:`waveloom.sampling.diffusion`.

A :class:`Diffusion` model predicts the noise ``eps`` of ``x_t = sqrt(abar_t) x_0 +
sqrt(1 - abar_t) eps`` (Ho et al. 2020): its ``loss`` is the unweighted mean squared error of
that prediction at a uniformly drawn step (DiffWave, eq. 3). The step and the noise (and the
clean target ``x0``) come from the batch when the "denoising" objective put them there (drawn
from the run's seed and step, so a resumed run corrupts the same way), else are drawn (and
computed) here (evaluation, tests).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from waveloom.errors import ConfigError
from waveloom.models.base import Batch, Generative
from waveloom.nn.diffusion_schedule import NoiseSchedule

PREDICTIONS = ("eps", "v", "x0", "edm")


def check_prediction(prediction: str) -> None:
    """A config's ``model.prediction`` must be one the base class trains and samples."""
    if prediction not in PREDICTIONS:
        raise ConfigError(f"model.prediction={prediction!r}: use one of {', '.join(PREDICTIONS)}")


class Diffusion(Generative):
    """Base of the diffusion families: subclasses build ``self.schedule`` and implement
    :meth:`denoise` and :meth:`condition_input`."""

    #: Samplers this family offers, the first the default (waveloom.sampling.diffusion).
    samplers: ClassVar[tuple[str, ...]] = ("ddpm", "ddim", "dpm-solver")
    #: What the network predicts: the noise (``"eps"``, DiffWave), ``"v"`` = sqrt(abar) eps
    #: - sqrt(1 - abar) x0 (Salimans & Ho 2022; latent diffusion) or the clean data ``"x0"``
    #: (DiffWave's source-filter mode: at high noise its target is the smooth conditional mean
    #: instead of the input itself), or ``"edm"``: the clean data through Karras et al.'s
    #: (2022) preconditioning (:meth:`precondition`), trained and sampled alike.
    prediction: ClassVar[str] = "eps"
    #: The clean data's standard deviation, which ``"edm"``'s scalings are built on.
    sigma_data: float = 0.5
    schedule: NoiseSchedule

    def predict(self, x: Tensor, tau: Tensor, cond: Any) -> Tensor:
        """The network's raw prediction (noise or v, as :attr:`prediction` says) for ``x`` at
        float steps ``tau`` ``[B]``."""
        raise NotImplementedError

    def precondition(self, x: Tensor, tau: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """EDM's scalings (Karras et al. 2022, table 1) in this variance-preserving schedule:
        ``(network input, skip, out)`` with ``x0_hat = skip + out * F(network input)``.

        With ``d = 1 - abar + abar sigma_data^2`` (the variance of ``x_t``): the input is
        ``x_t / sqrt(d)`` (unit variance at every step), ``skip = sigma_data^2 sqrt(abar) x_t
        / d`` (the best linear guess of ``x0`` from ``x_t``) and ``out = sigma_data sqrt(1 -
        abar) / sqrt(d)`` (that guess's error scale). The network's target ``(x0 - skip) /
        out`` then has unit variance at every noise level: at low noise it never has to copy
        its input through (the skip does; an x0-predicting network with a ReLU after a
        narrow input layer could not, measured in docs/diffwave.md), at high noise it
        predicts the clean data's mean."""
        a = self.schedule.alpha_bar_at(tau).view(-1, *([1] * (x.dim() - 1)))
        sd2 = self.sigma_data ** 2
        d = 1 - a + a * sd2
        return x / d.sqrt(), sd2 * a.sqrt() * x / d, self.sigma_data * (1 - a).sqrt() / d.sqrt()

    def denoise(self, x: Tensor, tau: Tensor, cond: Any) -> Tensor:
        """The predicted noise of ``x`` (what the samplers read), from any prediction."""
        if self.prediction == "edm":
            inp, skip, scale = self.precondition(x, tau)
            x0 = skip + scale * self.predict(inp, tau, cond)
            a = self.schedule.alpha_bar_at(tau).view(-1, *([1] * (x.dim() - 1)))
            return (x - a.sqrt() * x0) / (1 - a).sqrt()
        out = self.predict(x, tau, cond)
        if self.prediction == "eps":
            return out
        a = self.schedule.alpha_bar_at(tau).view(-1, *([1] * (x.dim() - 1)))
        if self.prediction == "x0":
            return (x - a.sqrt() * out) / (1 - a).sqrt()
        return a.sqrt() * out + (1 - a).sqrt() * x

    def condition_input(self, labels: dict[str, Any], batch: int, length: int,
                        audio: Tensor | None = None, dropout: bool = False) -> Tensor | None:
        """The network's conditioning for ``batch`` outputs of ``length`` samples, from the
        labels (and, for an analysis-conditioned model such as a vocoder, the clean audio)."""
        raise NotImplementedError

    def clean_target(self, batch: Batch) -> Tensor:
        """What the model denoises for this batch: the audio ``[B, T]`` here; a latent
        diffusion family returns its latents ``[B, D, F]`` (the objective draws noise of
        this shape)."""
        return batch["audio"].float()

    def noise_shape(self, n: int, length: int) -> tuple[int, ...]:
        """The shape a sampler starts from for ``n`` outputs of ``length`` samples."""
        return (n, length)

    def to_audio(self, x: Tensor, length: int, labels: dict[str, Any] | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """The sampler's final ``x`` -> audio ``[n, length]`` (here: x itself). ``labels``
        (the request) and ``generator`` (the sampler's) are for a family whose decoder needs
        them: DiffWave's source-filter mode plays the labelled pitch with a seeded noise."""
        return x

    def fast_betas(self) -> tuple[float, ...] | None:
        """A variance schedule of the family's own for few-step DDPM (None: none)."""
        return None

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Mean squared error of the prediction (noise, v or x0), also at low and high noise."""
        x0 = batch.get("x0")
        if x0 is None:
            x0 = self.clean_target(batch)
        b = x0.shape[0]
        t = batch.get("diffusion_t")
        if t is None:
            t = torch.randint(0, self.schedule.steps, (b,), device=x0.device)
        noise = batch.get("noise")
        if noise is None:
            noise = torch.randn_like(x0)
        audio = batch["audio"].float()
        cond = self.condition_input(batch, b, audio.shape[-1], audio=audio,
                                    dropout=self.training)
        noisy = self.schedule.noisy(x0, t, noise)
        target = x0 if self.prediction == "x0" else noise
        if self.prediction == "edm":
            noisy, skip, scale = self.precondition(noisy, t.float())
            target = (x0 - skip) / scale
        out = self.predict(noisy, t.float(), cond)
        if self.prediction == "v":
            a = self.schedule.alpha_bar.to(x0.device)[t].float().view(-1, *([1] * (x0.dim() - 1)))
            target = a.sqrt() * noise - (1 - a).sqrt() * x0
        per_example = (out - target).pow(2).flatten(1).mean(1)
        loss = per_example.mean()
        with torch.no_grad():
            low = (t < self.schedule.steps // 2).float()
            high = 1 - low
            out = {"loss": loss,
                   "mse_low_noise": (per_example * low).sum() / low.sum().clamp_min(1),
                   "mse_high_noise": (per_example * high).sum() / high.sum().clamp_min(1)}
        return out

    def example_batch(self, batch_size: int, length: int, seed: int = 0) -> Batch:
        """The base batch plus a seeded corruption (steps and noise), so its loss is
        reproducible, as the denoising objective's batches are."""
        batch = super().example_batch(batch_size, length, seed)
        g = torch.Generator().manual_seed(seed + 1)
        batch["diffusion_t"] = torch.randint(0, self.schedule.steps, (batch_size,), generator=g)
        batch["noise"] = torch.randn(self.clean_target(batch).shape, generator=g)
        batch["instrument"] = batch["instrument"] % getattr(self.config, "num_instruments", 4)
        return batch
