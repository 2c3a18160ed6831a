"""The denoising objective of diffusion families (DiffWave, latent diffusion).

The update is the likelihood objective's (one AdamW step on the model's ``loss``, EMA when
``train.ema_decay`` is set); what this adds is the corruption's randomness: each step's
diffusion steps ``t`` ``[B]`` and noise ``[B, T]`` are drawn from a generator seeded by
``(train.seed, step)`` and handed to the model in the batch, so a resumed run (or a run on
another device count) corrupts the same windows the same way, and the model's ``loss`` stays
a pure function of its batch. Validation batches get a draw seeded by their own samples, so the
validation loss is comparable across the run.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from waveloom.train.objectives.base import Batch, unwrap
from waveloom.train.objectives.likelihood import LikelihoodObjective

_VALIDATION_SEED = 0x5EED


def corrupt(model: nn.Module, batch: Batch, seed: int) -> Batch:
    """``batch`` with ``diffusion_t`` [B] and ``noise`` (shaped like what the model denoises)
    drawn from ``seed`` (on the CPU, so every device draws the same numbers), and ``x0``, what
    the model denoises, so its loss need not compute it again (a source-filter DiffWave fits
    every note's envelope for it)."""
    inner = unwrap(model)
    target = inner.clean_target(batch)  # the audio, or a latent family's latents
    g = torch.Generator().manual_seed(int(seed))
    t = torch.randint(0, inner.schedule.steps, (target.shape[0],), generator=g)
    noise = torch.randn(target.shape, generator=g)
    return {**batch, "x0": target, "diffusion_t": t.to(target.device),
            "noise": noise.to(device=target.device, dtype=target.dtype)}


class DenoisingObjective(LikelihoodObjective):
    """One update per batch on the noise-prediction loss, with seeded corruption."""

    def step(self, model: nn.Module, batch: Batch, step: int) -> dict[str, Tensor]:
        seed = (int(self.cfg.train.seed) * 1_000_003 + int(step)) % (2**63 - 1)
        return super().step(model, corrupt(model, batch, seed), step)

    def validation_losses(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        # Seeded by the batch's own samples: the same validation windows get the same noise
        # at every validation pass.
        key = int(float(batch["audio"][:, :256].abs().sum()) * 1e4) % (2**31)
        return super().validation_losses(model, corrupt(model, batch, _VALIDATION_SEED + key))
