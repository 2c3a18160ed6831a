"""Whole pieces rendered from MIDI into the MAESTRO layout: ``waveloom data render-midi``.

Sources: the first N Bach chorales of music21's corpus (:mod:`.chorales`) and/or every
``.mid``/``.midi`` below ``midi_dir``. Output, like MAESTRO v3::

    OUT/<year>/<name>.midi, OUT/<year>/<name>.wav   (16-bit PCM mono at ``sample_rate``)
    OUT/maestro-v3.0.0.csv   canonical_composer, canonical_title, split, year, midi_filename,
                             audio_filename, duration (+ instrument_str, family_str)
    OUT/render-midi.json     the settings of the run, and render-midi.rows.jsonl the rows of
                             the pieces done so far (an interrupted run resumes from them)

MAESTRO's ``year`` is when a performance was recorded; a render has no recording session, so
one run writes one year folder (``year``, fixed by default so paths are reproducible).
Splits: like MAESTRO, a composition never straddles splits: a stable hash of the title decides
(80/10/10, MAESTRO's spellings train/validation/test).

Level: each piece is peak-normalised to ``peak_dbfs`` on its own, like independent recordings
(a piece's internal dynamics are kept; polyphony would otherwise clip a global level).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
import shutil
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pretty_midi
from tqdm.auto import tqdm

from waveloom.data.synth import chorales as bach
from waveloom.data.synth import engine, gm
from waveloom.data.synth.performance import render_midi_audio
from waveloom.errors import ConfigError, DataError

CSV_NAME = "maestro-v3.0.0.csv"
#: MAESTRO's columns, in its order, then the two the maestro source reads when present.
MAESTRO_COLUMNS = (
    "canonical_composer", "canonical_title", "split", "year",
    "midi_filename", "audio_filename", "duration",
)  # fmt: skip
EXTRA_COLUMNS = ("instrument_str", "family_str")
DEFAULT_YEAR = 2024
MIDI_EXTENSIONS = (".mid", ".midi")
#: Longest note rendered (seconds): a missing note-off otherwise holds a note to the end of a
#: piece (or for hours of silence-free drone).
MAX_NOTE_SECONDS = 30.0
_SIDECAR = "render-midi.json"
_ROWS = "render-midi.rows.jsonl"


@dataclass
class MidiSummary:
    """What :func:`render_midi` did: one CSV row per piece, and the files it skipped."""

    out_dir: Path
    csv_path: Path
    rows: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, one-line reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (file, what was changed)
    rendered: int = 0
    resumed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def splits(self) -> dict[str, int]:
        return dict(Counter(row["split"] for row in self.rows))

    def __str__(self) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items()))
        lines = [
            f"{len(self.rows)} pieces ({self.audio_seconds / 60:.1f} min; {splits}) in "
            f"{self.csv_path}; {self.rendered} rendered, {self.resumed} kept from an earlier run"
        ]
        lines += [f"skipped {path}: {reason}" for path, reason in self.skipped]
        lines += [f"warning {path}: {text}" for path, text in self.warnings]
        return "\n".join(lines)


@dataclass
class _Piece:
    name: str
    title: str
    composer: str
    load: object  # () -> (PrettyMIDI, instrument label); raises on an unparseable file
    source: Path | None = None  # the user's MIDI file, if the piece is one
    verbatim: bool = False  # copy ``source`` as the .midi (nothing was changed before rendering)


def _midi_files(midi_dir: Path) -> list[Path]:
    if not midi_dir.is_dir():
        raise DataError(f"{midi_dir}: no such folder; give a folder holding .mid/.midi files")
    return sorted(
        p for p in midi_dir.rglob("*") if p.suffix.lower() in MIDI_EXTENSIONS and p.is_file()
    )


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "piece"


def _parse_file(path: Path, program: int | str | None):
    def load():
        with warnings.catch_warnings():  # pretty_midi warns about odd but valid files
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(str(path))
        if program is None:
            return midi, None
        label, programs = bach.ensemble_for(0, program)
        for i, instrument in enumerate(midi.instruments):
            if not instrument.is_drum:
                instrument.program = programs[min(i, len(programs) - 1)]
        return midi, label

    return load


def _solo(piece: _Piece, voice: str) -> _Piece:
    """The piece reduced to one voice (``soprano`` .. ``bass``: its n-th pitched part), named
    ``<name>-<voice>``; its title (hence its split) is the piece's."""
    index, load = bach.voice_index(voice), piece.load

    def solo():
        midi, label = load()
        return bach.keep_voice(midi, index), label

    return _Piece(f"{piece.name}-{voice}", piece.title, piece.composer, solo, piece.source)


#: ``program`` value that renders every piece once per ensemble of :data:`gm.ROTATION`.
EVERY_ENSEMBLE = "every"


def ensemble_list(program: object) -> tuple[str, ...] | None:
    """The ensembles ``program`` asks for one render each of: ``'every'`` (the rotation) or a
    comma list of ensemble names (``'strings,winds,brass,keyboard'``); None otherwise."""
    if program == EVERY_ENSEMBLE:
        return gm.ROTATION
    if not isinstance(program, str) or "," not in program:
        return None
    names = tuple(name.strip() for name in program.split(",") if name.strip())
    unknown = [name for name in names if name not in gm.ENSEMBLES]
    if unknown or len(set(names)) != len(names):
        raise ConfigError(f"--program {program}: a list names each ensemble once, among "
                          f"{', '.join(gm.ENSEMBLES)}")
    return names


def _pieces(chorale_count: int, midi_dir: Path | None, program, tempo: float,
            voice: str | None = None) -> list[_Piece]:
    """The pieces to render; with ``program="every"`` (or a comma list of ensembles) each piece
    once per ensemble, named ``<name>-<ensemble>`` with the piece's title (so every version
    falls in the same split): a transcriber then hears each score in several timbres, and a
    translator gets one domain per ensemble with the same music in each."""
    ensembles = ensemble_list(program)
    if ensembles is None:
        return _pieces_for(chorale_count, midi_dir, program, tempo, voice)
    pieces = []
    for ensemble in ensembles:
        for piece in _pieces_for(chorale_count, midi_dir, ensemble, tempo, voice):
            piece.name = f"{piece.name}-{ensemble}"
            pieces.append(piece)
    return pieces


def _pieces_for(chorale_count: int, midi_dir: Path | None, program, tempo: float,
                voice: str | None = None) -> list[_Piece]:
    pieces = []
    for index, cid in enumerate(bach.chorale_ids(chorale_count)):
        label, programs = bach.ensemble_for(index, program)

        def load(cid=cid, label=label, programs=programs):
            return bach.chorale_midi(cid, programs, tempo), label

        pieces.append(_Piece(bach.name_of(cid), bach.title_of(cid), bach.COMPOSER, load))
    if midi_dir is not None:
        for path in _midi_files(midi_dir):
            stem = path.relative_to(midi_dir).with_suffix("").as_posix()
            pieces.append(
                _Piece(
                    _safe_name(stem.replace("/", "-")),
                    stem,
                    "Unknown",
                    _parse_file(path, program),
                    path,
                    verbatim=program is None,
                )
            )
    if voice is not None:
        pieces = [_solo(piece, voice) for piece in pieces]
    seen: Counter = Counter()
    for piece in pieces:  # unique file names, deterministic suffixes
        seen[piece.name] += 1
        if seen[piece.name] > 1:
            piece.name = f"{piece.name}-{seen[piece.name]}"
    return pieces


def _labels(midi: pretty_midi.PrettyMIDI, label: str | None) -> tuple[str, str]:
    """(instrument_str, family_str) of a piece: ``label`` (the ensemble) or the GM name of the
    program, and the NSynth family, that play the most note-seconds ('' when none maps)."""
    programs: Counter = Counter()
    families: Counter = Counter()
    for instrument in midi.instruments:
        family = None if instrument.is_drum else gm.family_of(instrument.program)
        if family is not None:
            seconds = sum(n.end - n.start for n in instrument.notes)
            programs[instrument.program] += seconds
            families[family] += seconds
    if not programs:
        return label or "mixed", ""
    name = gm.gm_name(programs.most_common(1)[0][0]).lower().replace(" ", "_")
    return label or name, families.most_common(1)[0][0]


def render_midi(
    out_dir: str | Path,
    chorales: int = 0,
    midi_dir: str | Path | None = None,
    soundfont: str | Path | list | None = None,
    sample_rate: int = 16000,
    program: int | str | None = None,
    progress: bool = True,
    *,
    tempo: float = 80.0,
    tail_seconds: float = 1.0,
    peak_dbfs: float = -1.0,
    year: int = DEFAULT_YEAR,
    render_rate: int | None = None,
    max_note_seconds: float = MAX_NOTE_SECONDS,
    voice: str | None = None,
) -> MidiSummary:
    """Render ``chorales`` Bach chorales and/or every MIDI file under ``midi_dir``.

    ``program`` (a GM number 0-127 or an ensemble name of :data:`gm.ENSEMBLES`) replaces the
    programs of every melodic part; ``"every"`` renders each piece once per ensemble; by
    default chorales rotate through the ensembles and files keep theirs. ``tempo`` (quarter
    notes per minute) applies to chorales. Unparseable or empty MIDI files are skipped and
    listed in the summary, never fatal (when every piece fails, the error names them). A note
    held longer than ``max_note_seconds`` (a lost note-off) is cut to it, with a warning.
    Re-running with the same settings keeps pieces already written. Prints only tqdm bars.
    ``voice`` (``soprano``, ``alto``, ``tenor``, ``bass``) renders only that part of every
    piece (its n-th pitched part): solo melodic lines for one instrument (DDSP's data).
    ``soundfont`` may be a list: every piece is then rendered once per SoundFont, named
    ``<name>-<font stem>`` (same title, so the same split): a transcriber hears each score
    through several sample sets, which is what lets it generalise to a SoundFont it never heard.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if chorales <= 0 and midi_dir is None:
        raise ConfigError("render-midi: nothing to render; give chorales > 0 and/or a midi_dir")
    if not (math.isfinite(max_note_seconds) and max_note_seconds > 0):
        raise ConfigError(f"--max-note-seconds {max_note_seconds}: must be a finite number > 0")
    rate = engine.render_rate_for(sample_rate, render_rate)
    if voice is not None:
        bach.voice_index(voice)  # a bad name fails before the SoundFont loads
    fonts = [_load_font(path, rate) for path in _soundfont_paths(soundfont)]
    pieces = _pieces(chorales, Path(midi_dir) if midi_dir else None, program, tempo, voice)
    settings = _render_settings(fonts, int(sample_rate), rate, program, tempo, tail_seconds,
                                peak_dbfs, year, max_note_seconds, voice)
    year_dir = out_dir / str(year)
    year_dir.mkdir(parents=True, exist_ok=True)
    sidecar = out_dir / _SIDECAR
    rows_path = out_dir / _ROWS
    done = _done_rows(rows_path) if engine.same_settings(sidecar, settings) else {}
    if not done:
        rows_path.unlink(missing_ok=True)
    engine.write_text_atomic(sidecar, json.dumps(settings, indent=1))
    summary = MidiSummary(out_dir=out_dir, csv_path=out_dir / CSV_NAME)
    jobs = _font_jobs(pieces, fonts)
    for piece, font in tqdm(jobs, desc="render", unit="piece", disable=not progress):
        midi_path, wav_path = year_dir / f"{piece.name}.midi", year_dir / f"{piece.name}.wav"
        rel_wav = f"{year}/{wav_path.name}"
        frames = engine.wav_frames(wav_path) if rel_wav in done else None
        if frames and midi_path.is_file():
            row = dict(done[rel_wav], duration=frames / sample_rate)
            summary.resumed += 1
        else:
            row = _render_piece(piece, summary, (font, rate, sample_rate), settings,
                                (midi_path, wav_path, rows_path), max_note_seconds)
            if row is None:
                continue
        summary.rows.append(row)
        summary.audio_seconds += float(row["duration"])
    if not summary.rows:
        named = "; ".join(f"{Path(p).name}: {r}" for p, r in summary.skipped[:5])
        more = f"; and {len(summary.skipped) - 5} more" if len(summary.skipped) > 5 else ""
        raise DataError(f"{out_dir}: no piece could be rendered ({len(summary.skipped)} "
                        f"skipped: {named}{more})")
    _write_csv(summary.csv_path, summary.rows)
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _render_settings(fonts, sample_rate, rate, program, tempo, tail_seconds, peak_dbfs, year,
                     max_note_seconds, voice) -> dict:
    """The sidecar's settings: a re-run with equal settings resumes, any change re-renders.

    Keys that are at their defaults are left out so renders written before the key existed
    stay resumable.
    """
    prints = [font.fingerprint if _procedural(font) else engine.soundfont_fingerprint(path)
              for font, path in fonts]
    settings = {
        "soundfont": prints[0] if len(prints) == 1 else prints, "sample_rate": sample_rate,
        "render_rate": rate, "program": program, "tempo": tempo, "tail_seconds": tail_seconds,
        "peak_dbfs": peak_dbfs, "year": year,
    }  # fmt: skip
    if max_note_seconds != MAX_NOTE_SECONDS:
        settings["max_note_seconds"] = max_note_seconds
    if voice is not None:
        settings["voice"] = voice
    return settings


def _load_font(path, rate: int) -> tuple[object, Path]:
    """(font, path) for a SoundFont file, or the procedural choir for the name ``sung``
    (:mod:`waveloom.data.synth.sung`, imported only then: it needs torch)."""
    if path is not None and str(path) == "sung":
        from waveloom.data.synth import sung

        return sung.SungChoir(), Path(sung.NAME)
    return engine.load_soundfont(path, rate)


def _procedural(font: object) -> bool:
    """Whether ``font`` renders pieces itself (the sung choir) rather than being a SoundFont."""
    return getattr(font, "procedural", False)


def _soundfont_paths(soundfont) -> list:
    """``soundfont`` as a list of paths (``[None]``: the default font); duplicates refused."""
    if soundfont is None or isinstance(soundfont, (str, Path)):
        return [soundfont]
    paths = list(soundfont) or [None]
    stems = [Path(p).stem if p is not None else None for p in paths]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"--soundfont given twice with the same file name ({stems}); give "
                          "each SoundFont once")
    return paths


def _font_jobs(pieces: list[_Piece], fonts: list) -> list[tuple[_Piece, object]]:
    """(piece, font) pairs: each piece once per font, named ``<name>-<font stem>`` when
    there are several fonts."""
    if len(fonts) == 1:
        return [(piece, fonts[0][0]) for piece in pieces]
    return [
        (dataclasses.replace(piece, name=f"{piece.name}-{_safe_name(path.stem).lower()}"), font)
        for font, path in fonts
        for piece in pieces
    ]


def _render_piece(piece: _Piece, summary: MidiSummary, synth: tuple, settings: dict,
                  paths: tuple[Path, Path, Path], max_note_seconds: float) -> dict | None:
    """Render one piece to its WAV and MIDI, log its row; None (and a skipped entry) when it
    cannot be loaded. ``synth`` is (font, render rate, sample rate)."""
    font, rate, sample_rate = synth
    midi_path, wav_path, rows_path = paths
    year = settings["year"]
    loaded = _load_piece(piece)
    if isinstance(loaded, str):
        summary.skipped.append((str(piece.source or piece.name), loaded))
        return None
    midi, label = loaded
    cut = cap_notes(midi, max_note_seconds)
    if cut:
        summary.warnings.append((str(piece.source or piece.name),
                                 f"{cut} note(s) longer than {max_note_seconds:g} s cut to "
                                 f"{max_note_seconds:g} s (--max-note-seconds)"))
    if _procedural(font):
        audio = font.render(midi, piece.name, sample_rate, settings["tail_seconds"])
    else:
        audio = render_midi_audio(midi, font, rate, sample_rate, settings["tail_seconds"])
    audio = _level(audio, settings["peak_dbfs"])
    pcm, _ = engine.to_pcm16(audio)
    engine.write_wav16(wav_path, pcm, sample_rate)
    _write_midi(midi, midi_path, piece.source if piece.verbatim and not cut else None)
    row = _csv_row(piece, _labels(midi, label), year, f"{year}/{midi_path.name}",
                   f"{year}/{wav_path.name}", len(pcm) / sample_rate)
    with rows_path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(row) + "\n")
    summary.rendered += 1
    return row


def cap_notes(midi: pretty_midi.PrettyMIDI, max_seconds: float) -> int:
    """Cut every note longer than ``max_seconds`` to that length, in place; how many were."""
    cut = 0
    for instrument in midi.instruments:
        for note in instrument.notes:
            if note.end - note.start > max_seconds:
                note.end = note.start + max_seconds
                cut += 1
    return cut


def _load_piece(piece: _Piece) -> tuple[pretty_midi.PrettyMIDI, str | None] | str:
    """``(midi, ensemble label or None)`` of a piece, or why it is skipped: a parser error
    (third-party parsers raise anything; the first line of the message is kept) or no notes."""
    try:
        midi, label = piece.load()
    except Exception as err:  # noqa: BLE001 - third-party parsers raise anything
        detail = (str(err).strip().splitlines() or [""])[0]
        return f"unreadable ({type(err).__name__}{': ' + detail if detail else ''})"
    if not any(inst.notes for inst in midi.instruments):
        return "no notes"
    return midi, label


def _csv_row(piece: _Piece, labels: tuple[str, str], year: int, rel_midi: str, rel_wav: str,
             duration: float) -> dict:
    """The CSV row of a rendered piece (MAESTRO's columns, then instrument and family);
    ``duration`` in seconds. The split hashes the title, so a composition never straddles
    splits."""
    instrument_str, family_str = labels
    return {
        "canonical_composer": piece.composer, "canonical_title": piece.title,
        "split": engine.stable_split(piece.title, ("train", "validation", "test")),
        "year": year, "midi_filename": rel_midi, "audio_filename": rel_wav,
        "duration": duration,
        "instrument_str": instrument_str, "family_str": family_str,
    }  # fmt: skip


def _level(audio: np.ndarray, peak_dbfs: float) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return audio * np.float32(10 ** (peak_dbfs / 20) / peak) if peak > 0 else audio


def _write_midi(midi: pretty_midi.PrettyMIDI, path: Path, source: Path | None) -> None:
    """Copy ``source`` verbatim when given (exactly what was rendered), else write ``midi``."""
    tmp = path.with_name(f".{path.name}.tmp")
    if source is not None:
        shutil.copyfile(source, tmp)
    else:
        midi.write(str(tmp))
    tmp.replace(path)


def render_rows(folder: str | Path) -> list[dict]:
    """The rows a ``render-midi`` run wrote into ``folder`` (split, audio_filename,
    midi_filename, instrument_str, ...), in render order: what benchmarks and scripts read to
    find a split's or an ensemble's renders."""
    path = Path(folder) / _ROWS
    if not path.is_file():
        raise DataError(f"{path} not found: give a folder written by waveloom data render-midi")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _done_rows(path: Path) -> dict[str, dict]:
    """Rows an earlier run logged, by audio_filename (a line cut short by a kill is ignored)."""
    rows = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return rows
    for line in lines:
        try:
            row = json.loads(line)
            rows[row["audio_filename"]] = row
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MAESTRO_COLUMNS + EXTRA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in MAESTRO_COLUMNS + EXTRA_COLUMNS})
    engine.write_text_atomic(path, text.getvalue())
