"""The adversarial objective: two optimisers, ``n_critic`` discriminator steps per generator
step, EMA of the generator.

The losses themselves (WGAN-GP or hinge, feature matching, auxiliary classifier) are the
family's :meth:`~waveloom.models.adversarial.Adversarial.discriminator_loss` and
:meth:`~waveloom.models.adversarial.Adversarial.generator_loss`, written once for all families;
this objective only runs them.

Every discriminator step of a training step reuses that step's real batch with fresh latents:
batches stay a pure function of (seed, step, rank). The latents and the other random choices
(phase shuffle, interpolation weights of the gradient penalty, MelGAN's windows) come from a
generator seeded by (seed, step, rank) too (:func:`step_generator`), so a resumed run draws
exactly what the uninterrupted one would have, whatever else touched the global RNG (the data
loader draws from it when it starts iterating), and every DDP rank draws its own latents.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from waveloom.config import RunConfig
from waveloom.errors import DataError
from waveloom.train.objectives.base import Batch, Objective


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """A CPU generator whose stream is a pure function of (seed, step, rank)."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


class AdversarialObjective(Objective):
    """Generator and discriminator, each with its own AdamW and schedule (``"optimizer"`` and
    ``"optimizer_d"`` in resume.pt). The exported generator is its EMA (when on); the
    discriminator is exported as trained."""

    forward_methods: ClassVar[tuple[str, ...]] = ("loss", "discriminator_loss", "generator_loss")
    ema_prefix: ClassVar[str] = "generator."

    def build_optimizers(self, model: nn.Module, cfg: RunConfig
                         ) -> dict[str, torch.optim.Optimizer]:
        """The generator's with ``train.lr`` and ``train.betas``, the discriminator's with
        ``model.d_lr`` (0: ``train.lr``) and ``model.d_betas``."""
        t, m = cfg.train, cfg.model
        return {
            "optimizer": torch.optim.AdamW(model.generator.parameters(), lr=t.lr,
                                           betas=tuple(t.betas), weight_decay=t.weight_decay),
            "optimizer_d": torch.optim.AdamW(model.discriminator.parameters(),
                                             lr=m.d_lr or t.lr, betas=tuple(m.d_betas),
                                             weight_decay=t.weight_decay),
        }

    def _warm_up(self, model: nn.Module, batch: Batch, gen: torch.Generator
                 ) -> dict[str, Tensor]:
        """A step before ``model.adversarial_start``: the generator alone, on its
        reconstruction loss; the discriminator waits."""
        with self.autocast():
            g = model.generator_loss(batch, gen, adversarial=False)
        self.apply(model, g["loss"], "optimizer")
        self.update_ema(model)
        self.end_step()
        return {"loss": g["loss"].detach(), "reconstruction": g["reconstruction"]}

    def step(self, model: nn.Module, batch: Batch, step: int) -> dict[str, Tensor]:
        """``model.n_critic`` discriminator updates, then one generator update. ``'loss'`` is
        the generator's loss and ``'d_loss'`` the last discriminator loss."""
        gen = step_generator(self.cfg.train.seed, step, self.fabric.global_rank)
        if step < self.cfg.model.adversarial_start:
            return self._warm_up(model, batch, gen)
        for _ in range(self.cfg.model.n_critic):
            with self.autocast():
                d = model.discriminator_loss(batch, gen)
            self.apply(model, d["loss"], "optimizer_d")
        with self.autocast():
            g = model.generator_loss(batch, gen)
        self.apply(model, g["loss"], "optimizer")
        self.update_ema(model)
        if self.fabric.device.type == "cpu":  # on a GPU reading it would stall the queue
            d_loss = float(d["loss"].detach())
            if not math.isfinite(d_loss):
                raise DataError(f"discriminator loss became {d_loss}; lower model.d_lr or "
                                "train.lr")
        self.end_step()
        return {**{k: v.detach() for k, v in d.items() if k != "loss"},
                **{k: v.detach() for k, v in g.items() if k != "loss"},
                "loss": g["loss"].detach(), "d_loss": d["loss"].detach()}
