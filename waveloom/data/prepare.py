"""Decode a source once into a cache that training reads by memory-mapping.

Layout of ``OUT`` (read by :class:`waveloom.data.cache.AudioCache`):

* ``audio.npy``      int16 ``[total_samples]``: every example, mono, at one sample rate,
                     concatenated (float = int16 / 32767).
* ``notes.npy``      int64 ``[N, 5]``: MIDI notes of all examples that have a score, in samples
                     at the cache rate (columns in :mod:`waveloom.data.roll`).
* ``manifest.jsonl`` one JSON object per example: name, offset, length, sample_rate, pitch,
                     velocity, instrument, instrument_str, family, family_str, split, source,
                     midi, notes_offset, notes_count.
* ``cache.json``     version, sample_rate, total_samples, dtype, format, source, counts per
                     split, the instrument and family vocabularies, the skipped files.

Memory stays flat in the data-set size and in the file length: each file is decoded and
resampled block by block (:func:`~waveloom.audio.io.stream_audio`) and its samples are streamed
to disk behind an ``.npy`` header that is rewritten with the final length at the end (numpy
pads the header so the length can grow in place). The new cache is built in a hidden folder
beside ``OUT`` and swapped in at the end (an atomic exchange on Linux), so a prepare that fails
(a bad source, a full disk, Ctrl-C) leaves the previous cache as it was.

Files that decode but would teach something wrong are named: samples beyond full scale
(clipped) and truncated files are warnings in the summary and in ``cache.json``; silent files
are skipped and listed.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from waveloom.audio.io import StreamReport, stream_audio
from waveloom.data import sources
from waveloom.data.roll import midi_notes, notes_to_samples
from waveloom.data.sources import NSYNTH_FAMILIES, SPLITS, SourceItem
from waveloom.errors import AudioError, DataError

#: Bumped whenever the cache layout changes; AudioCache refuses other versions.
CACHE_VERSION = 1
#: int16 full scale used both ways (float = int16 / SCALE).
SCALE = 32767
#: Files quieter than this RMS (about -80 dBFS) carry nothing to learn and are skipped.
SILENCE_RMS = 1e-4
#: Fractions of train / valid (the rest is test) for sources without their own split.
SPLIT_FRACTIONS = (0.8, 0.1)


@dataclass
class PrepareSummary:
    """What ``prepare`` did; ``str()`` is the report the CLI prints."""

    out: Path
    source: Path
    format: str
    sample_rate: int
    n_examples: int
    total_samples: int
    counts: dict[str, int]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (path, what was odd)
    n_midi: int = 0
    n_notes: int = 0

    @property
    def duration_s(self) -> float:
        return self.total_samples / self.sample_rate

    def __str__(self) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        seconds = self.duration_s
        length = (
            f"{seconds / 3600:.2f} h" if seconds >= 3600
            else f"{seconds / 60:.1f} min" if seconds >= 60
            else f"{seconds:.1f} s"
        )  # fmt: skip
        lines = [
            f"prepared {self.n_examples} examples ({length} at {self.sample_rate} Hz) "
            f"from {self.source} [{self.format}] into {self.out}",
            f"splits: {splits}",
        ]
        if self.n_midi:
            lines.append(f"MIDI: {self.n_midi} examples, {self.n_notes} notes")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s):")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        if self.warnings:
            lines.append(f"warnings for {len(self.warnings)} file(s) (kept):")
            lines += [f"  {path}: {reason}" for path, reason in self.warnings]
        return "\n".join(lines)


def hash_split(name: str) -> str:
    """Deterministic 80/10/10 split from a SHA-1 of the name (stable across runs/machines)."""
    u = int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big") / 2.0**64
    train, valid = SPLIT_FRACTIONS
    return "train" if u < train else "valid" if u < train + valid else "test"


def family_id(family_str: str | None) -> int:
    """NSynth family id of ``family_str`` (0 bass ... 10 vocal), or -1 when unknown."""
    return NSYNTH_FAMILIES.index(family_str) if family_str in NSYNTH_FAMILIES else -1


class NpyStreamWriter:
    """Append rows to an ``.npy`` file whose final length is unknown when writing starts."""

    def __init__(self, path: Path, dtype: str, row_shape: tuple[int, ...] = ()):
        self.path, self.dtype, self.row_shape = Path(path), np.dtype(dtype), tuple(row_shape)
        self.rows = 0
        self._file = open(self.path, "wb")  # closed in close() or abort()
        np.lib.format.write_array_header_1_0(self._file, self._header(0))
        self._data_start = self._file.tell()

    def _header(self, rows: int) -> dict:
        return {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (rows, *self.row_shape),
        }

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"rows of shape {rows.shape[1:]} != {self.row_shape}")
        self._file.write(memoryview(rows).cast("B"))
        self.rows += len(rows)

    def close(self) -> None:
        """Rewrite the header with the final length (in place when it fits, else by copying)."""
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, self._header(self.rows))
        if len(header.getvalue()) == self._data_start:
            self._file.seek(0)
            self._file.write(header.getvalue())
            self._file.close()
            return
        self._file.close()  # an old numpy without header growth padding: copy once
        tmp = self.path.with_name(self.path.name + ".copy")
        with open(self.path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(header.getvalue())
            src.seek(self._data_start)
            shutil.copyfileobj(src, dst, 1 << 24)
        os.replace(tmp, self.path)

    def truncate(self, rows: int) -> None:
        """Drop every row after the first ``rows`` (a file that turned out unusable)."""
        self._file.seek(self._data_start + rows * self.dtype.itemsize * math.prod(self.row_shape))
        self._file.truncate()
        self.rows = rows

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _relative(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # another drive on Windows
        return str(path)


def _unique_names(items: list[SourceItem]) -> None:
    seen: dict[str, int] = {}
    for item in items:
        count = seen.get(item.name, 0)
        seen[item.name] = count + 1
        if count:
            item.name = f"{item.name}#{count + 1}"


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


#: The files a cache consists of (what the swap replaces; anything else in OUT is kept).
CACHE_FILES = ("audio.npy", "notes.npy", "manifest.jsonl", "cache.json")


def prepare(
    src: str | Path,
    out: str | Path,
    format: str = "auto",
    sample_rate: int = 16000,
    progress: bool = True,
) -> PrepareSummary:
    """Decode every example of ``src`` once (mono, resampled to ``sample_rate``) into ``out``.

    ``format`` is ``auto`` (detected from the files present), ``folder``, ``nsynth`` or
    ``maestro``. Unreadable, silent or score-less-when-a-score-is-named files are skipped and
    listed in the summary; only a source with no usable audio at all raises :class:`DataError`.
    Instrument ids are the index of ``instrument_str`` in the sorted list of every instrument
    the source lists, so they do not shift when a file turns out to be unreadable. Whatever
    fails, a cache already in ``out`` stays usable (the new one is swapped in only when done).
    """
    src, out = Path(src), Path(out)
    if int(sample_rate) <= 0:
        raise DataError(f"--sr {sample_rate}: the sample rate must be a positive number of Hz")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: is a file, not a folder; give prepare a folder for the cache")
    sample_rate = int(sample_rate)
    format, items = sources.list_items(src, format)
    _unique_names(items)
    instruments = sorted({i.instrument_str for i in items if i.instrument_str is not None})
    summary = PrepareSummary(out=out, source=src, format=format, sample_rate=sample_rate,
                             n_examples=0, total_samples=0, counts=dict.fromkeys(SPLITS, 0))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=f".{out.name}.prepare-", dir=out.parent))
    except OSError as err:
        raise DataError(f"{out}: cannot create the cache folder ({err.strerror or err})") from None
    try:
        _write_examples(summary, items, instruments, progress, build)
        _write_json_atomic(build / "cache.json", _cache_index(summary, instruments))
        _swap_into_place(build, out)
    except OSError as err:
        raise DataError(f"{out}: cannot write the cache ({err.strerror or err}); free some "
                        "space or pick another folder (the previous cache is unchanged)") from None
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return summary


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    if ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _swap_into_place(build: Path, out: Path) -> None:
    """Make the finished cache in ``build`` the one at ``out``: an atomic exchange of the two
    folders where the kernel offers it (else rename the old one aside, then the new one in);
    files in ``out`` that are not :data:`CACHE_FILES` are carried over. The old cache ends up
    in ``build``, which the caller removes."""
    if not out.exists():
        os.replace(build, out)
        build.mkdir()  # the caller removes it
        return
    if not _exchange(build, out):
        aside = build.with_name(build.name + ".old")
        os.replace(out, aside)
        os.replace(build, out)
        os.replace(aside, build)
    for entry in build.iterdir():  # build now holds the old cache folder's contents
        if entry.name not in CACHE_FILES and not (out / entry.name).exists():
            os.replace(entry, out / entry.name)


def _write_examples(summary: PrepareSummary, items: list[SourceItem], instruments: list[str],
                    progress: bool, folder: Path) -> None:
    """Stream every usable item of ``summary.source`` into audio.npy, notes.npy and
    manifest.jsonl under ``folder`` (each written as ``.partial`` and renamed once complete;
    removed if anything fails), counting what was written, skipped and warned about in
    ``summary``. Raises :class:`DataError` when no item is usable."""
    src = summary.source
    instrument_ids = {name: k for k, name in enumerate(instruments)}
    audio_w = NpyStreamWriter(folder / "audio.npy.partial", "<i2")
    notes_w = NpyStreamWriter(folder / "notes.npy.partial", "<i8", (5,))
    manifest_tmp = folder / "manifest.jsonl.partial"
    try:
        with open(manifest_tmp, "w") as manifest:
            bar = tqdm(items, desc="prepare", unit="file", disable=not progress)
            for item in bar:
                rel = _relative(item.path, src)
                offset = audio_w.rows
                decoded = _decode_into(item, summary.sample_rate, audio_w)
                if isinstance(decoded, str):
                    audio_w.truncate(offset)
                    summary.skipped.append((rel, decoded))
                    bar.set_postfix(skipped=len(summary.skipped), refresh=False)
                    continue
                notes, warnings = decoded
                summary.warnings += [(rel, w) for w in warnings]
                entry = _manifest_entry(item, rel, src, audio_w.rows - offset,
                                        summary.sample_rate, instrument_ids, offset,
                                        notes_w.rows, notes)
                if notes is not None:
                    notes_w.append(notes)
                    summary.n_midi += 1
                manifest.write(json.dumps(entry) + "\n")
                summary.counts[entry["split"]] = summary.counts.get(entry["split"], 0) + 1
                summary.n_examples += 1
        if summary.n_examples == 0:
            raise DataError(
                f"{src}: no usable audio ({len(summary.skipped)} file(s) skipped); expected "
                f"{sources.expectation(summary.format)}"
            )
        audio_w.close()
        notes_w.close()
    except BaseException:
        audio_w.abort()
        notes_w.abort()
        manifest_tmp.unlink(missing_ok=True)
        raise
    os.replace(folder / "audio.npy.partial", folder / "audio.npy")
    os.replace(folder / "notes.npy.partial", folder / "notes.npy")
    os.replace(manifest_tmp, folder / "manifest.jsonl")
    summary.total_samples, summary.n_notes = audio_w.rows, notes_w.rows


def _decode_into(item: SourceItem, sample_rate: int, audio_w: NpyStreamWriter
                 ) -> tuple[np.ndarray | None, list[str]] | str:
    """Append one item's audio (mono, at ``sample_rate``, int16) to ``audio_w`` block by block
    and return ``(notes [N, 5] int64 in samples or None, warnings)``, or the reason to skip
    it (unreadable audio or score, or silence; the caller then drops what was appended)."""
    report = StreamReport()
    try:
        notes = None
        if item.midi is not None:
            notes = notes_to_samples(midi_notes(item.midi), sample_rate)
        for block in stream_audio(item.path, sample_rate, report=report):
            audio_w.append(np.round(block * SCALE).astype(np.int16))
    except (AudioError, DataError) as err:
        return str(err).removeprefix(f"{item.path}: ")
    if report.rms < SILENCE_RMS:
        return f"silent (RMS {report.rms:.1e} < {SILENCE_RMS:g})"
    warnings = []
    if report.over_full_scale:
        warnings.append(f"{report.over_full_scale} sample(s) beyond full scale (peak "
                        f"{report.peak:.2f}) were clipped to [-1, 1]; normalise the file")
    if report.truncated:
        warnings.append(report.truncated + "; only the samples present were used")
    return notes, warnings


def _manifest_entry(
    item: SourceItem, rel: str | None, src: Path, length: int, sample_rate: int,
    instrument_ids: dict[str, int], offset: int, notes_offset: int, notes: np.ndarray | None,
) -> dict:
    """One manifest.jsonl line: the item's labels and where its samples (``offset``, in
    audio.npy rows) and notes (``notes_offset``, in notes.npy rows) start."""
    return {
        "name": item.name,
        "offset": offset,
        "length": length,
        "sample_rate": sample_rate,
        "pitch": -1 if item.pitch is None else int(item.pitch),
        "velocity": -1 if item.velocity is None else int(item.velocity),
        "instrument": instrument_ids.get(item.instrument_str, -1),
        "instrument_str": item.instrument_str,
        "family": family_id(item.family_str),
        "family_str": item.family_str,
        "split": item.split or hash_split(item.name),
        "source": rel,
        "midi": _relative(item.midi, src),
        "notes_offset": notes_offset,
        "notes_count": 0 if notes is None else len(notes),
    }


def _cache_index(summary: PrepareSummary, instruments: list[str]) -> dict:
    """The contents of cache.json (written last: its presence marks a complete cache)."""
    return {
        "version": CACHE_VERSION,
        "sample_rate": summary.sample_rate,
        "total_samples": summary.total_samples,
        "dtype": "int16",
        "scale": SCALE,
        "n_examples": summary.n_examples,
        "n_notes": summary.n_notes,
        "format": summary.format,
        "source": str(summary.source.resolve()),
        "counts": summary.counts,
        "instruments": instruments,
        "families": list(NSYNTH_FAMILIES),
        "skipped": [{"path": p, "reason": r} for p, r in summary.skipped],
        "warnings": [{"path": p, "warning": w} for p, w in summary.warnings],
    }
