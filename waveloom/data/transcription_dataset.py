"""Training windows for a transcriber: audio and its frame labels, from an audio cache with
scores (``waveloom prepare`` of a MAESTRO-layout folder stores each example's note table).

A :class:`~waveloom.data.dataset.WindowDataset` draws the window (length-weighted, seeded per
(seed, epoch, index)); the labels come from the note table by
:func:`~waveloom.data.note_labels.note_labels`, so no MIDI is parsed in a loader worker; and in
training the audio is augmented (:func:`~waveloom.data.augment.augment`) with the same seeded
generator, so an item stays a pure function of its index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from waveloom.data.augment import augment as augment_audio
from waveloom.data.cache import AudioCache
from waveloom.data.dataset import WindowDataset
from waveloom.data.note_labels import note_labels
from waveloom.errors import ConfigError, DataError


class TranscriptionDataset(WindowDataset):
    """Item ``i``: ``audio`` float32 ``[window]`` and ``onset``/``offset``/``frame``/``velocity``
    float32 ``[window // hop, 88]``; ``window`` must be a multiple of ``hop``."""

    def __init__(self, cache: AudioCache | str | Path, split: str = "train", window: int = 32768,
                 hop: int = 256, epoch_size: int | None = None, seed: int = 0,
                 augment: bool = False, sample_rate: int = 16000, chorus: float = 0.0,
                 formants: float = 0.0):
        super().__init__(cache, split=split, window=window, context=0, keys=(),
                         epoch_size=epoch_size, seed=seed)
        if hop <= 0 or window % hop:
            raise ConfigError(f"data.window={window} must be a positive multiple of the "
                              f"transcriber's hop ({hop} samples)")
        if not self.cache.has_notes:
            raise DataError(f"cache {self.cache.root} has no scores, so there is nothing to "
                            "learn to transcribe; prepare a MAESTRO-layout folder (waveloom data "
                            "render-midi ..., then prepare --format maestro)")
        self.hop, self.augment, self.sample_rate = int(hop), bool(augment), int(sample_rate)
        self.chorus, self.formants = float(chorus), float(formants)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = self._rng(index)
        k, start, audio = self._window(rng, self.length)
        if self.augment:
            audio = augment_audio(audio, rng, self.sample_rate, chorus=self.chorus,
                                 formants=self.formants)
        labels = note_labels(self.cache.note_table(int(self.indices[k])), start,
                             self.window // self.hop, self.hop)
        item = {"audio": torch.from_numpy(np.ascontiguousarray(audio))}
        item.update({name: torch.from_numpy(value) for name, value in labels.items()})
        return item
