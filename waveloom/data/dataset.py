"""Training examples from a prepared cache: random windows plus conditioning tensors.

Both datasets are map-style, so under DDP Lightning's DistributedSampler gives every rank its
own indices with no extra code. An item is a pure function of ``(seed, epoch, index)``: a
worker or a rank that is restarted reproduces it exactly, and :meth:`WindowDataset.set_epoch`
draws fresh windows each epoch. The trainer calls ``set_epoch`` at the start of every epoch
(Lightning itself only forwards the epoch to the sampler); with ``num_workers > 0`` this reaches
the workers when they are re-created each epoch, i.e. with ``persistent_workers=False``.

Piano rolls are rendered per window from the note tables that ``prepare`` stored in the cache
(see :mod:`waveloom.data.roll`), so no MIDI is parsed while training and any ``roll_hop`` works.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from waveloom.data.cache import AudioCache
from waveloom.errors import ConfigError, DataError
from waveloom.memory import check_allocation

#: Conditioning keys an item can carry besides 'audio'. 'example' (the cache index) and
#: 'start' (first sample of the window within the example; negative when left-padded) are for
#: inspection and tests.
CONDITION_KEYS = ("pitch", "instrument", "velocity", "family", "roll", "example", "start",
                  "total")

#: Bytes one served sample costs while a window is made: the int16 read, the float32 item and
#: its copy in the collated batch.
BYTES_PER_SAMPLE = 2 + 4 + 4

#: How many windows ``min_rms`` may reject before the loudest one seen is used anyway.
MAX_RMS_TRIES = 8


class WindowDataset(Dataset):
    """Random windows of one split, examples drawn with probability proportional to length.

    Item ``i`` is a dict: ``audio`` float32 ``[window + context]`` in [-1, 1]; for each of
    ``keys``: 'pitch', 'instrument', 'velocity', 'family' int64 scalars (-1 where unknown),
    'roll' float32 ``[128, (window + context) // roll_hop]`` (frame k covers samples
    ``[k*roll_hop, (k+1)*roll_hop)`` of the window; zeros for an example without a score).
    A window starts anywhere from ``-context`` (zeros before the example, as when sampling
    from silence) to the last full position; an example shorter than the window is zero-padded
    on the left so its end is real audio.

    ``context`` is the extra left context a model consumes before its first predicted sample
    (a WaveNet's receptive field). ``epoch_size`` is the number of items per epoch; by default
    the split's length in windows. ``onset_fraction`` of the windows are drawn so that their
    predicted part starts within the first ``window`` samples of the example (note attacks are
    otherwise rare, yet sampling always begins with one). ``min_rms`` > 0 redraws near-silent
    windows up to
    :data:`MAX_RMS_TRIES` times.
    """

    def __init__(
        self,
        cache: AudioCache | str | Path,
        split: str = "train",
        window: int = 8192,
        context: int = 0,
        keys: Sequence[str] = ("pitch", "instrument", "velocity"),
        roll_hop: int = 256,
        min_rms: float = 0.0,
        epoch_size: int | None = None,
        seed: int = 0,
        onset_fraction: float = 0.0,
        instrument_weights: dict[str, float] | None = None,
    ):
        self.cache = cache if isinstance(cache, AudioCache) else AudioCache(cache)
        if window <= 0 or context < 0 or roll_hop <= 0 or min_rms < 0:
            raise ConfigError(
                f"window={window}, context={context}, roll_hop={roll_hop}, min_rms={min_rms}: "
                "window and roll_hop must be > 0, context and min_rms >= 0"
            )
        unknown = [k for k in keys if k not in CONDITION_KEYS]
        if unknown:
            raise ConfigError(f"unknown conditioning key(s) {unknown}; valid: {CONDITION_KEYS}")
        self.split, self.window, self.context = split, int(window), int(context)
        self.length = self.window + self.context  # samples per served window
        check_allocation(self.length * BYTES_PER_SAMPLE,
                         f"one training window of {self.length:,} samples", "data.window")
        self.keys, self.roll_hop = tuple(keys), int(roll_hop)
        self.min_rms, self.seed, self.epoch = float(min_rms), int(seed), 0
        if not 0.0 <= onset_fraction <= 1.0:
            raise ConfigError(f"onset_fraction={onset_fraction} must be in [0, 1]")
        self.onset_fraction = float(onset_fraction)

        self.indices = self.cache.split_indices(split)
        if len(self.indices) == 0:
            present = sorted(set(self.cache.splits.tolist()))
            raise DataError(
                f"cache {self.cache.root} has no examples in split {split!r} (it has "
                f"{', '.join(present)}); pick one of those or re-run prepare"
            )
        if "roll" in self.keys and not self.cache.has_notes:
            raise DataError(
                f"cache {self.cache.root} has no MIDI notes, so 'roll' conditioning is "
                "unavailable; prepare a source with MIDI (MAESTRO, or x.mid beside x.wav)"
            )
        self._lengths = self.cache.lengths[self.indices]
        self._cumulative = np.cumsum(self._lengths)
        self._weighted = self._weighted_shares(instrument_weights or {})
        self._labels = {
            key: self.cache.columns[key][self.indices]
            for key in ("pitch", "instrument", "velocity", "family")
        }
        default_size = max(1, int(self._cumulative[-1]) // self.window)
        self.epoch_size = int(epoch_size) if epoch_size else default_size

    def _weighted_shares(self, weights: dict[str, float]) -> np.ndarray | None:
        """Cumulative draw shares (length x the instrument's weight), or None: by length."""
        if not weights:
            return None
        names = list(self.cache.info.get("instruments", []))
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ConfigError(f"data.instrument_weights: no instrument {', '.join(unknown)} in "
                              f"{self.cache.root}; it has {', '.join(names) or 'no names'}")
        per_id = np.ones(max(len(names), 1))
        for name, w in weights.items():
            per_id[names.index(name)] = w
        ids = self.cache.columns["instrument"][self.indices]
        factor = np.where(ids >= 0, per_id[np.clip(ids, 0, len(per_id) - 1)], 1.0)
        return np.cumsum(self._lengths * factor)

    def set_epoch(self, epoch: int) -> None:
        """Draw a different set of windows (call at the start of every epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.epoch_size

    # ---------------------------------------------------------------- drawing

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))

    def _pick(self, rng: np.random.Generator) -> int:
        """A random example (position in the split): by length, or by length x its
        instrument's weight (a separate path, so unweighted draws stay as they were)."""
        if self._weighted is None:
            return int(np.searchsorted(self._cumulative, rng.integers(self._cumulative[-1]),
                                       "right"))
        k = int(np.searchsorted(self._weighted, rng.random() * self._weighted[-1], "right"))
        return min(k, len(self._lengths) - 1)

    def _draw(self, rng: np.random.Generator, length: int) -> tuple[int, int]:
        """(position in the split, start sample) of a random window of ``length`` samples."""
        k = self._pick(rng)
        n = int(self._lengths[k])
        # The first predicted sample may be the example's first sample, its context then being
        # silence: that is exactly how sampling starts, so a model learns onsets from silence.
        lo, hi = -self.context, n - length
        if self.onset_fraction > 0 and rng.random() < self.onset_fraction:
            # An onset window: the predicted part starts within the example's first window,
            # so note attacks (rare among uniform windows of long notes) are seen often.
            hi = min(hi, lo + self.window - 1)
        start = int(rng.integers(lo, hi + 1)) if hi >= lo else hi
        return k, start

    def _window(self, rng: np.random.Generator, length: int) -> tuple[int, int, np.ndarray]:
        """Draw a window, redrawing near-silent ones when ``min_rms`` asks for it."""
        best = None
        for _ in range(MAX_RMS_TRIES if self.min_rms > 0 else 1):
            k, start = self._draw(rng, length)
            audio = self.cache.read(int(self.indices[k]), start, length)
            if self.min_rms <= 0:
                return k, start, audio
            rms = float(np.sqrt(np.dot(audio, audio) / length))
            if best is None or rms > best[0]:
                best = (rms, k, start, audio)
            if rms >= self.min_rms:
                break
        _, k, start, audio = best
        return k, start, audio

    def _scalar(self, key: str, k: int, start: int) -> torch.Tensor:
        """An int64 scalar conditioning value of split position ``k``."""
        if key == "example":
            return torch.tensor(int(self.indices[k]), dtype=torch.int64)
        if key == "start":
            return torch.tensor(start, dtype=torch.int64)
        if key == "total":  # the example's length in samples (timing conditioning)
            return torch.tensor(int(self.cache.lengths[self.indices[k]]), dtype=torch.int64)
        return torch.tensor(int(self._labels[key][k]), dtype=torch.int64)

    def _roll(self, k: int, start: int, length: int) -> torch.Tensor:
        """float32 ``[128, length // roll_hop]`` for samples ``[start, start + length)``."""
        frames = length // self.roll_hop
        return torch.from_numpy(self.cache.roll(int(self.indices[k]), start, frames, self.roll_hop))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        k, start, audio = self._window(self._rng(index), self.length)
        item = {"audio": torch.from_numpy(audio)}
        for key in self.keys:
            if key == "roll":
                item[key] = self._roll(k, start, self.length)
            else:
                item[key] = self._scalar(key, k, start)
        return item


class ChunkSequenceDataset(WindowDataset):
    """Consecutive chunks of one example, in order, for truncated backpropagation through time.

    Item ``i`` is one random segment of ``n_chunks * chunk + context`` samples cut into
    ``audio`` float32 ``[n_chunks, chunk + context]``: chunk ``j`` is samples
    ``[j*chunk, (j+1)*chunk + context)`` of the segment, so consecutive chunks overlap by
    ``context`` (SampleRNN's frame context) and chunk ``j+1`` continues exactly where the
    predicted part of chunk ``j`` ends. A batch is ``[B, n_chunks, chunk + context]``: step
    through dim 1 carrying the recurrent state, and reset it for the next batch. 'roll' is
    ``[n_chunks, 128, (chunk + context) // roll_hop]`` aligned to each chunk, and 'start' is
    ``[n_chunks]``, each chunk's first sample within its example; other scalar keys are as in
    :class:`WindowDataset`. A segment longer than its example is left-padded, so the
    first chunks are silence and the state starts from quiet, as at the start of a file.
    ``onset_fraction`` of the segments start exactly at their example's first sample (silent
    context, fresh state): where generation starts, and the only place a reset state is right.
    """

    def __init__(
        self,
        cache: AudioCache | str | Path,
        split: str = "train",
        chunk: int = 1024,
        n_chunks: int = 8,
        context: int = 0,
        keys: Sequence[str] = ("pitch", "instrument", "velocity"),
        roll_hop: int = 256,
        min_rms: float = 0.0,
        epoch_size: int | None = None,
        seed: int = 0,
        onset_fraction: float = 0.0,
        instrument_weights: dict[str, float] | None = None,
    ):
        if chunk <= 0 or n_chunks <= 0:
            raise ConfigError(f"chunk={chunk}, n_chunks={n_chunks}: both must be > 0")
        self.chunk, self.n_chunks = int(chunk), int(n_chunks)
        super().__init__(
            cache, split, chunk * n_chunks, context, keys, roll_hop, min_rms, epoch_size, seed,
            onset_fraction, instrument_weights,
        )

    def _draw(self, rng: np.random.Generator, length: int) -> tuple[int, int]:
        """As :meth:`WindowDataset._draw`, but an onset segment starts at the example's start."""
        k = self._pick(rng)
        lo, hi = -self.context, int(self._lengths[k]) - length
        if hi < lo or (self.onset_fraction > 0 and rng.random() < self.onset_fraction):
            return k, min(lo, hi)
        return k, int(rng.integers(lo, hi + 1))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        k, start, audio = self._window(self._rng(index), self.length)
        size = self.chunk + self.context
        steps = np.arange(self.n_chunks)[:, None] * self.chunk + np.arange(size)[None, :]
        item = {"audio": torch.from_numpy(audio[steps])}
        for key in self.keys:
            if key == "roll":
                chunks = [self._roll(k, start + j * self.chunk, size) for j in range(self.n_chunks)]
                item[key] = torch.stack(chunks)
            elif key == "start":  # each chunk's own first sample within the example
                item[key] = torch.arange(self.n_chunks, dtype=torch.int64) * self.chunk + start
            else:
                item[key] = self._scalar(key, k, start)
        return item
