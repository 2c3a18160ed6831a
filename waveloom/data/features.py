"""Per-frame features of a cache (f0, voicing confidence, A-weighted loudness), computed once.

DDSP trains on ``audio`` together with its ``f0_hz`` and ``loudness_db`` curves. Tracking f0
(CREPE) costs far more than a training step, so the curves of every example are computed once
per (cache, f0 method, frame rate) and stored beside the cache::

    CACHE/features/<cache hash>-<method>-<frame rate>hz/
        f0_hz.npy  confidence.npy  loudness_db.npy   float32 [total frames]
        offsets.npy                                    int64 [N + 1]: example i's frames

Example ``i`` of ``L`` samples has ``F = ceil(L / hop)`` frames (its audio zero-padded to
``F * hop``), frame ``j`` centred on sample ``j * hop``, as the synthesiser reads them. The
cache hash covers ``cache.json`` and the manifest, so a re-prepared cache gets new features.
The folder is written under a temporary name and renamed, so a killed run or two processes
computing at once never leave a half-written set.

:class:`FrameWindowDataset` cuts frame-aligned windows (a start on a frame boundary, ``window``
a whole number of frames) and serves ``f0_hz`` / ``loudness_db`` ``[F]`` beside ``audio``
``[F * hop]``; past an example's end the audio is silence, f0 holds and loudness is the floor.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from waveloom.data.cache import AudioCache
from waveloom.data.dataset import WindowDataset
from waveloom.errors import ConfigError

#: Batch keys this module serves (a model's ``batch_keys`` may name them).
FEATURE_KEYS = ("f0_hz", "f0_confidence", "loudness_db")
ARRAYS = ("f0_hz", "confidence", "loudness_db", "offsets")
FLOOR_DB = -100.0  # waveloom.audio.loudness.FLOOR_DB


@dataclass(frozen=True)
class FeatureSpec:
    """What a model's batches need: ``frame_rate`` (Hz), ``hop`` (samples) and the f0 method
    (:data:`waveloom.audio.f0.METHODS`)."""

    frame_rate: int
    hop: int
    f0_method: str = "crepe-tiny"


def cache_hash(cache: AudioCache) -> str:
    """12 hex digits of SHA-1 over ``cache.json`` and ``manifest.jsonl``."""
    digest = hashlib.sha1()
    for name in ("cache.json", "manifest.jsonl"):
        with open(cache.root / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def features_dir(cache: AudioCache, spec: FeatureSpec) -> Path:
    return cache.root / "features" / f"{cache_hash(cache)}-{spec.f0_method}-{spec.frame_rate}hz"


def _padded(audio: np.ndarray, hop: int) -> np.ndarray:
    """``audio`` zero-padded to whole frames, ``ceil(T / hop) * hop`` samples (float32)."""
    padded = np.zeros(math.ceil(len(audio) / hop) * hop, np.float32)
    padded[: len(audio)] = audio
    return padded


def example_f0(audio: np.ndarray, sample_rate: int, spec: FeatureSpec
               ) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz, confidence), each float32 ``[ceil(T / hop)]``, of mono ``audio``: the cache's
    f0 curves, for a caller that needs no loudness (a translator tracking its input)."""
    from waveloom.audio.f0 import track_f0

    padded = _padded(audio, spec.hop)
    frames = len(padded) // spec.hop
    f0, conf = track_f0(padded, sample_rate, spec.frame_rate, spec.f0_method)
    return f0[:frames], conf[:frames]


def example_features(audio: np.ndarray, sample_rate: int, spec: FeatureSpec
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f0 Hz, confidence, loudness dB), each float32 ``[ceil(T / hop)]``, of mono ``audio``."""
    from waveloom.audio.loudness import a_weighted_loudness

    f0, conf = example_f0(audio, sample_rate, spec)
    loud = a_weighted_loudness(torch.from_numpy(_padded(audio, spec.hop))[None], sample_rate,
                               spec.hop)[0]
    return f0, conf, loud.numpy().astype(np.float32)


def _compute(cache: AudioCache, spec: FeatureSpec, out: Path, progress: bool | None) -> None:
    from tqdm.auto import tqdm

    parts: dict[str, list[np.ndarray]] = {"f0_hz": [], "confidence": [], "loudness_db": []}
    offsets = [0]
    bar = tqdm(range(len(cache)), desc=f"features ({spec.f0_method})", unit="example",
               disable=None if progress is None else not progress)
    for i in bar:
        for name, arr in zip(parts, example_features(cache.clip(i), cache.sample_rate, spec)):
            parts[name].append(arr)
        offsets.append(offsets[-1] + len(parts["f0_hz"][-1]))
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for name, chunks in parts.items():
        np.save(tmp / f"{name}.npy", np.concatenate(chunks) if chunks else np.zeros(0, np.float32))
    np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    try:
        tmp.rename(out)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)


class CacheFeatures:
    """The stored features of one cache (computed on first use; see the module docstring)."""

    def __init__(self, cache: AudioCache, spec: FeatureSpec, progress: bool | None = None):
        if cache.sample_rate % spec.frame_rate or cache.sample_rate // spec.frame_rate != spec.hop:
            raise ConfigError(f"frame rate {spec.frame_rate} Hz with hop {spec.hop} does not fit "
                              f"the cache's {cache.sample_rate} Hz; set model.sample_rate to it")
        self.spec, self.root = spec, features_dir(cache, spec)
        if not all((self.root / f"{name}.npy").is_file() for name in ARRAYS):
            _compute(cache, spec, self.root, progress)
        self._arrays: dict[str, np.ndarray] | None = None

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays, memory-mapped on first use (in each process)."""
        if self._arrays is None:
            self._arrays = {name: np.load(self.root / f"{name}.npy", mmap_mode="r")
                            for name in ARRAYS}
        return self._arrays

    def __getstate__(self) -> dict:
        # DataLoader workers and DDP processes map the files again instead of copying them.
        return {**self.__dict__, "_arrays": None}

    def window(self, i: int, frame0: int, frames: int) -> dict[str, np.ndarray]:
        """Example ``i``'s curves from frame ``frame0``, float32 ``[frames]`` each, by batch
        key: ``f0_hz``, ``f0_confidence`` and ``loudness_db``. Past the example's end f0
        holds its last value, the confidence is 0 and the loudness the floor."""
        lo, hi = int(self.arrays["offsets"][i]), int(self.arrays["offsets"][i + 1])
        span = slice(lo + frame0, min(lo + frame0 + frames, hi))
        # a window is padded only where it runs past the example, so the f0 it holds is always
        # the example's last frame's
        hold = self.arrays["f0_hz"][hi - 1] if hi > lo else 0.0
        out = {}
        for key, name, fill in (("f0_hz", "f0_hz", hold), ("f0_confidence", "confidence", 0.0),
                                ("loudness_db", "loudness_db", FLOOR_DB)):
            part = np.asarray(self.arrays[name][span], dtype=np.float32)
            out[key] = np.concatenate([part, np.full(frames - len(part), fill, np.float32)])
        return out


class FrameWindowDataset(WindowDataset):
    """Frame-aligned random windows with their ``f0_hz``, ``f0_confidence`` and
    ``loudness_db`` curves.

    As :class:`~waveloom.data.dataset.WindowDataset` (same draws, seeded by ``(seed, epoch,
    index)``), with the start rounded down to a frame boundary and never before the example
    (a short example is padded at its end instead). ``keys`` may name :data:`FEATURE_KEYS`
    besides the dataset's own conditioning keys. A model without context (DDSP) synthesises
    whole frames, so its window must be a multiple of the hop; a model with context (an
    autoregressive decoder) gets ``ceil((window + context) / hop)`` frames, frame 0 at the
    served audio's first sample.
    """

    def __init__(self, cache: AudioCache | str | Path, spec: FeatureSpec, split: str = "train",
                 window: int = 8192, context: int = 0, keys: Sequence[str] = FEATURE_KEYS,
                 progress: bool | None = None, **kwargs):
        if window % spec.hop and not context:
            raise ConfigError(f"data.window={window} must be a whole number of frames (a "
                              f"multiple of hop {spec.hop}): the model synthesises frames")
        self.spec = spec
        self.feature_keys = tuple(k for k in keys if k in FEATURE_KEYS)
        super().__init__(cache, split, window, context,
                         [k for k in keys if k not in FEATURE_KEYS],
                         **kwargs)
        self.features = CacheFeatures(self.cache, spec, progress)

    def _draw(self, rng: np.random.Generator, length: int) -> tuple[int, int]:
        k, start = super()._draw(rng, length)
        return k, max(start, 0) // self.spec.hop * self.spec.hop

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        k, start, audio = self._window(self._rng(index), self.length)
        item = {"audio": torch.from_numpy(audio)}
        curves = self.features.window(int(self.indices[k]), start // self.spec.hop,
                                      -(-self.length // self.spec.hop))
        for key in self.feature_keys:
            item[key] = torch.from_numpy(curves[key])
        for key in self.keys:
            item[key] = (self._roll(k, start, self.length) if key == "roll"
                         else self._scalar(key, k, start))
        return item
