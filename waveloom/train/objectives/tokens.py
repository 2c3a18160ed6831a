"""The likelihood objective over event tokens: the same update as
:class:`~waveloom.train.objectives.likelihood.LikelihoodObjective`, but its data set is
windows of a symbolic corpus (:class:`~waveloom.data.token_dataset.TokenWindowDataset`).
Registry name ``"token_likelihood"``; the trainer hands it a SymbolicCache because the model's
``data_kind`` is ``"symbolic"``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from waveloom.config import RunConfig
from waveloom.train.objectives.likelihood import LikelihoodObjective


class TokenLikelihoodObjective(LikelihoodObjective):
    """One AdamW update per batch of ``data.window``-event windows (+1 for the targets)."""

    def make_dataset(self, cache: Any, cfg: RunConfig, model: nn.Module, *, split: str,
                     epoch_size: int) -> Any:
        from waveloom.data.token_dataset import TokenWindowDataset

        augment = split == cfg.data.train_split  # never transpose what validation scores
        return TokenWindowDataset(cache, split=split, window=cfg.data.window,
                                  epoch_size=epoch_size, seed=cfg.train.seed,
                                  transpose=cfg.data.transpose if augment else 0)
