"""Issue #23's structure table: musical structure of generated pieces, read through notes.

Every row is a set of pieces, turned into notes and measured by :mod:`waveloom.evaluate.structure`
(pitch-class distance to real chorales, key consistency, self-similarity at 2-8 s, density):

* ``--audio NAME=FOLDER`` (repeatable): every ``.wav`` in FOLDER is transcribed by
  ``--transcriber CKPT`` first, so audio systems (compose, a roll WaveNet, a plain WaveNet, the
  hierarchical ADA) and real recordings are judged by the same ears;
* ``--midi NAME=FOLDER`` (repeatable): the ``.mid``/``.midi`` scores themselves (the composer's
  own notes, before any rendering);
* ``--reference CORPUS``: a symbolic corpus (``waveloom data symbolic``); its ``--reference-split``
  (default train) is what the pitch-class histogram is compared to, and its ``--split`` (default
  test) scores are printed as the first row ("real chorales, scores"), with an anchor row
  below it: the same scores with their pitches shuffled (rhythm kept, tonal order gone).

    python benchmarks/structure_table.py --reference cache/sym-chorales \\
        --transcriber runs/transcriber/model.safetensors \\
        --audio "real chorales, FluidR3 audio=data/chorales-fluid-test" \\
        --audio "compose, DDSP=out/compose" --midi "compose, scores=out/compose"

Prints a markdown table (and ``--json PATH`` writes the numbers). Results: docs/compose.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from waveloom.data.events import events_to_notes
from waveloom.data.roll import midi_notes
from waveloom.data.symbolic import SymbolicCache
from waveloom.evaluate.structure import set_structure

COLUMNS = [("pieces", "pieces", "{:d}"), ("seconds", "mean s", "{:.1f}"),
           ("pc_js_bits", "pitch-class JS (bits)", "{:.4f}"),
           ("key_consistency", "key consistency", "{:.2f}"),
           ("self_similarity", "self-similarity 2-8 s", "{:.2f}"),
           ("notes_per_second", "notes/s", "{:.2f}"), ("polyphony", "polyphony", "{:.2f}")]


def _named(text: str) -> tuple[str, Path]:
    name, _, folder = text.rpartition("=")
    if not name or not folder:
        raise SystemExit(f"error: {text!r}: give NAME=FOLDER")
    if not Path(folder).is_dir():
        raise SystemExit(f"error: {folder}: no such folder")
    return name, Path(folder)


def corpus_notes(root: str, split: str) -> list[np.ndarray]:
    cache = SymbolicCache(root)
    return [events_to_notes(cache.piece(int(i))) for i in cache.split_indices(split)]


def midi_folder_notes(folder: Path) -> list[np.ndarray]:
    """Onset s, offset s, pitch of every score in ``folder`` (sample rate 1 Hz = seconds)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    out = []
    for path in files:
        table = midi_notes(path)  # [N, 4]: onset s, offset s, pitch, velocity
        out.append(np.asarray(table[:, :3], np.float64))
    return out


def audio_folder_notes(folder: Path, transcriber: str | None) -> list[np.ndarray]:
    """Every ``.wav`` in ``folder`` transcribed by the checkpoint ``transcriber``."""
    if transcriber is None:
        raise SystemExit("error: --audio needs --transcriber CKPT")
    from waveloom.evaluate.transcription import transcribe_files

    files = sorted(folder.rglob("*.wav"))
    return [np.asarray(n[:, :3], np.float64) for n in transcribe_files(transcriber, files)]


def shuffled(pieces: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """The same rhythms with each piece's pitches permuted and moved by up to 6 semitones: what
    the numbers read for notes with the right density and no tonal or motivic order."""
    rng = np.random.default_rng(seed)
    out = []
    for notes in pieces:
        moved = notes.copy()
        moved[:, 2] = rng.permutation(moved[:, 2]) + rng.integers(-6, 7, len(moved))
        out.append(moved)
    return out


def row(name: str, summary: dict) -> str:
    cells = [fmt.format(summary[key]) for key, _, fmt in COLUMNS]
    return "| " + " | ".join([name, *cells]) + " |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, help="symbolic corpus folder")
    ap.add_argument("--reference-split", default="train")
    ap.add_argument("--split", default="test", help="the corpus's own row (default test)")
    ap.add_argument("--transcriber", default=None, help="transcriber checkpoint for --audio")
    ap.add_argument("--audio", action="append", default=[], type=_named, metavar="NAME=DIR")
    ap.add_argument("--midi", action="append", default=[], type=_named, metavar="NAME=DIR")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    reference = corpus_notes(args.reference, args.reference_split)
    real = corpus_notes(args.reference, args.split)
    rows = {f"real chorales, scores ({args.split})": real,
            "anchor: their pitches shuffled, +-6 st": shuffled(real)}
    for name, folder in args.midi:
        rows[name] = midi_folder_notes(folder)
    for name, folder in args.audio:
        started = time.perf_counter()
        rows[name] = audio_folder_notes(folder, args.transcriber)
        print(f"{name}: {len(rows[name])} files transcribed in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    print("| set | " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    results = {}
    for name, pieces in rows.items():
        results[name] = set_structure(pieces, reference)
        print(row(name, results[name]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
