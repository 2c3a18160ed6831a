"""Where examples come from: a folder of audio, the NSynth layout, or the MAESTRO layout.

A source only *lists* examples (:class:`SourceItem`: a path plus what the source knows about
it); decoding happens once, in :mod:`waveloom.data.prepare`. Keeping listing apart from decoding
is what lets ``prepare`` skip a bad file and go on, and lets tests check a layout without audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from waveloom.errors import DataError

#: NSynth's 11 instrument families, in NSynth's own id order (the index is the family id).
NSYNTH_FAMILIES = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
)

#: Source layouts ``prepare`` understands (``auto`` picks one of them by the files present).
FORMATS = ("folder", "nsynth", "maestro", "domains")

#: The canonical split names; sources map their own spellings onto these.
SPLITS = ("train", "valid", "test")

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "dev": "valid",
    "test": "test",
    "testing": "test",
}


@dataclass(slots=True)
class SourceItem:
    """One example as a source lists it; ``None`` means the source does not know.

    ``name`` is unique within the source and stable across runs (it seeds the hash split).
    ``midi`` is the aligned MIDI file (MAESTRO, or ``x.mid`` beside ``x.wav`` in a folder).
    """

    path: Path
    name: str
    pitch: int | None = None  # MIDI note number 0-127
    velocity: int | None = None  # MIDI velocity 0-127
    instrument_str: str | None = None
    family_str: str | None = None  # one of NSYNTH_FAMILIES when known
    split: str | None = None  # one of SPLITS, or None to split by a hash of the name
    midi: Path | None = None


def normalize_split(value: object, where: str) -> str | None:
    """Map a source's split spelling ('validation', 'Train', ...) to one of :data:`SPLITS`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    split = _SPLIT_ALIASES.get(str(value).strip().lower())
    if split is None:
        raise DataError(f"{where}: unknown split {value!r}; use one of {', '.join(SPLITS)}")
    return split


def detect_format(src: str | Path) -> str:
    """Pick the layout of ``src`` by the files present: NSynth, MAESTRO, else a plain folder."""
    from waveloom.data.sources import maestro, nsynth

    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src}: no such folder; give the folder that holds the audio")
    if nsynth.looks_like(src):
        return "nsynth"
    if maestro.looks_like(src):
        return "maestro"
    return "folder"


def list_items(src: str | Path, format: str = "auto") -> tuple[str, list[SourceItem]]:
    """List the examples of ``src`` in a stable order; returns ``(format used, items)``."""
    from waveloom.data.sources import domains, folder, maestro, nsynth

    src = Path(src)
    if format == "auto":
        format = detect_format(src)
    listers = {
        "folder": folder.list_items,
        "nsynth": nsynth.list_items,
        "maestro": maestro.list_items,
        "domains": domains.list_items,
    }
    if format not in listers:
        raise DataError(f"unknown source format {format!r}; use auto, {', '.join(FORMATS)}")
    if not src.is_dir():
        raise DataError(f"{src}: no such folder; give the folder that holds the audio")
    return format, listers[format](src)


def expectation(format: str) -> str:
    """What a usable source of ``format`` looks like, for one-line error messages."""
    from waveloom.audio.io import AUDIO_EXTENSIONS

    return {
        "folder": f"audio files ({', '.join(AUDIO_EXTENSIONS)}) anywhere below it",
        "nsynth": "examples.json + audio/<note_str>.wav (or nsynth-{train,valid,test}/ folders)",
        "maestro": "maestro-v*.csv (or .json) + the audio and MIDI files it names",
        "domains": "one subfolder per domain (instrument), audio files below each",
    }.get(format, "audio files")
