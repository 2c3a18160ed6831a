"""Refuse a training step whose activations will not fit, before the kernel kills the process.

The data set checks one window and the registry checks the parameters (``waveloom.memory``), but
what a step really holds is its activations: batch x window x every layer's channels, saved for
the backward pass. Predicting that per family would mean a formula per architecture; measuring it
needs no formula. The trainer's first step runs under :class:`StepMemoryGuard`, a saved-tensor
hook that adds up the bytes autograd keeps (each storage once) and stops the forward with a
one-line :class:`ConfigError` once they pass :data:`waveloom.memory.HEADROOM` of the memory that
was free when the step began. Nothing has been updated yet, so no work is lost; an allocator
failure inside that step (one tensor larger than what is free) gets the same line.

Later steps hold the same shapes, so only the first is guarded: the hot path pays nothing.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from waveloom.errors import ConfigError
from waveloom.memory import DISABLE_ENV, HEADROOM, available_bytes, human

#: Substrings of the allocator messages that mean "out of memory" (CPU and CUDA).
_OOM_MARKERS = ("can't allocate memory", "out of memory", "DefaultCPUAllocator")


def free_bytes(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device`` now (None when unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return available_bytes()


class StepMemoryGuard:
    """Context manager over one training step: ``ConfigError`` when the tensors saved for the
    backward pass exceed ``budget`` bytes, or when the allocator runs out.

    ``what`` describes the step in the message (e.g. ``'a training step of 8 x 16,000
    samples'``); ``free`` is the free memory quoted beside it.
    """

    def __init__(self, what: str, free: int | None, keys: str = "data.window or "
                 "data.batch_size") -> None:
        self.what, self.free, self.keys = what, free, keys
        self.budget = None if free is None else HEADROOM * free
        self.saved = 0
        self._seen: set[tuple[str, int]] = set()
        self._hooks: Any = None

    def _message(self, needs: str) -> str:
        free = "unknown memory" if self.free is None else human(self.free)
        return (f"{self.what} {needs} but only {free} is free; lower {self.keys} "
                f"(or set {DISABLE_ENV}=1 to skip this check)")

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        try:
            storage = tensor.untyped_storage()
            key = (str(tensor.device), storage.data_ptr())
            size = storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensor subclasses without a storage
            return tensor
        if key not in self._seen:
            self._seen.add(key)
            self.saved += size
            if self.saved > self.budget:
                raise ConfigError(self._message(
                    f"holds more than {human(self.saved)} of activations (counting stopped "
                    "there)"))
        return tensor

    def __enter__(self) -> StepMemoryGuard:
        if self.budget is not None and not os.environ.get(DISABLE_ENV):
            self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
            self._hooks.__enter__()
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
        if self._hooks is not None:
            self._hooks.__exit__(kind, error, trace)
            self._hooks = None
        self._seen.clear()
        if isinstance(error, RuntimeError) and not isinstance(error, ConfigError) and any(
                marker in str(error) for marker in _OOM_MARKERS):
            raise ConfigError(self._message("ran out of memory in the allocator")) from None
        return False
