"""The NSynth layout: ``examples.json`` keyed by note_str, audio in ``audio/<note_str>.wav``.

Two arrangements are accepted:

* one folder, ``SRC/examples.json`` + ``SRC/audio/`` (our renderer writes this; each example
  may carry a ``"split"`` key, which is honoured);
* the official release, ``SRC/nsynth-{train,valid,test}/`` each holding the above; the split is
  the folder's. ``SRC`` may also be one such folder itself (``.../nsynth-valid``).

Per-example fields used: pitch, velocity, instrument_str, instrument_family_str (or the integer
instrument_family when the string is absent). Everything else (qualities, sources) is ignored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from waveloom.data.sources import NSYNTH_FAMILIES, SourceItem, normalize_split
from waveloom.errors import DataError

_SPLIT_DIR = re.compile(r"^nsynth-(train|valid|test)$")


def _split_dirs(src: Path) -> list[tuple[Path, str | None]]:
    """(folder holding examples.json, split implied by the folder name or None)."""
    match = _SPLIT_DIR.match(src.name)
    if (src / "examples.json").is_file():
        return [(src, match.group(1) if match else None)]
    found = []
    for child in sorted(src.iterdir()) if src.is_dir() else []:
        match = _SPLIT_DIR.match(child.name)
        if match and (child / "examples.json").is_file():
            found.append((child, match.group(1)))
    return found


def looks_like(src: Path) -> bool:
    return bool(_split_dirs(src))


def _int_or_none(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _family(meta: dict) -> str | None:
    family = meta.get("instrument_family_str")
    if isinstance(family, str) and family:
        return family
    index = _int_or_none(meta.get("instrument_family"))
    if index is not None and 0 <= index < len(NSYNTH_FAMILIES):
        return NSYNTH_FAMILIES[index]
    return None


def _read_examples(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        reason = str(err).splitlines()[0]
        raise DataError(f"{path}: not a readable NSynth examples.json ({reason})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object keyed by note_str")
    return data


def list_items(src: Path) -> list[SourceItem]:
    """Examples of every split folder found, sorted by note_str within each folder."""
    src = Path(src)
    folders = _split_dirs(src)
    if not folders:
        raise DataError(
            f"{src}: no examples.json here or in nsynth-{{train,valid,test}}/; "
            "give the NSynth folder (or use --format folder)"
        )
    items = []
    for folder, folder_split in folders:
        index = folder / "examples.json"
        examples = _read_examples(index)
        for note_str in sorted(examples):
            meta = examples[note_str]
            if not isinstance(meta, dict):
                raise DataError(f"{index} [{note_str}]: expected an object with pitch, velocity")
            split = folder_split or normalize_split(meta.get("split"), f"{index} [{note_str}]")
            instrument = meta.get("instrument_str")
            items.append(
                SourceItem(
                    path=folder / "audio" / f"{note_str}.wav",
                    name=note_str,
                    pitch=_int_or_none(meta.get("pitch")),
                    velocity=_int_or_none(meta.get("velocity")),
                    instrument_str=str(instrument) if instrument else None,
                    family_str=_family(meta),
                    split=split,
                )
            )
    return items
