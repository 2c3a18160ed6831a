"""What a family hands to ``waveloom export``: a traceable module and how to call it.

A family that can be exported implements ``export_spec() -> ExportSpec`` (see
:meth:`waveloom.models.base.Generative.export_spec`). The spec is format-neutral: the verb
(:mod:`waveloom.app.export`) traces ``module`` on ``examples[0]`` into ONNX or TorchScript and
runs every example through both the file and the module to show they agree. Further examples
use other lengths along the ``dynamic`` axes, so a file that silently baked in the first
example's shape is caught there, not in a user's host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn


@dataclass
class ExportSpec:
    """``module(*example) -> tuple of tensors``, named ``inputs`` -> ``outputs``.

    ``dynamic``: input or output name -> {axis: symbol} for the axes whose length may change
    between calls (frames, samples, batch). ``state``: pairs (input, output) that a host feeds
    back from one call into the next, all zeros at the start. ``info``: what a host needs to
    drive the file (sample rate, hop, latency, units), written beside it as JSON.
    """

    module: nn.Module
    examples: list[tuple[Tensor, ...]]
    inputs: list[str]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    state: list[tuple[str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
