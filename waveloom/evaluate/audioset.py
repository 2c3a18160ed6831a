"""Sets of clips to evaluate: a folder of audio files, an NSynth-layout folder or a cache split.

Every metric of ``waveloom evaluate`` reads its audio through :class:`AudioSet`, so any set of
generated files can be scored against any reference, whatever wrote them. A set is a list of
named clips, read lazily and resampled to one sample rate, with per-clip labels:

* ``pitch`` (MIDI), ``velocity``, ``instrument`` (e.g. ``keyboard_synthetic_000``) and ``family``
  (an NSynth family name), each ``None`` when unknown.

Labels come from, in order of precedence:

1. a cache's manifest, or an NSynth ``examples.json`` (what ``render-notes`` writes);
2. a sidecar JSON (``--labels FILE``, default ``DIR/labels.json`` when present) keyed by the
   clip name (file path relative to the folder, without extension, e.g. ``sample-0``)::

       {"sample-0": {"pitch": 60, "family": "keyboard", "instrument": "...", "velocity": 100}}

   (NSynth's field names ``instrument_str`` / ``instrument_family_str`` are accepted too);
3. the file names, when a pattern is given: ``nsynth`` matches NSynth note names
   (``keyboard_acoustic_004-060-100``), ``k`` a MIDI pitch suffix (``flute_k060.wav``), any
   other value is a regular expression with named groups among ``pitch``, ``velocity``,
   ``instrument``, ``family`` (e.g. ``p(?P<pitch>\\d+)``).

Each set has a ``fingerprint`` (a hash of what it contains: file names, sizes and modification
times, or the cache's identity and indices, plus the sample rate) that keys cached statistics.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from waveloom.errors import ConfigError, DataError

#: Regular expression of NSynth note names: ``<family>_<source>_<index>-<pitch>-<velocity>``.
NSYNTH_PATTERN = (
    r"(?P<instrument>(?P<family>[a-z_]+?)_(?:acoustic|electronic|synthetic)_\d+)"
    r"-(?P<pitch>\d{3})-(?P<velocity>\d{3})"
)
#: Named ``--labels-from-names`` patterns; ``k`` reads the MIDI pitch from ``..._k060.wav``.
NAME_PATTERNS = {"nsynth": NSYNTH_PATTERN, "k": r"_k(?P<pitch>\d{1,3})(?:\.\w+)?$"}
SIDECAR = "labels.json"
LABEL_KEYS = ("pitch", "velocity", "instrument", "family")
_ALIASES = {
    "pitch": ("pitch", "midi"),
    "velocity": ("velocity",),
    "instrument": ("instrument_str", "instrument"),
    "family": ("family_str", "instrument_family_str", "family"),
}
_INT_KEYS = ("pitch", "velocity")


@dataclass
class AudioSet:
    """Named clips at one sample rate, read on demand.

    Attributes:
        description: where the clips come from (for reports).
        sample_rate: Hz of every clip returned by :meth:`clip`.
        names: unique clip names (``[N]``), used to pair reconstructions with references.
        labels: per clip, a dict with :data:`LABEL_KEYS` (``None`` where unknown).
        fingerprint: hex digest identifying the contents (keys cached statistics).
    """

    description: str
    sample_rate: int
    names: list[str]
    labels: list[dict[str, Any]]
    fingerprint: str
    reader: Callable[[int], np.ndarray] = field(repr=False)

    def __len__(self) -> int:
        return len(self.names)

    def clip(self, i: int) -> np.ndarray:
        """Clip ``i`` as float32 ``[T]`` in [-1, 1] at :attr:`sample_rate`."""
        return self.reader(i)

    def clips(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.reader(i)

    def label_values(self, key: str) -> list[Any]:
        return [lab.get(key) for lab in self.labels]

    def require_labels(self, key: str, metric: str) -> list[Any]:
        """The ``key`` label of every clip, or a DataError saying how to provide them."""
        values = self.label_values(key)
        missing = [n for n, v in zip(self.names, values) if v is None]
        if missing:
            raise DataError(
                f"{self.description}: {len(missing)} clip(s) have no {key} label "
                f"(e.g. {missing[0]!r}), which {metric} needs; add a {SIDECAR} sidecar "
                "(--labels) or --labels-from-names nsynth|REGEX"
            )
        return values


def _normalise_label(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Any accepted spelling of a label -> :data:`LABEL_KEYS` (negative ids mean unknown)."""
    from waveloom.data.sources import NSYNTH_FAMILIES

    out: dict[str, Any] = {}
    for key, aliases in _ALIASES.items():
        value = next((raw[a] for a in aliases if raw.get(a) is not None), None)
        if value is not None and key in _INT_KEYS:
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise DataError(f"{where}: {key} must be an integer, got {value!r}") from None
            value = value if value >= 0 else None
        elif key == "family" and isinstance(value, int) and not isinstance(value, bool):
            value = NSYNTH_FAMILIES[value] if 0 <= value < len(NSYNTH_FAMILIES) else None
        elif value is not None:
            value = str(value)
        out[key] = value
    return out


def _read_sidecar(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        reason = str(err).splitlines()[0]
        raise DataError(f"{path}: not a readable labels JSON ({reason})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError(f'{path}: expected {{"clip name": {{"pitch": 60, ...}}, ...}}')
    return {str(k): _normalise_label(v, f"{path} [{k}]") for k, v in data.items()}


def _compile_pattern(pattern: str | None) -> re.Pattern | None:
    if pattern is None:
        return None
    text = NAME_PATTERNS.get(pattern, pattern)
    try:
        compiled = re.compile(text)
    except re.error as err:
        raise ConfigError(f"--labels-from-names {pattern!r}: not a regular expression ({err})"
                          ) from None
    if not set(compiled.groupindex) & set(LABEL_KEYS):
        raise ConfigError(f"--labels-from-names {pattern!r}: name at least one group among "
                          f"{', '.join(LABEL_KEYS)}, e.g. p(?P<pitch>\\d+)")
    return compiled


def _labels_from_name(name: str, pattern: re.Pattern) -> dict[str, Any]:
    match = pattern.search(Path(name).name)
    if not match:
        return {}
    found = {k: v for k, v in match.groupdict().items() if k in LABEL_KEYS and v is not None}
    return _normalise_label(found, name)


def _subset(n: int, max_clips: int | None, seed: int) -> list[int]:
    """All indices, or a seeded random subset of ``max_clips`` of them in ascending order."""
    if max_clips is None or max_clips >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n, size=max_clips, replace=False).tolist())


def _splits(split: str) -> set[str]:
    """'valid,test' -> {'valid', 'test'}: several splits can be evaluated as one set."""
    return {part.strip() for part in split.split(",") if part.strip()}


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def load_set(
    spec: str | Path,
    *,
    sample_rate: int = 16000,
    split: str | None = None,
    labels: str | Path | None = None,
    name_pattern: str | None = None,
    max_clips: int | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
) -> AudioSet:
    """Open ``spec`` (a cache folder, an NSynth-layout folder or any folder of audio files).

    Args:
        sample_rate: every clip is resampled to this rate (Hz).
        split: keep only this split, or several joined by commas (caches and NSynth layouts
            carry splits); None keeps all.
        labels: a sidecar JSON of labels (default: ``spec/labels.json`` if present).
        name_pattern: ``'nsynth'`` or a regex with named groups, to read labels from names.
        max_clips: evaluate a seeded random subset of at most this many clips.
        max_seconds: keep only the first this many seconds of every clip, so sets whose clips
            differ in length (one-second GAN notes against four-second real notes) are judged
            on the same stretch of the note.
    """
    path = Path(spec)
    if (path / "cache.json").is_file():
        audio_set = _from_cache(path, sample_rate, split, max_clips, seed)
    elif path.is_dir():
        audio_set = _from_folder(path, sample_rate, split, max_clips, seed)
    elif path.exists():
        raise DataError(f"{path}: give a folder of audio files or a prepared cache folder")
    else:
        raise DataError(f"{path}: no such folder")
    sidecar = Path(labels) if labels is not None else path / SIDECAR
    if labels is not None or sidecar.is_file():
        table = _read_sidecar(sidecar)
        for name, lab in zip(audio_set.names, audio_set.labels):
            extra = table.get(name) or table.get(Path(name).name)
            if extra:
                lab.update({k: v for k, v in extra.items() if v is not None})
    pattern = _compile_pattern(name_pattern)
    if pattern is not None:
        for name, lab in zip(audio_set.names, audio_set.labels):
            for key, value in _labels_from_name(name, pattern).items():
                if lab.get(key) is None:
                    lab[key] = value
    if len(audio_set) == 0:
        where = f" in split {split!r}" if split else ""
        raise DataError(f"{path}: no audio clips{where}; check the folder and --split")
    if max_seconds is not None:
        if max_seconds <= 0:
            raise ConfigError(f"--clip-seconds {max_seconds}: must be > 0")
        keep, read = int(round(max_seconds * sample_rate)), audio_set.reader
        audio_set.reader = lambda k: read(k)[:keep]
        audio_set.fingerprint = _digest(audio_set.fingerprint, f"first {keep}")
        audio_set.description += f" (first {max_seconds:g} s)"
    return audio_set


def _from_cache(root: Path, sample_rate: int, split: str | None, max_clips: int | None,
                seed: int) -> AudioSet:
    from waveloom.audio.io import resample
    from waveloom.data.cache import AudioCache

    cache = AudioCache(root)
    if split:
        pool = sorted(int(i) for name in _splits(split) for i in cache.split_indices(name))
    else:
        pool = list(range(len(cache)))
    indices = [int(pool[i]) for i in _subset(len(pool), max_clips, seed)]
    entries = cache.entries
    names = [str(entries[i].get("name", i)) for i in indices]
    labels = [_normalise_label(entries[i], f"{root} [{names[k]}]")
              for k, i in enumerate(indices)]
    info_hash = hashlib.sha256((root / "cache.json").read_bytes()).hexdigest()
    fingerprint = _digest("cache", str(root.resolve()), info_hash, str(split), str(sample_rate),
                          ",".join(map(str, indices)))

    def read(k: int) -> np.ndarray:
        clip = cache.clip(indices[k])
        return resample(clip, cache.sample_rate, sample_rate)

    desc = f"{root}" + (f" [{split}]" if split else "")
    return AudioSet(desc, sample_rate, names, labels, fingerprint, read)


def _from_folder(root: Path, sample_rate: int, split: str | None, max_clips: int | None,
                 seed: int) -> AudioSet:
    from waveloom.audio.io import load_audio
    from waveloom.data.sources import list_items

    fmt, items = list_items(root)
    if split is not None:
        if fmt != "nsynth":
            raise ConfigError(f"{root}: a plain folder has no splits; drop the split option")
        wanted = _splits(split)
        items = [it for it in items if it.split in wanted]
    items = [items[i] for i in _subset(len(items), max_clips, seed)]
    missing = [it.path for it in items if not it.path.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: listed in {root} but missing ({len(missing)} in all)")
    names = [it.name for it in items]
    labels = [
        {"pitch": it.pitch, "velocity": it.velocity, "instrument": it.instrument_str,
         "family": it.family_str}
        for it in items
    ]
    stats = []
    for it in items:
        st = it.path.stat()
        stats.append(f"{it.path.relative_to(root).as_posix()}:{st.st_size}:{st.st_mtime_ns}")
    fingerprint = _digest("folder", str(root.resolve()), str(split), str(sample_rate), *stats)
    paths = [it.path for it in items]

    def read(k: int) -> np.ndarray:
        return load_audio(paths[k], sample_rate)[0]

    desc = f"{root}" + (f" [{split}]" if split else "")
    return AudioSet(desc, sample_rate, names, labels, fingerprint, read)


def write_sidecar(folder: str | Path, labels: dict[str, dict[str, Any]]) -> Path:
    """Write ``labels`` (clip name -> label dict) as ``folder/labels.json``; return its path."""
    path = Path(folder) / SIDECAR
    clean = {name: {k: v for k, v in lab.items() if k in LABEL_KEYS and v is not None}
             for name, lab in labels.items()}
    path.write_text(json.dumps(clean, indent=1, sort_keys=True) + "\n")
    return path
