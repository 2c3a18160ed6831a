"""The :class:`Embedding` interface, apart from the registry of embeddings.

Its own module so that the embeddings built on it (CREPE, TorchScript in
:mod:`waveloom.evaluate.embeddings`, the waveloom classifier in
:mod:`waveloom.evaluate.classifier`) import it without importing each other: the registry
names the classifier, and the classifier must not import the registry back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from waveloom.audio.io import resample
from waveloom.errors import ConfigError


class Embedding(ABC):
    """A clip -> frame-embeddings map. Subclasses set ``name``, ``sample_rate`` and ``layer``."""

    name: str  # shown in reports: fad[<name>]
    sample_rate: int  # Hz the model expects; clips are resampled to it
    layer: str  # which activations, for reports

    @abstractmethod
    def frames(self, audio: np.ndarray) -> np.ndarray:
        """Embeddings ``[F, D]`` (float) of mono ``audio`` ``[T]`` at :attr:`sample_rate`."""

    def key(self) -> str:
        """Everything that changes the output (cache key); override to add settings."""
        return self.name

    def embed_clip(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """``[F, D]`` float64 embeddings of a clip at ``sample_rate`` Hz."""
        audio = resample(np.asarray(audio, np.float32), int(sample_rate), self.sample_rate)
        out = np.asarray(self.frames(audio), dtype=np.float64)
        if out.ndim != 2 or out.shape[0] == 0:
            raise ConfigError(f"embedding {self.name} returned shape {out.shape}, "
                              "expected [frames >= 1, dim]")
        return out
