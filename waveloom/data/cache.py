"""Read side of the cache written by :func:`waveloom.data.prepare.prepare`.

The audio and note arrays are memory-mapped lazily and dropped when pickled, so an
:class:`AudioCache` inside a Dataset can be sent to spawned DataLoader workers or DDP processes
without copying gigabytes: each process maps the same file and the OS shares the pages.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from waveloom.data.prepare import CACHE_VERSION, SCALE
from waveloom.data.roll import roll_window
from waveloom.errors import DataError

_INV_SCALE = np.float32(1.0 / SCALE)


#: Integer manifest fields kept as numpy columns (what training reads per item).
COLUMNS = (
    "offset",
    "length",
    "pitch",
    "velocity",
    "instrument",
    "family",
    "notes_offset",
    "notes_count",
)


class AudioCache:
    """A prepared data set: ``entries[i]`` describes example ``i``, ``audio`` holds the samples.

    Attributes: ``root``, ``info`` (cache.json), ``sample_rate`` (Hz), ``columns`` (int64
    ``[N]`` per name in :data:`COLUMNS`, -1 where unknown), ``offsets`` / ``lengths`` (samples),
    ``splits`` (str ``[N]``), ``audio`` (int16 memmap ``[total_samples]``), ``notes`` (int64
    memmap ``[n_notes, 5]``), ``entries`` (the manifest dicts).

    Training reads only the numpy columns: for NSynth's 300k notes the manifest dicts take
    hundreds of MB per process, so ``entries`` is parsed on first use and never pickled.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        fix = f"run `waveloom prepare SRC {self.root}`"
        info_path = self.root / "cache.json"
        if not info_path.is_file():
            raise DataError(f"{self.root}: no prepared cache here (cache.json missing); {fix}")
        try:
            self.info = json.loads(info_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            reason = str(err).splitlines()[0]
            raise DataError(f"{info_path}: cache is damaged ({reason}); {fix} again") from None
        if self.info.get("version") != CACHE_VERSION:
            raise DataError(
                f"{self.root}: cache format version {self.info.get('version')} is not "
                f"{CACHE_VERSION}; {fix} again"
            )
        self.sample_rate = int(self.info["sample_rate"])
        entries = self._read_manifest()
        self.columns = {
            name: np.array([int(e.get(name, -1)) for e in entries], dtype=np.int64)
            for name in COLUMNS
        }
        self.splits = np.array([str(e["split"]) for e in entries])
        self.offsets, self.lengths = self.columns["offset"], self.columns["length"]
        self._entries: list[dict] | None = None
        self._audio: np.ndarray | None = None
        self._notes: np.ndarray | None = None
        total = int(self.info["total_samples"])
        if len(entries) != int(self.info["n_examples"]) or self.audio.shape != (total,):
            raise DataError(f"{self.root}: cache is incomplete (sizes disagree); {fix} again")

    def _read_manifest(self) -> list[dict]:
        path = self.root / "manifest.jsonl"
        try:
            with open(path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            reason = str(err).splitlines()[0]
            fix = f"run `waveloom prepare SRC {self.root}` again"
            raise DataError(f"{path}: cache is damaged ({reason}); {fix}") from None

    @property
    def entries(self) -> list[dict]:
        """The manifest, one dict per example (parsed on first use, then kept)."""
        if self._entries is None:
            self._entries = self._read_manifest()
        return self._entries

    # ---------------------------------------------------------------- memory maps

    def _open(self, name: str) -> np.ndarray:
        path = self.root / name
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            reason = str(err).splitlines()[0]
            fix = f"run `waveloom prepare SRC {self.root}` again"
            raise DataError(f"{path}: cannot map the cache array ({reason}); {fix}") from None

    @property
    def audio(self) -> np.ndarray:
        """int16 memmap ``[total_samples]`` of every example back to back."""
        if self._audio is None:
            self._audio = self._open("audio.npy")
        return self._audio

    @property
    def notes(self) -> np.ndarray:
        """int64 memmap ``[n_notes, 5]``, the note tables of all examples back to back."""
        if self._notes is None:
            self._notes = self._open("notes.npy")
        return self._notes

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # Re-mapped / re-read in the receiving process on first use.
        state["_audio"] = state["_notes"] = state["_entries"] = None
        return state

    # ---------------------------------------------------------------- queries

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def has_notes(self) -> bool:
        return int(self.info.get("n_notes", 0)) > 0

    def split_indices(self, name: str) -> np.ndarray:
        """Indices (int64 ``[n]``, ascending) of the examples in split ``name``."""
        return np.flatnonzero(self.splits == name).astype(np.int64)

    def read_raw(self, i: int) -> np.ndarray:
        """Example ``i`` as stored: int16 ``[length]`` (in a code cache, ``code + 1``)."""
        start = int(self.offsets[i])
        return np.asarray(self.audio[start : start + int(self.lengths[i])])

    def clip(self, i: int) -> np.ndarray:
        """The whole example ``i`` as float32 ``[length]`` in [-1, 1]."""
        return self.read(i, 0, int(self.lengths[i]))

    def read(self, i: int, start: int, length: int, out: np.ndarray | None = None) -> np.ndarray:
        """Samples ``[start, start + length)`` of example ``i`` as float32 ``[length]``.

        Positions outside the example (``start`` < 0, or past its end) read as zeros, which is
        how a clip shorter than a training window gets left-padded.
        """
        buf = np.zeros(length, np.float32) if out is None else out
        lo, hi = max(start, 0), min(start + length, int(self.lengths[i]))
        a, b = lo - start, max(hi - start, lo - start)
        if out is not None:
            buf[:a] = 0.0
            buf[b:] = 0.0
        if b > a:
            base = int(self.offsets[i])
            np.multiply(self.audio[base + lo : base + hi], _INV_SCALE, out=buf[a:b])
        return buf

    def note_table(self, i: int) -> np.ndarray:
        """The note table of example ``i`` (int64 ``[n, 5]``, empty without a score)."""
        lo, count = int(self.columns["notes_offset"][i]), int(self.columns["notes_count"][i])
        return self.notes[lo : lo + max(count, 0)]

    def roll(self, i: int, start: int, n_frames: int, hop: int) -> np.ndarray:
        """Piano roll float32 ``[128, n_frames]`` of example ``i`` from sample ``start`` on."""
        return roll_window(self.note_table(i), start, n_frames, hop)

    def check_sample_rate(self, expected: int) -> None:
        """Raise DataError when the cache was built at another rate than a model expects."""
        if int(expected) != self.sample_rate:
            raise DataError(
                f"cache {self.root} was built at {self.sample_rate} Hz but the model expects "
                f"{int(expected)} Hz; re-run prepare with --sr {int(expected)}"
            )

    def __repr__(self) -> str:
        return f"AudioCache({str(self.root)!r}, {len(self)} examples, {self.sample_rate} Hz)"
