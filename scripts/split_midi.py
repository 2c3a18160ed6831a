"""Copy the MIDI files of one split of a render folder out, one per piece, to render again.

Why: a model's held-out pieces are the ``test`` rows of the render folder it trained on
(``waveloom data render-midi`` splits by piece). Rendering exactly those pieces again with a
SoundFont or an instrument the model never heard needs their MIDI in a folder of its own
(``render-midi --midi DIR --chorales 0``). A folder rendered once per ensemble holds every
piece several times; ``--ensemble`` keeps one copy, named without the ensemble
(``bach-bwv127.5-soprano-strings.midi`` -> ``bach-bwv127.5-soprano.mid``).

    python scripts/split_midi.py data/domains-soprano --split test --ensemble strings \\
        --out data/xlate-test-midi
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def split_rows(folder: Path, split: str, ensemble: str | None) -> list[dict]:
    """The render rows of ``split`` (and of ``ensemble`` when given), in the folder's order."""
    from waveloom.data.synth.midi import render_rows
    from waveloom.errors import DataError

    try:
        rows = render_rows(folder)
    except DataError as err:
        raise SystemExit(str(err)) from None
    keep = [r for r in rows if r.get("split") == split
            and (ensemble is None or r.get("instrument_str") == ensemble)]
    if not keep:
        raise SystemExit(f"{folder}: no row of split {split!r}"
                         + (f" and ensemble {ensemble!r}" if ensemble else ""))
    return keep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path, help="a render-midi folder (MAESTRO layout)")
    p.add_argument("--split", default="test")
    p.add_argument("--ensemble", default=None, help="keep this ensemble's copy of each piece, "
                   "named without it")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    rows = split_rows(args.folder, args.split, args.ensemble)
    args.out.mkdir(parents=True, exist_ok=True)
    for row in rows:
        src = args.folder / row["midi_filename"]
        stem = Path(row["midi_filename"]).stem
        if args.ensemble and stem.endswith(f"-{args.ensemble}"):
            stem = stem[: -len(args.ensemble) - 1]
        shutil.copyfile(src, args.out / f"{stem}.mid")
    print(f"{len(rows)} MIDI files of split {args.split!r} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
