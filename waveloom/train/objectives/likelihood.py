"""The one-loss objective: minimise the model's ``loss`` with one AdamW optimiser.

Every likelihood family (WaveNet's cross-entropy, a code prior's, a mixture's NLL) and every
reconstruction family (an autoencoder's spectral loss) trains this way: what differs is the
model's ``loss``, not the update. Registry names ``"likelihood"`` and ``"reconstruction"``.
"""

from __future__ import annotations

from torch import Tensor, nn

from waveloom.train.objectives.base import Batch, Objective, detached


class LikelihoodObjective(Objective):
    """One update per batch on ``model.loss(batch)['loss']``; EMA of all weights."""

    def step(self, model: nn.Module, batch: Batch, step: int) -> dict[str, Tensor]:
        with self.autocast():
            losses = model.loss(batch)
        self.apply(model, losses["loss"])
        self.update_ema(model)
        self.end_step()
        return detached(losses)
