"""The distillation objective: a student trained through a frozen teacher (Parallel WaveNet,
ClariNet).

The update is the likelihood objective's (one AdamW step on the model's ``loss``, EMA when
``train.ema_decay`` is set; the teacher's parameters are frozen, so they have no gradients and
the optimiser leaves them alone). What this adds is the student's input noise: each step's
``noise`` ``[B, T]`` is drawn from a generator seeded by ``(train.seed, step)`` and handed to
the model in the batch, so a resumed run draws the same noise for the same step and the
model's ``loss`` stays a pure function of its batch. Validation batches get a draw seeded by
their own samples, so the validation loss is comparable across the run.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from waveloom.train.objectives.base import Batch
from waveloom.train.objectives.likelihood import LikelihoodObjective

_VALIDATION_SEED = 0xD157


def with_noise(batch: Batch, seed: int) -> Batch:
    """``batch`` plus ``noise`` shaped like its audio, drawn on the CPU from ``seed`` (so every
    device draws the same numbers)."""
    audio = batch["audio"]
    g = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(tuple(audio.shape), generator=g)
    return {**batch, "noise": noise.to(device=audio.device, dtype=audio.dtype)}


class DistillationObjective(LikelihoodObjective):
    """One update per batch on the student's distillation loss, with seeded noise."""

    def step(self, model: nn.Module, batch: Batch, step: int) -> dict[str, Tensor]:
        seed = (int(self.cfg.train.seed) * 1_000_003 + int(step)) % (2**63 - 1)
        return super().step(model, with_noise(batch, seed), step)

    def validation_losses(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        key = int(float(batch["audio"][:, :256].abs().sum()) * 1e4) % (2**31)
        return super().validation_losses(model, with_noise(batch, _VALIDATION_SEED + key))
