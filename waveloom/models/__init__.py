"""Model families: one file each, registered in :mod:`waveloom.models.registry`."""

from waveloom.models.base import Autoencoder, Generative, Likelihood
from waveloom.models.registry import FamilyEntry, build_model, family_names, get_family

__all__ = [
    "Autoencoder",
    "FamilyEntry",
    "Generative",
    "Likelihood",
    "build_model",
    "family_names",
    "get_family",
]
