"""Validation during training: the mean loss over a fixed set of held-out windows.

Every ``train.val_every`` steps (0: never) rank 0 scores ``train.val_batches`` batches of
``data.batch_size`` items from ``data.val_split``, drawn once by the objective's own data set
(so a sequence objective is validated on sequences) with ``train.seed``: the same items at
every validation and in every run with that seed, so the curve compares like with like.

It must not change training: the model is scored in eval mode without gradients, its mode
restored afterwards, and inside :func:`torch.random.fork_rng` so the global RNG stream the next
training steps draw from (label dropout, latents) is the one it would have been; a resumed run
thus stays bitwise equal to an uninterrupted one whether or not either validated.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import default_collate

from waveloom.config import RunConfig


class Validator:
    """Scores the validation set for a trainer; ``run`` returns the mean loss or None."""

    def __init__(self, objective: Any, cache: Any, cfg: RunConfig, fabric: Any) -> None:
        self.objective, self.cache, self.cfg, self.fabric = objective, cache, cfg, fabric
        self.every = cfg.train.val_every if fabric.is_global_zero else 0
        self._batches: list[dict[str, Any]] | None = None

    def due(self, step: int) -> bool:
        return bool(self.every) and step % self.every == 0

    def _load(self, model: nn.Module) -> list[dict[str, Any]]:
        """The fixed validation batches (CPU), built once; [] if the split is empty."""
        d, t = self.cfg.data, self.cfg.train
        if not len(self.cache.split_indices(d.val_split)) or t.val_batches == 0:
            self.fabric.print(f"note: data.val_split={d.val_split!r} has no examples in "
                              f"{self.cache.root} (or train.val_batches=0); validation is off")
            return []
        n = t.val_batches * d.batch_size
        dataset = self.objective.make_dataset(self.cache, self.cfg, model, split=d.val_split,
                                              epoch_size=n)
        items = [dataset[i] for i in range(n)]
        return [default_collate(items[i:i + d.batch_size]) for i in range(0, n, d.batch_size)]

    def run(self, model: nn.Module) -> float | None:
        """Mean of the objective's validation ``'loss'`` over the batches (None: no data)."""
        raw = getattr(model, "module", model)
        device = self.fabric.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if self._batches is None:
                self._batches = self._load(raw)
            if not self._batches:
                self.every = 0
                return None
            was_training = raw.training
            raw.eval()
            try:
                total = torch.zeros((), dtype=torch.float64, device=device)
                with torch.no_grad(), self.fabric.autocast():
                    for batch in self._batches:
                        losses = self.objective.validation_losses(
                            raw, self.fabric.to_device(batch))
                        total += losses["loss"].double()
            finally:
                raw.train(was_training)
        return float(total) / len(self._batches)
