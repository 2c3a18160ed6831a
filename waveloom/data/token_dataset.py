"""Training windows of event tokens from a :class:`~waveloom.data.symbolic.SymbolicCache`.

The token counterpart of :class:`waveloom.data.dataset.WindowDataset`, for a next-event model
(the Music Transformer): each piece is framed as ``BOS tokens EOS`` so a model learns how pieces
begin and end, windows are drawn with probability proportional to the framed length, and an
item is a pure function of ``(seed, epoch, index)`` (a restarted worker or rank reproduces it;
``set_epoch`` draws fresh windows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from waveloom.data.events import BOS, EOS, NOTE_OFF, NOTE_ON, PAD, TIME_SHIFT
from waveloom.data.symbolic import SymbolicCache
from waveloom.errors import ConfigError, DataError


class TokenWindowDataset(Dataset):
    """Random windows of ``window + 1`` tokens of one split: item ``i`` is
    ``{'tokens': int64 [window + 1], 'piece': int64 scalar}`` (inputs ``[:-1]``, targets
    ``[1:]``). A piece shorter than the window is right-padded with PAD, which a loss ignores.
    ``epoch_size`` defaults to the split's length in windows. ``transpose`` > 0 shifts every
    note of a window by one random whole number of semitones in ``[-transpose, transpose]``
    (drawn again, nearer 0, while a note would leave MIDI 0-127): training-time augmentation.
    """

    def __init__(self, cache: SymbolicCache | str | Path, split: str = "train",
                 window: int = 512, epoch_size: int | None = None, seed: int = 0,
                 transpose: int = 0):
        self.cache = cache if isinstance(cache, SymbolicCache) else SymbolicCache(cache)
        if window <= 0:
            raise ConfigError(f"data.window={window}: must be > 0 tokens")
        if not 0 <= transpose <= 24:
            raise ConfigError(f"data.transpose={transpose}: give 0-24 semitones")
        self.split, self.window, self.seed, self.epoch = split, int(window), int(seed), 0
        self.transpose = int(transpose)
        self.indices = self.cache.split_indices(split)
        if len(self.indices) == 0:
            present = sorted(set(self.cache.splits.tolist()))
            raise DataError(f"corpus {self.cache.root} has no pieces in split {split!r} (it has "
                            f"{', '.join(present)}); pick one of those or add pieces")
        # Framed length: BOS + tokens + EOS.
        self._lengths = np.array([self.cache.pieces[i]["length"] + 2 for i in self.indices])
        self._cumulative = np.cumsum(self._lengths)
        default = max(1, int(self._cumulative[-1]) // self.window)
        self.epoch_size = int(epoch_size) if epoch_size else default

    def set_epoch(self, epoch: int) -> None:
        """Draw a different set of windows (call at the start of every epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.epoch_size

    def framed(self, k: int) -> np.ndarray:
        """Piece ``k`` of the split as int64 ``[length + 2]``: BOS, its tokens, EOS."""
        return np.concatenate([[BOS], self.cache.piece(int(self.indices[k])), [EOS]])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        k = int(np.searchsorted(self._cumulative, rng.integers(self._cumulative[-1]), "right"))
        need = self.window + 1
        start = int(rng.integers(0, max(int(self._lengths[k]) - need, 0) + 1))
        piece = self.framed(k)[start : start + need]
        tokens = np.full(need, PAD, np.int64)
        tokens[: len(piece)] = transpose_tokens(piece, self._shift(rng, piece))
        return {"tokens": torch.from_numpy(tokens),
                "piece": torch.tensor(int(self.indices[k]), dtype=torch.long)}

    def _shift(self, rng: np.random.Generator, tokens: np.ndarray) -> int:
        """A random shift in [-transpose, transpose] that keeps every note of ``tokens`` in
        MIDI 0-127 (the bound shrinks to what the window's range allows)."""
        if self.transpose == 0:
            return 0
        notes = tokens[(tokens >= NOTE_ON) & (tokens < TIME_SHIFT)] % 128
        if len(notes) == 0:
            return 0
        low = max(-self.transpose, -int(notes.min()))
        high = min(self.transpose, 127 - int(notes.max()))
        return int(rng.integers(low, high + 1))


def transpose_tokens(tokens: np.ndarray, shift: int) -> np.ndarray:
    """``tokens`` with every NOTE_ON / NOTE_OFF moved ``shift`` semitones (the caller keeps
    the pitches in 0-127); time shifts, velocities and specials are unchanged."""
    out = np.array(tokens, np.int64, copy=True)
    if shift:
        on = (out >= NOTE_ON) & (out < NOTE_OFF)
        off = (out >= NOTE_OFF) & (out < TIME_SHIFT)
        out[on | off] += shift
    return out
