"""Merge render folders (MAESTRO layout, from ``waveloom data render-midi``) into one, by links.

Why: ``waveloom train`` reads one cache, and a transcriber's mixture of renderers is made of
folders rendered at different times (three SoundFonts in one, the sung choir in another).
Re-rendering them together would take the better part of an hour; this writes a CSV of their
rows and symbolic links to their files (no audio is copied), which ``waveloom prepare
--format maestro`` then reads like any render folder.

``SRC:FRACTION`` keeps a stable subset of that folder's rows (by a hash of the audio file's
name, so the same rows every time): the share of each renderer in the mixture.

    python scripts/merge_renders.py data/chorales-mix data/chorales-3font-every:0.34 \
        data/chorales-sung
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
from pathlib import Path

CSV_NAME = "maestro-v3.0.0.csv"


def _keep(name: str, fraction: float) -> bool:
    unit = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") / 2**64
    return unit < fraction


def _source(arg: str) -> tuple[Path, float]:
    path, _, frac = arg.partition(":")
    fraction = float(frac) if frac else 1.0
    if not 0 < fraction <= 1:
        sys.exit(f"{arg}: the fraction must be in (0, 1]")
    if not (Path(path) / CSV_NAME).is_file():
        sys.exit(f"{path}: no {CSV_NAME}; give a folder written by `waveloom data render-midi`")
    return Path(path), fraction


def merge(out: Path, sources: list[tuple[Path, float]]) -> int:
    """Write ``out``'s CSV and links; return the number of rows."""
    rows: list[dict] = []
    fields: list[str] = []
    seen: set[str] = set()
    for folder, fraction in sources:
        with (folder / CSV_NAME).open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields += [k for k in reader.fieldnames or [] if k not in fields]
            for row in reader:
                if not _keep(row["audio_filename"], fraction):
                    continue
                if row["audio_filename"] in seen:
                    sys.exit(f"{folder}: {row['audio_filename']} is in two folders; rename one")
                seen.add(row["audio_filename"])
                for key in ("audio_filename", "midi_filename"):
                    link = out / row[key]
                    link.parent.mkdir(parents=True, exist_ok=True)
                    if not link.exists():
                        os.symlink((folder / row[key]).resolve(), link)
                rows.append(row)
    with (out / CSV_NAME).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("sources", nargs="+", help="render folders, each optionally :FRACTION")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    n = merge(args.out, [_source(s) for s in args.sources])
    print(f"{args.out}: {n} rows linked from {len(args.sources)} folders")


if __name__ == "__main__":
    main()
