"""Training objectives: name (as the registry gives it) -> class.

Each objective is one class (see :mod:`waveloom.train.objectives.base` for the protocol); a new
one (denoising, distillation, a codec's) is one module here and one line in ``OBJECTIVES``.
"""

from __future__ import annotations

from waveloom.errors import ConfigError
from waveloom.train.objectives.adversarial import AdversarialObjective, step_generator
from waveloom.train.objectives.base import Objective
from waveloom.train.objectives.bptt import TruncatedBPTTObjective
from waveloom.train.objectives.denoising import DenoisingObjective
from waveloom.train.objectives.distillation import DistillationObjective
from waveloom.train.objectives.likelihood import LikelihoodObjective
from waveloom.train.objectives.tokens import TokenLikelihoodObjective
from waveloom.train.objectives.transcription import TranscriptionObjective

OBJECTIVES: dict[str, type[Objective]] = {
    "likelihood": LikelihoodObjective,
    "reconstruction": LikelihoodObjective,
    "adversarial": AdversarialObjective,
    "truncated_bptt": TruncatedBPTTObjective,
    "token_likelihood": TokenLikelihoodObjective,
    "transcription": TranscriptionObjective,
    "denoising": DenoisingObjective,
    "distillation": DistillationObjective,
}


def build_objective(name: str) -> Objective:
    """A fresh objective of the registry's ``name`` (ConfigError for an unknown one)."""
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown training objective {name!r}; known: "
                          f"{', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name]()


__all__ = ["OBJECTIVES", "AdversarialObjective", "DenoisingObjective", "DistillationObjective",
           "LikelihoodObjective",
           "Objective",
           "TokenLikelihoodObjective", "TranscriptionObjective",
           "TruncatedBPTTObjective", "build_objective", "step_generator"]
