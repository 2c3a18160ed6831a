"""A symbolic corpus: performance-event tokens of whole pieces, cached to a folder.

Sources (any mix): the first N of music21's Bach chorales (no download; rendered to MIDI as
:mod:`waveloom.data.synth.chorales` does, one instrument per part, 80 quarters a minute), every
``*.mid``/``*.midi`` under a folder, or a MAESTRO folder (its csv/json names the MIDI files and
their split). Each piece becomes one token run (:func:`waveloom.data.events.midi_to_events`).

Validation must never hear a bar of a training piece, so the split is by *whole piece*: MAESTRO
keeps its own, a chorale goes by a hash of its title (the split of the audio renders of
``waveloom data render-midi``: the same pieces are held out of both), every other piece by a
SHA-1 of its name (80/10/10, the same :func:`~waveloom.data.prepare.hash_split` the audio cache
uses), so a piece's split never changes when the corpus grows.

Layout (like the audio cache of data/prepare.py, read by :class:`SymbolicCache`):
``tokens.npy`` int16 ``[total]`` every piece's tokens back to back (no BOS/EOS: a dataset adds
them), and ``index.json`` {version, vocab_size, n_tokens, pieces: [{name, source, split,
offset, length}], skipped: [[path, reason]]}; the index is written last, so a folder with an
index is complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from waveloom.data.events import VOCAB_SIZE, midi_to_events
from waveloom.errors import ConfigError, DataError

VERSION = 1
_MIDI_SUFFIXES = {".mid", ".midi"}


def _chorale_pieces(count: int):
    """(name, source, split, load) of the first ``count`` chorales; load() -> tokens.

    The split hashes the chorale's *title*, as ``waveloom data render-midi`` does, so a chorale
    held out of the audio renders (the transcriber's test set) is held out here too."""
    from waveloom.data.synth import chorales as bach
    from waveloom.data.synth.engine import stable_split

    for cid in bach.chorale_ids(count):
        def load(cid=cid):
            return midi_to_events(bach.chorale_midi(cid, (0,), 80.0), name=cid)
        yield bach.name_of(cid), "chorales", stable_split(bach.title_of(cid)), load


def _folder_pieces(root: Path):
    if not root.is_dir():
        raise DataError(f"{root}: MIDI folder not found; give a folder of .mid files")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _MIDI_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no .mid/.midi files in this folder (or below); give a folder "
                        "of MIDI files")
    for path in files:
        name = path.relative_to(root).with_suffix("").as_posix()
        yield name, str(root), None, (lambda path=path: midi_to_events(path))


def _maestro_pieces(root: Path):
    from waveloom.data.sources import maestro

    for item in maestro.list_items(root):
        if item.midi is None:
            continue
        yield item.name, str(root), item.split, (lambda path=item.midi: midi_to_events(path))


def _pieces(chorales: int, midi_dir, maestro_dir):
    if chorales < 0:
        raise ConfigError(f"chorales={chorales}: must be >= 0")
    if chorales == 0 and midi_dir is None and maestro_dir is None:
        raise ConfigError("symbolic corpus: nothing to read; give chorales > 0, a MIDI folder "
                          "and/or a MAESTRO folder")
    if chorales:
        yield from _chorale_pieces(chorales)
    if midi_dir is not None:
        yield from _folder_pieces(Path(midi_dir))
    if maestro_dir is not None:
        yield from _maestro_pieces(Path(maestro_dir))


def build_symbolic(
    out: str | Path, *, chorales: int = 0, midi_dir: str | Path | None = None,
    maestro: str | Path | None = None, progress: bool = False,
) -> SymbolicCache:
    """Tokenize the sources into ``out`` (see module docstring) and return the opened cache.

    A file that cannot be read or holds no notes is skipped and listed in the index; a corpus
    with no piece at all is a DataError (naming the first reason). ``progress``: a bar over
    the pieces (371 chorales take about a minute: music21 parses each score).
    """
    from tqdm.auto import tqdm

    from waveloom.data.prepare import hash_split

    out = Path(out)
    runs, pieces, skipped, offset = [], [], [], 0
    total = chorales if midi_dir is None and maestro is None else None
    bar = tqdm(_pieces(chorales, midi_dir, maestro), total=total, desc="symbolic",
               unit="piece", disable=not progress)
    for name, source, split, load in bar:
        try:
            tokens = load()
        except DataError as err:
            skipped.append([name, str(err)])
            continue
        runs.append(tokens.astype(np.int16))
        pieces.append({"name": name, "source": source, "split": split or hash_split(name),
                       "offset": offset, "length": len(tokens)})
        offset += len(tokens)
    if not pieces:
        first = f"; first: {skipped[0][1]}" if skipped else ""
        raise DataError(f"{out}: no piece with notes among the sources ({len(skipped)} "
                        f"skipped{first})")
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "tokens.npy", np.concatenate(runs))
    index = {"version": VERSION, "vocab_size": VOCAB_SIZE, "n_tokens": offset,
             "pieces": pieces, "skipped": skipped}
    tmp = out / "index.json.tmp"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, out / "index.json")
    return SymbolicCache(out)


class SymbolicCache:
    """A built symbolic corpus: ``pieces[i]`` describes piece ``i``; ``piece(i)`` its tokens.

    Attributes: ``root``, ``info`` (index.json), ``pieces`` (dicts), ``splits`` (str ``[N]``),
    ``tokens`` (int16 memmap ``[n_tokens]``, mapped on first use and never pickled, so a
    DataLoader worker maps the same file instead of copying it).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / "index.json"
        fix = "build it again with waveloom.data.symbolic.build_symbolic"
        if not path.is_file():
            raise DataError(f"{self.root}: no symbolic corpus here (index.json missing); {fix}")
        try:
            self.info = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            reason = str(err).splitlines()[0]
            raise DataError(f"{path}: corpus index is damaged ({reason}); {fix}") from None
        if self.info.get("version") != VERSION or self.info.get("vocab_size") != VOCAB_SIZE:
            raise DataError(f"{self.root}: corpus of another format or vocabulary; {fix}")
        self.pieces: list[dict] = list(self.info["pieces"])
        self.splits = np.array([p["split"] for p in self.pieces])
        self._tokens: np.ndarray | None = None
        if self.tokens.shape != (int(self.info["n_tokens"]),):
            raise DataError(f"{self.root}: corpus is incomplete (sizes disagree); {fix}")

    @property
    def tokens(self) -> np.ndarray:
        """int16 memmap ``[n_tokens]`` of every piece back to back."""
        if self._tokens is None:
            path = self.root / "tokens.npy"
            try:
                self._tokens = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as err:
                reason = str(err).splitlines()[0]
                raise DataError(f"{path}: cannot map the corpus tokens ({reason})") from None
        return self._tokens

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tokens"] = None
        return state

    def __len__(self) -> int:
        return len(self.pieces)

    def split_indices(self, name: str) -> np.ndarray:
        """Indices (int64 ``[n]``, ascending) of the pieces in split ``name``."""
        return np.flatnonzero(self.splits == name).astype(np.int64)

    def piece(self, i: int) -> np.ndarray:
        """Tokens of piece ``i`` as int64 ``[length]``."""
        p = self.pieces[i]
        return np.asarray(self.tokens[p["offset"] : p["offset"] + p["length"]], np.int64)

    def summary(self) -> str:
        """One line: pieces per split, tokens, skipped files (what ``waveloom data symbolic``
        prints)."""
        counts = {s: int((self.splits == s).sum()) for s in ("train", "valid", "test")}
        split = "/".join(str(c) for c in counts.values())
        return (f"{self.root}: {len(self)} pieces ({split} train/valid/test), "
                f"{int(self.info['n_tokens']):,} tokens, "
                f"{len(self.info.get('skipped', []))} skipped")

    def __repr__(self) -> str:
        n = int(self.info["n_tokens"])
        return f"SymbolicCache({str(self.root)!r}, {len(self)} pieces, {n} tokens)"
