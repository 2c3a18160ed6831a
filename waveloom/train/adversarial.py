"""The adversarial objective's update: two optimisers, ``n_critic`` discriminator steps per
generator step, EMA of the generator.

The trainer (:mod:`waveloom.train.trainer`) keeps its loop, data, checkpoints and resume; for a
family registered with objective ``"adversarial"`` it builds its optimisers with
:func:`build_optimizers` and takes its updates from :func:`updates` instead of the one-loss
update. The losses themselves (WGAN-GP or hinge, feature matching, auxiliary classifier) are
the family's :meth:`~waveloom.models.adversarial.Adversarial.discriminator_loss` and
:meth:`~waveloom.models.adversarial.Adversarial.generator_loss`, written once for all families.

Every discriminator step of a training step reuses that step's real batch with fresh latents:
batches stay a pure function of (seed, step, rank). The latents and the other random choices
(phase shuffle, interpolation weights of the gradient penalty, MelGAN's windows) come from a
generator seeded by (seed, step, rank) too, so a resumed run draws exactly what the
uninterrupted one would have, whatever else touched the global RNG (the data loader draws from
it when it starts iterating), and every DDP rank draws its own latents.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from waveloom.config import RunConfig
from waveloom.errors import DataError
from waveloom.train.ema import EMA

# Methods the loop calls through Fabric's wrapper (so DDP synchronises their gradients).
FORWARD_METHODS = ("discriminator_loss", "generator_loss")


def is_adversarial(cfg: RunConfig) -> bool:
    from waveloom.models.registry import get_family

    return get_family(cfg.family).objective == "adversarial"


def build_optimizers(model: torch.nn.Module, cfg: RunConfig
                     ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """(generator's, discriminator's) Adam(W) optimisers: the generator with ``train.lr`` and
    ``train.betas``, the discriminator with ``model.d_lr`` (0: ``train.lr``) and
    ``model.d_betas``."""
    t, m = cfg.train, cfg.model
    opt_g = torch.optim.AdamW(model.generator.parameters(), lr=t.lr, betas=tuple(t.betas),
                              weight_decay=t.weight_decay)
    opt_d = torch.optim.AdamW(model.discriminator.parameters(), lr=m.d_lr or t.lr,
                              betas=tuple(m.d_betas), weight_decay=t.weight_decay)
    return opt_g, opt_d


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """A CPU generator whose stream is a pure function of (seed, step, rank)."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


def generator_ema(model: torch.nn.Module, decay: float) -> EMA:
    """An EMA of the generator's weights only (the exported checkpoint samples with them; the
    discriminator is exported as trained)."""
    ema = EMA(model, decay)
    ema.shadow = {k: v for k, v in ema.shadow.items() if k.startswith("generator.")}
    return ema


def updates(model: Any, loader: Any, opt_g: torch.optim.Optimizer,
            opt_d: torch.optim.Optimizer, fabric: Any, cfg: RunConfig, ema: EMA | None,
            unwrap: Any, start_step: int = 0
            ) -> Iterator[tuple[dict[str, Any], dict[str, torch.Tensor], bool]]:
    """For each batch: ``model.n_critic`` discriminator updates, then one generator update;
    yields (batch, losses, True) with ``'loss'`` the generator's loss and ``'d_loss'`` the last
    discriminator loss (both already applied)."""
    n_critic, clip = cfg.model.n_critic, cfg.train.grad_clip
    for step, batch in enumerate(loader, start=start_step):
        gen = step_generator(cfg.train.seed, step, fabric.global_rank)
        for _ in range(n_critic):
            d = model.discriminator_loss(batch, gen)
            opt_d.zero_grad(set_to_none=True)
            fabric.backward(d["loss"])
            if clip > 0:
                fabric.clip_gradients(model, opt_d, max_norm=clip, error_if_nonfinite=False)
            opt_d.step()
        g = model.generator_loss(batch, gen)
        opt_g.zero_grad(set_to_none=True)
        fabric.backward(g["loss"])
        if clip > 0:
            fabric.clip_gradients(model, opt_g, max_norm=clip, error_if_nonfinite=False)
        opt_g.step()
        if ema is not None:
            ema.update(unwrap(model))
        if fabric.device.type == "cpu":  # on a GPU reading it would stall the queue
            d_loss = float(d["loss"].detach())
            if not math.isfinite(d_loss):
                raise DataError(f"discriminator loss became {d_loss}; lower model.d_lr or "
                                "train.lr")
        losses = {**{k: v for k, v in d.items() if k != "loss"},
                  **{k: v for k, v in g.items() if k != "loss"},
                  "loss": g["loss"], "d_loss": d["loss"].detach()}
        yield batch, losses, True
