"""Exponential moving average of model weights.

Autoregressive audio models sample noticeably cleaner from averaged weights (Parallel WaveNet and
most WaveNet reproductions use them), so the exported checkpoint holds the EMA weights whenever
``train.ema_decay > 0`` while the optimiser keeps training the raw ones.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Shadow copy of a model's floating-point parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.shadow = {
            name: t.detach().clone()
            for name, t in model.state_dict().items()
            if torch.is_floating_point(t)
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        # One fused multi-tensor lerp: on a GPU a per-tensor loop costs one kernel launch per
        # parameter, more than the small models' whole training step.
        state = model.state_dict()
        names = [name for name in self.shadow if name in state]
        torch._foreach_lerp_(
            [self.shadow[n] for n in names],
            [state[n].detach().to(self.shadow[n].dtype) for n in names],
            1.0 - self.decay,
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            if name in self.shadow:
                self.shadow[name].copy_(value)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s floating-point state with the averaged one."""
        state = model.state_dict()
        for name, value in self.shadow.items():
            state[name].copy_(value)
