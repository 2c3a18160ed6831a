"""The MAESTRO layout (v1-v3): ``maestro-v*.csv`` or ``.json`` naming audio + MIDI pairs.

Columns used: ``audio_filename`` and ``midi_filename`` (paths relative to SRC) and ``split``
('train' | 'validation' | 'test', mapped to train/valid/test). canonical_composer,
canonical_title, year and duration are read by nothing downstream. The JSON of v2/v3 is
column-oriented (``{"split": {"0": "train", ...}, ...}``); the v1 JSON (a list of records) is
accepted too. MAESTRO is solo piano, so examples default to instrument 'piano', family
'keyboard'; optional ``instrument_str`` / ``family_str`` columns (our chorale renderer may write
them) override that.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from waveloom.data.sources import SourceItem, normalize_split
from waveloom.errors import DataError

_REQUIRED = ("audio_filename", "midi_filename", "split")


def metadata_file(src: Path) -> Path | None:
    """The newest ``maestro*.csv`` (preferred) or ``maestro*.json`` in ``src``, if any."""
    for pattern in ("maestro*.csv", "maestro*.json"):
        found = sorted(p for p in Path(src).glob(pattern) if p.is_file())
        if found:
            return found[-1]  # maestro-v3.0.0 sorts after maestro-v2.0.0
    return None


def looks_like(src: Path) -> bool:
    return metadata_file(src) is not None


def _rows_from_json(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        reason = str(err).splitlines()[0]
        raise DataError(f"{path}: not a readable MAESTRO json ({reason})") from None
    if isinstance(data, list):  # v1: a list of records
        return [row for row in data if isinstance(row, dict)]
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError(f"{path}: expected column-oriented JSON {{column: {{row: value}}}}")
    keys = sorted({k for column in data.values() for k in column}, key=_row_key)
    return [{col: values.get(k) for col, values in data.items()} for k in keys]


def _row_key(key: str) -> tuple[int, str]:
    return (int(key), "") if str(key).isdigit() else (1 << 62, str(key))


def _rows_from_csv(path: Path) -> list[dict]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: not a readable MAESTRO csv ({err})") from None


def list_items(src: Path) -> list[SourceItem]:
    """One item per metadata row, in the file's row order."""
    src = Path(src)
    meta = metadata_file(src)
    if meta is None:
        raise DataError(f"{src}: no maestro-v*.csv or .json here; give the MAESTRO folder")
    rows = _rows_from_csv(meta) if meta.suffix == ".csv" else _rows_from_json(meta)
    if rows:
        missing = [c for c in _REQUIRED if c not in rows[0]]
        if missing:
            raise DataError(f"{meta}: missing column(s) {', '.join(missing)}")
    items = []
    for row_number, row in enumerate(rows):
        audio = str(row.get("audio_filename") or "").strip()
        midi = str(row.get("midi_filename") or "").strip()
        if not audio:
            raise DataError(f"{meta}: row {row_number} has an empty audio_filename")
        items.append(
            SourceItem(
                path=src / audio,
                name=Path(audio).with_suffix("").as_posix(),
                instrument_str=str(row.get("instrument_str") or "piano"),
                family_str=str(row.get("family_str") or "keyboard"),
                split=normalize_split(row.get("split"), f"{meta} row {row_number}"),
                midi=src / midi if midi else None,
            )
        )
    return items
