"""The transcriber's objective: the likelihood objective's update (one AdamW step on the
model's ``loss``), over windows of audio with frame labels
(:class:`~waveloom.data.transcription_dataset.TranscriptionDataset`). Training windows are
augmented when ``data.augment`` is on; validation windows never are.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from waveloom.config import RunConfig
from waveloom.train.objectives.base import unwrap
from waveloom.train.objectives.likelihood import LikelihoodObjective


class TranscriptionObjective(LikelihoodObjective):
    """One AdamW update per batch of ``data.window``-sample windows and their labels."""

    def make_dataset(self, cache: Any, cfg: RunConfig, model: nn.Module, *, split: str,
                     epoch_size: int) -> Any:
        from waveloom.data.transcription_dataset import TranscriptionDataset

        c = unwrap(model).config
        return TranscriptionDataset(cache, split=split, window=cfg.data.window, hop=c.hop,
                                    epoch_size=epoch_size, seed=cfg.train.seed,
                                    augment=cfg.data.augment and split == cfg.data.train_split,
                                    sample_rate=cfg.data.sample_rate, chorus=cfg.data.chorus,
                                    formants=cfg.data.formants)
