"""Truncated backpropagation through time, for recurrent families (SampleRNN).

A step reads sequences of ``data.chunks`` consecutive windows of one file ('audio'
[B, chunks, window + context], 'roll' [B, chunks, 128, frames], 'start' [B, chunks]) and
makes one update per window, in order, carrying the recurrent state from window to window
detached (gradients stop at window boundaries); the state is dropped after the last window,
since the next batch starts new files.
A step is thus ``data.chunks`` updates and one learning-rate step; checkpoints fall between
sequences, so resume stays exact. The model provides ``loss_chunk(window, state) -> (losses,
state)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from waveloom.config import RunConfig
from waveloom.train.objectives.base import Batch, Objective, dataset_args, detached

#: Batch keys that carry one entry per window (dim 1); the others are per sequence.
PER_WINDOW_KEYS = ("audio", "roll", "start")


def detach_state(state: Any) -> Any:
    """A recurrent state (tensors in nested tuples/lists) cut from the graph."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    return state


def window_losses(model: nn.Module, batch: Batch, autocast: Any = contextlib.nullcontext
                  ) -> Iterator[dict[str, Tensor]]:
    """The losses of each window of ``batch``'s sequences, in order, each window continuing
    from the detached state the one before it left (None for the first); each forward runs in
    ``autocast()`` (the objective's mixed precision)."""
    state = None
    for j in range(batch["audio"].shape[1]):
        window = {k: v[:, j] if k in PER_WINDOW_KEYS else v for k, v in batch.items()}
        with autocast():
            losses, state = model.loss_chunk(window, state)
        yield losses
        state = detach_state(state)


class TruncatedBPTTObjective(Objective):
    """One AdamW update per window of a sequence; the step's metrics are its last window's."""

    forward_methods: ClassVar[tuple[str, ...]] = ("loss", "loss_chunk")
    dataset_kind: ClassVar[str] = "sequences"

    def make_dataset(self, cache: Any, cfg: RunConfig, model: nn.Module, *, split: str,
                     epoch_size: int) -> Any:
        """Sequences of ``data.chunks`` consecutive windows of ``data.window`` samples."""
        from waveloom.data.dataset import ChunkSequenceDataset

        return ChunkSequenceDataset(cache, split=split, chunk=cfg.data.window,
                                    n_chunks=cfg.data.chunks, **dataset_args(cfg, model),
                                    epoch_size=epoch_size)

    def step(self, model: nn.Module, batch: Batch, step: int) -> dict[str, Tensor]:
        for losses in window_losses(model, batch, self.autocast):
            self.apply(model, losses["loss"])
            self.update_ema(model)
        self.end_step()
        return detached(losses)

    def validation_losses(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """The mean over the windows of each metric (the state carried as in training)."""
        total: dict[str, Tensor] = {}
        n = 0
        for losses in window_losses(model, batch):
            total = {k: total.get(k, 0) + v.detach() for k, v in losses.items()}
            n += 1
        return {k: v / n for k, v in total.items()}
