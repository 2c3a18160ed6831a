"""The ``ddsp`` family: a neural controller of a differentiable synthesiser (see model.py)."""

from waveloom.models.ddsp.config import DDSPConfig
from waveloom.models.ddsp.model import DDSP

__all__ = ["DDSP", "DDSPConfig"]
