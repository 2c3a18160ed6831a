"""A plain folder: every audio file below it, recursively, in sorted order.

Nothing is known about pitch or instrument; the split comes from a hash of the name. A MIDI file
with the same stem beside an audio file (``take1.wav`` + ``take1.mid``) is taken as its aligned
score, so a folder of rendered pieces can train a roll-conditioned model without a manifest.
"""

from __future__ import annotations

from pathlib import Path

from waveloom.audio.io import AUDIO_EXTENSIONS
from waveloom.data.sources import SourceItem

_MIDI_EXTENSIONS = (".mid", ".midi")


def looks_like(src: Path) -> bool:
    """Any folder qualifies; ``auto`` falls back to this layout."""
    return src.is_dir()


def _midi_beside(path: Path) -> Path | None:
    for ext in _MIDI_EXTENSIONS + tuple(e.upper() for e in _MIDI_EXTENSIONS):
        candidate = path.with_suffix(ext)
        if candidate.is_file():
            return candidate
    return None


def list_items(src: Path) -> list[SourceItem]:
    """Audio files below ``src`` (hidden folders skipped), named by their relative path."""
    src = Path(src)
    paths = sorted(
        p
        for p in src.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(src).parts)
    )
    items = []
    for path in paths:
        # The name drops the extension ('drums/kick' not 'drums/kick.wav'); the rare clash of
        # 'a.wav' with 'a.flac' keeps the extension so names stay unique.
        items.append(
            SourceItem(
                path=path,
                name=path.relative_to(src).with_suffix("").as_posix(),
                midi=_midi_beside(path),
            )
        )
    seen: dict[str, int] = {}
    for item in items:
        seen[item.name] = seen.get(item.name, 0) + 1
    for item in items:
        if seen[item.name] > 1:
            item.name = item.path.relative_to(src).as_posix()
    return items
