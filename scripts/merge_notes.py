"""Merge note folders (NSynth layout, from ``waveloom data render-notes``) into one, by links.

Why: the same programs rendered by several SoundFonts give a note model several examples of
every (pitch, velocity) while each timbre keeps its own instrument label: the pitch embedding
is shared by all the fonts, the instrument embedding is not. ``waveloom prepare`` reads one
folder; this writes one ``examples.json`` and symbolic links to the sources' audio (nothing is
copied).

``SRC:TAG`` renames that folder's instruments ``FAMILY_TAG_NNN`` (``keyboard_synthetic_000``
-> ``keyboard_opl3_000``) and its notes to match; a folder without a tag keeps its names. Each
note keeps its ``split``: the renderer draws it from a hash of the untagged name, so a
(program, pitch, velocity) is in the same split in every font (no note is trained on in one
font and validated on in another).

    python scripts/merge_notes.py data/notes-3font data/demo-notes-v5 \
        data/notes-opl3:opl3 data/notes-gmbank:gmbank
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _source(arg: str) -> tuple[Path, str]:
    path, _, tag = arg.partition(":")
    if not (Path(path) / "examples.json").is_file():
        sys.exit(f"{path}: no examples.json; give a folder written by "
                 "`waveloom data render-notes`")
    if tag and not tag.isalnum():
        sys.exit(f"{arg}: the tag must be letters and digits (it becomes part of a name)")
    return Path(path), tag


def _renamed(meta: dict, tag: str) -> dict:
    """``meta`` with its instrument (and so its note) renamed ``FAMILY_TAG_NNN``."""
    if not tag:
        return dict(meta)
    family, _, index = meta["instrument_str"].rsplit("_", 2)
    instrument = f"{family}_{tag}_{index}"
    suffix = meta["note_str"][len(meta["instrument_str"]):]
    return {**meta, "instrument_str": instrument, "note_str": instrument + suffix}


def merge(out: Path, sources: list[tuple[Path, str]]) -> dict[str, dict]:
    """Write ``out/examples.json`` and ``out/audio/*.wav`` links; returns the examples."""
    (out / "audio").mkdir(parents=True, exist_ok=True)
    merged: dict[str, dict] = {}
    for src, tag in sources:
        for name, meta in json.loads((src / "examples.json").read_text()).items():
            new = _renamed(meta, tag)
            if new["note_str"] in merged:
                sys.exit(f"{src}: note {new['note_str']} is in two folders; give one a tag")
            merged[new["note_str"]] = new
            link = out / "audio" / f"{new['note_str']}.wav"
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink((src / "audio" / f"{name}.wav").resolve(), link)
    (out / "examples.json").write_text(json.dumps(merged, indent=1))
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the merged folder to write")
    parser.add_argument("sources", nargs="+", help="note folders, each SRC or SRC:TAG")
    args = parser.parse_args()
    merged = merge(args.out, [_source(s) for s in args.sources])
    instruments = sorted({m["instrument_str"] for m in merged.values()})
    print(f"{len(merged)} notes of {len(instruments)} instruments in {args.out}")


if __name__ == "__main__":
    main()
