"""``train.compile``: torch.compile of a model's training loss, kept out of its state dict.

The compiled function is set as an instance attribute over the module's own ``loss`` method
(``module.loss = torch.compile(module.loss)``), not by wrapping the module in an
``OptimizedModule``: the state dict keeps its keys (no ``_orig_mod.`` prefix), so resume, EMA
and the exported ``model.safetensors`` are unchanged and load in an eager model, and Fabric's
wrapper, which looks ``loss`` up on the module, calls the compiled version. The first call
traces and compiles (forward and backward); its wall time is printed once as
``torch.compile: first step took X s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def compile_loss(module: nn.Module, backend: str, say: Callable[[str], Any] = print) -> None:
    """Replace ``module.loss`` by its ``torch.compile``d version (``backend``: inductor,
    aot_eager or eager); the first call's time is reported through ``say``."""
    compiled = torch.compile(module.loss, backend=backend)
    first = [True]

    def loss(*args: Any, **kwargs: Any) -> Any:
        if not first[0]:
            return compiled(*args, **kwargs)
        first[0] = False
        t0 = time.perf_counter()
        out = compiled(*args, **kwargs)
        say(f"torch.compile: first step took {time.perf_counter() - t0:.1f} s "
            f"(backend {backend}; the first forward compiles forward and backward)")
        return out

    module.loss = loss
