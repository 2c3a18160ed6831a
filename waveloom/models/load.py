"""Building a model from a checkpoint: the loading that needs the registry, above models.

(Transitional: re-exports :mod:`waveloom.checkpoint`'s loader until it moves here.)
"""

from __future__ import annotations

from waveloom.checkpoint import load_checkpoint, read_config, read_extra

__all__ = ["load_checkpoint", "read_config", "read_extra"]
