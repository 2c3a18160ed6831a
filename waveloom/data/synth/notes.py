"""NSynth-style single notes rendered from a SoundFont: ``waveloom data render-notes``.

Each note is played at t=0, released at ``hold_seconds`` and recorded for ``hold + release``
seconds (NSynth: 3 s + 1 s), then written in NSynth's exact layout::

    OUT/examples.json            {note_str: {note_str, note, pitch, velocity, instrument, ...}}
    OUT/audio/<note_str>.wav     16-bit PCM mono at ``sample_rate``
    OUT/render-notes.json        the settings of the run (to resume it) and its global gain

Level: SoundFonts encode loudness per preset and per velocity, and that is information a model
should see, so notes are NOT normalised one by one. One global gain maps the loudest note's
peak to ``peak_dbfs``; it needs every peak first, so the run has two passes: pass 1 renders and
measures every note and keeps the decimated audio of as many as fit in ``cache_mb``; pass 2
scales and writes them, rendering the notes that did not fit again (bit-identically: every
note starts from a fresh synth), so memory stays bounded for any number of notes.

Splits: NSynth's official splits hold out whole instruments; a few GM programs make that too
coarse, so each note gets a ``split`` key from a stable hash of its note_str (80/10/10).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from waveloom.data.sources import NSYNTH_FAMILIES
from waveloom.data.synth import engine, gm
from waveloom.errors import ConfigError, DataError

_SIDECAR = "render-notes.json"


@dataclass(frozen=True)
class NoteJob:
    """One note to render: GM program, MIDI pitch and velocity (1-127)."""

    program: int
    pitch: int
    velocity: int

    @property
    def note_str(self) -> str:
        return f"{gm.instrument_str(self.program)}-{self.pitch:03d}-{self.velocity:03d}"


@dataclass
class NotesSummary:
    """What :func:`render_notes` did. ``silent`` lists the note_strs dropped below ``min_rms``."""

    out_dir: Path
    examples: int = 0  # notes in examples.json
    rendered: int = 0  # wavs written by this run
    resumed: int = 0  # wavs kept from an interrupted run with the same settings
    silent: list[str] = field(default_factory=list)
    missing_presets: list[int] = field(default_factory=list)  # programs absent from the font
    skipped_programs: list[int] = field(default_factory=list)  # GM programs with no family
    gain: float = 1.0  # the one linear gain applied to every note
    loudest: str = ""  # note_str whose peak set the gain
    clipped_samples: int = 0
    clipped_notes: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    sample_rate: int = 16000
    render_rate: int = 48000
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def gain_db(self) -> float:
        return 20.0 * math.log10(self.gain) if self.gain > 0 else float("-inf")

    @property
    def notes_per_second(self) -> float:
        return (self.rendered + self.resumed) / self.wall_seconds if self.wall_seconds else 0.0

    def __str__(self) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items()))
        lines = [
            f"{self.examples} notes in {self.out_dir / 'examples.json'} ({splits}); "
            f"{self.rendered} rendered, {self.resumed} kept from an earlier run",
            f"gain {self.gain_db:+.1f} dB (set by {self.loudest}); "
            f"{self.clipped_samples} clipped samples in {self.clipped_notes} notes",
            f"{len(self.silent)} silent notes dropped",
        ]
        if self.missing_presets:
            lines.append(f"programs missing from the SoundFont: {self.missing_presets}")
        if self.skipped_programs:
            lines.append(f"programs with no NSynth family, skipped: {self.skipped_programs}")
        return "\n".join(lines)


def _midi_values(values: Iterable[int], name: str, low: int) -> list[int]:
    out = sorted({int(v) for v in values})
    if not out:
        raise ConfigError(f"{name}: empty; give at least one value in {low}-127")
    bad = [v for v in out if not low <= v <= 127]
    if bad:
        raise ConfigError(f"{name}: {bad[0]} is outside the MIDI range {low}-127")
    return out


def example_of(job: NoteJob, sample_rate: int, preset_name: str, split: str) -> dict:
    """The NSynth examples.json entry of ``job`` (plus gm_program, preset_name, split)."""
    family = gm.family_of(job.program)
    return {
        "note_str": job.note_str,
        "note": job.program * 16384 + job.pitch * 128 + job.velocity,  # unique and stable
        "pitch": job.pitch,
        "velocity": job.velocity,
        "instrument": job.program,
        "instrument_str": gm.instrument_str(job.program),
        "instrument_family": NSYNTH_FAMILIES.index(family),
        "instrument_family_str": family,
        "instrument_source": gm.RENDER_SOURCE,
        "instrument_source_str": gm.NSYNTH_SOURCES[gm.RENDER_SOURCE],
        "sample_rate": int(sample_rate),
        "qualities": [0] * len(gm.NSYNTH_QUALITIES),  # unlabelled: a render has no ears
        "qualities_str": [],
        "gm_program": job.program,
        "gm_name": gm.gm_name(job.program),
        "preset_name": preset_name,
        "split": split,
    }


class _NotePlayer:
    """Renders one note at the internal rate into a reused buffer (pass 1 and pass 2)."""

    def __init__(self, font, render_rate: int, sample_rate: int, hold_s: float, total_s: float):
        self.font, self.render_rate, self.sample_rate = font, render_rate, sample_rate
        self.length = round(total_s * sample_rate)  # samples at the output rate
        ratio = render_rate // sample_rate if render_rate % sample_rate == 0 else None
        total = self.length * ratio if ratio else round(total_s * render_rate)
        self.hold = min(round(hold_s * render_rate), total)
        self.buffer = np.zeros(total, dtype=np.float32)

    def raw(self, preset: int, job: NoteJob) -> np.ndarray:
        """[T_render] float32 at the SoundFont's own level; valid until the next call."""
        font = engine.fresh(self.font, self.render_rate)
        font.channel_set_preset_index(0, preset)
        font.channel_set_volume(0, engine.velocity_volume(job.velocity))
        font.channel_note_on(0, job.pitch, job.velocity / 127.0)
        engine.render_into(font, self.buffer[: self.hold])
        font.channel_note_off(0, job.pitch)
        engine.render_into(font, self.buffer[self.hold :])
        return self.buffer

    def decimated(self, raw: np.ndarray) -> np.ndarray:
        """[T] float32 at ``sample_rate`` (a new array) from :meth:`raw`'s output."""
        return engine.decimate(raw, self.render_rate, self.sample_rate, self.length)


def render_notes(
    out_dir: str | Path,
    soundfont: str | Path | None = None,
    programs: Iterable[int] = range(0, 8),
    pitches: Iterable[int] = range(36, 85),
    velocities: Iterable[int] = (50, 100),
    sample_rate: int = 16000,
    hold_seconds: float = 3.0,
    release_seconds: float = 1.0,
    min_rms: float = 1e-4,
    progress: bool = True,
    *,
    gain: float | None = None,
    peak_dbfs: float = -1.0,
    render_rate: int | None = None,
    cache_mb: float = 512.0,
) -> NotesSummary:
    """Render every (program, pitch, velocity) note into an NSynth-layout folder ``out_dir``.

    ``programs`` are GM programs 0-127 (bank 0); sound effects (119-127) have no NSynth family
    and are skipped and listed. The label is the key played, which is not always the pitch
    heard: the bundled TimGM6mb font's organs 16-19 sound a 16' rank, so pitch estimators put
    them an octave below their label (measured in BENCHMARKS.md); prefer program 20 (reed organ)
    for pitch-accuracy benchmarks. ``min_rms`` is full-scale RMS at the SoundFont's own level
    (before the global gain, so which notes are dropped does not depend on the other notes):
    notes below it (out of a preset's range, or a preset the font lacks) are dropped and listed.
    ``gain`` fixes the global linear gain (e.g. to match an earlier render); by default it maps
    the loudest peak to ``peak_dbfs``. ``render_rate`` is the internal oversampled rate
    (default: see :func:`engine.render_rate_for`). ``cache_mb`` bounds the audio held between
    the two passes (see the module docstring; 0 renders every note twice). Re-running with the
    same settings keeps the wavs already written, so an interrupted run resumes. Prints nothing
    except tqdm bars.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    requested = _midi_values(programs, "programs", 0)
    pitch_list = _midi_values(pitches, "pitches", 0)
    velocity_list = _midi_values(velocities, "velocities", 1)
    if hold_seconds < 0 or release_seconds < 0 or hold_seconds + release_seconds <= 0:
        raise ConfigError(
            f"hold_seconds={hold_seconds}, release_seconds={release_seconds}: "
            "need >= 0 each and a positive total"
        )
    rate = engine.render_rate_for(sample_rate, render_rate)
    font, font_path = engine.load_soundfont(soundfont, rate)

    summary = NotesSummary(out_dir=out_dir, sample_rate=int(sample_rate), render_rate=rate)
    presets = _resolve_presets(font, requested, summary)
    jobs = [NoteJob(p, k, v) for p in presets for k in pitch_list for v in velocity_list]
    player = _NotePlayer(font, rate, int(sample_rate), hold_seconds, hold_seconds + release_seconds)

    peaks, rms, cache = _measure(jobs, presets, player, min_rms, cache_mb, progress)
    keep = _set_gain(summary, jobs, peaks, rms, min_rms, gain, peak_dbfs, font_path)
    settings = {
        "soundfont": engine.soundfont_fingerprint(font_path),
        "programs": sorted(presets), "pitches": pitch_list, "velocities": velocity_list,
        "sample_rate": int(sample_rate), "render_rate": rate, "hold_seconds": hold_seconds,
        "release_seconds": release_seconds, "min_rms": min_rms, "gain": summary.gain,
    }  # fmt: skip
    examples = _write_notes(summary, settings, jobs, np.flatnonzero(keep), presets, player,
                            cache, progress)
    summary.examples = len(examples)
    summary.splits = dict(Counter(e["split"] for e in examples.values()))
    summary.audio_seconds = len(examples) * player.length / sample_rate
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _resolve_presets(font, requested: list[int], summary: NotesSummary) -> dict[int, int]:
    """GM program -> the font's preset index (-1 where the font lacks it), for every requested
    program with an NSynth family. Records the skipped (sound effect) and missing programs in
    ``summary``; a missing preset's notes then render as silence and are dropped by min_rms."""
    summary.skipped_programs = [p for p in requested if gm.family_of(p) is None]
    presets: dict[int, int] = {}
    for program in requested:
        if gm.family_of(program) is None:
            continue
        presets[program] = font.get_preset_index(0, program)
        if presets[program] < 0:
            summary.missing_presets.append(program)
    if not presets:
        raise ConfigError(f"programs: {requested} are all sound effects with no NSynth family")
    return presets


def _measure(
    jobs: list[NoteJob], presets: dict[int, int], player: _NotePlayer, min_rms: float,
    cache_mb: float, progress: bool,
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Pass 1: peak and RMS [len(jobs)] of every note at the SoundFont's own level, plus the
    decimated audio of the audible notes that fit in ``cache_mb`` (job index -> [T] float32),
    so pass 2 need not render them again."""
    peaks = np.zeros(len(jobs))
    rms = np.zeros(len(jobs))
    cache: dict[int, np.ndarray] = {}
    room = int(cache_mb * 2**20) // (4 * player.length)  # notes that fit in cache_mb
    for i, job in enumerate(tqdm(jobs, desc="measure", unit="note", disable=not progress)):
        if presets[job.program] >= 0:
            raw = player.raw(presets[job.program], job)
            peaks[i] = float(np.max(np.abs(raw)))
            rms[i] = float(np.sqrt(np.mean(np.square(raw, dtype=np.float64))))
            if rms[i] >= min_rms and len(cache) < room:
                cache[i] = player.decimated(raw)
    return peaks, rms, cache


def _set_gain(
    summary: NotesSummary, jobs: list[NoteJob], peaks: np.ndarray, rms: np.ndarray,
    min_rms: float, gain: float | None, peak_dbfs: float, font_path: Path,
) -> np.ndarray:
    """Drop the silent notes and choose the one global gain (``gain``, or the one that maps
    the loudest kept peak to ``peak_dbfs``); fills ``summary.silent``, ``loudest`` and
    ``gain``. Returns the mask [len(jobs)] of the notes kept."""
    keep = rms >= min_rms
    summary.silent = [job.note_str for job, kept in zip(jobs, keep) if not kept]
    if not keep.any():
        raise DataError(
            f"{font_path}: all {len(jobs)} notes are below min_rms={min_rms:g}; "
            "check programs and pitches, or lower min_rms"
        )
    loudest = int(np.argmax(np.where(keep, peaks, -1.0)))
    summary.loudest = jobs[loudest].note_str
    summary.gain = float(gain) if gain is not None else 10 ** (peak_dbfs / 20) / peaks[loudest]
    return keep


def _write_notes(
    summary: NotesSummary, settings: dict, jobs: list[NoteJob], kept: np.ndarray,
    presets: dict[int, int], player: _NotePlayer, cache: dict[int, np.ndarray], progress: bool,
) -> dict[str, dict]:
    """Pass 2: scale every kept note by ``summary.gain`` and write its wav (rendering again
    what pass 1 did not cache; complete wavs of an earlier run with the same ``settings`` are
    kept), then examples.json. Counts rendered, resumed and clipped notes in ``summary``;
    returns the examples.json entries by note_str."""
    out_dir, sample_rate = summary.out_dir, summary.sample_rate
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    sidecar = out_dir / _SIDECAR
    resumable = engine.same_settings(sidecar, settings)
    engine.write_text_atomic(sidecar, json.dumps(settings, indent=1))
    examples: dict[str, dict] = {}
    for i in tqdm(kept, desc="write", unit="note", disable=not progress):
        job = jobs[i]
        note_str = job.note_str
        preset = presets[job.program]
        split = engine.stable_split(note_str)
        examples[note_str] = example_of(job, sample_rate, player.font.get_preset_name(preset),
                                        split)
        path = audio_dir / f"{note_str}.wav"
        if resumable and engine.wav_frames(path) == player.length:
            summary.resumed += 1
            cache.pop(int(i), None)
            continue
        audio = cache.pop(int(i), None)
        if audio is None:
            audio = player.decimated(player.raw(preset, job))
        audio *= np.float32(summary.gain)
        pcm, clipped = engine.to_pcm16(audio)
        summary.clipped_samples += clipped
        summary.clipped_notes += clipped > 0
        engine.write_wav16(path, pcm, sample_rate)
        summary.rendered += 1
    engine.write_text_atomic(out_dir / "examples.json", json.dumps(examples, indent=1))
    return examples
