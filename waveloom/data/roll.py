"""Piano rolls from MIDI: parse once into a note table, render any window at any hop.

``prepare`` parses each MIDI file once with pretty_midi (:func:`midi_notes`), converts the
note times to samples at the cache's rate (:func:`notes_to_samples`) and stores the table in the
cache. Training then renders the roll of a window directly from that table
(:func:`roll_window`): no MIDI parsing in data-loader workers, and the hop is a training-time
choice instead of being frozen into the cache.

Note table columns (int64 ``[N, 5]``, sorted by onset): onset sample, offset sample (exclusive),
MIDI pitch, velocity, running maximum of the offsets. The last column is what makes a window
query O(log N + notes in the window): a note can overlap ``[a, b)`` only if its onset is below
``b`` (a prefix, by sorting) and the running max of offsets up to it exceeds ``a`` (a suffix,
because the running max never decreases).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from waveloom.errors import DataError

#: Columns of the note table.
ONSET, OFFSET, PITCH, VELOCITY, MAX_OFFSET = range(5)

_SUSTAIN_CC = 64


def _sustain_intervals(control_changes, end_time: float) -> np.ndarray:
    """[K, 2] (down, up) seconds of the sustain pedal (CC64 >= 64 means down)."""
    intervals = []
    down_at = None
    for cc in sorted(control_changes, key=lambda c: c.time):
        if cc.number != _SUSTAIN_CC:
            continue
        if cc.value >= 64 and down_at is None:
            down_at = cc.time
        elif cc.value < 64 and down_at is not None:
            intervals.append((down_at, cc.time))
            down_at = None
    if down_at is not None:
        intervals.append((down_at, max(end_time, down_at)))
    return np.asarray(intervals, dtype=np.float64).reshape(-1, 2)


def _apply_sustain(notes: np.ndarray, pedal: np.ndarray) -> np.ndarray:
    """Extend notes released while the pedal is down to the pedal release.

    As in Onsets and Frames (Hawthorne et al., 2018): a note whose key is released while the
    sustain pedal is held keeps sounding until the pedal comes up, or until the same pitch is
    struck again, whichever is first; it never becomes shorter than the key press.
    """
    if len(notes) == 0 or len(pedal) == 0:
        return notes
    notes = notes.copy()
    end = notes[:, 1]
    k = np.searchsorted(pedal[:, 0], end, side="right") - 1
    held = (k >= 0) & (end < pedal[np.maximum(k, 0), 1])
    extended = np.where(held, pedal[np.maximum(k, 0), 1], end)
    # Next onset of the same pitch (inf when none): sort by (pitch, onset), look one ahead.
    order = np.lexsort((notes[:, 0], notes[:, 2]))
    next_onset = np.full(len(notes), np.inf)
    same = notes[order[1:], 2] == notes[order[:-1], 2]
    next_onset[order[:-1][same]] = notes[order[1:][same], 0]
    notes[:, 1] = np.maximum(end, np.minimum(extended, next_onset))
    return notes


def midi_notes(path: str | Path, *, sustain: bool = True) -> np.ndarray:
    """Notes of all non-drum tracks of a MIDI file: float64 ``[N, 4]`` sorted by onset.

    Columns: onset (s), offset (s), pitch, velocity. With ``sustain`` the sustain pedal of each
    track lengthens its notes (see :func:`_apply_sustain`), which is what is actually heard on
    a piano recording such as MAESTRO. Raises DataError naming the file if it cannot be parsed.
    """
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: MIDI file not found")
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # mido/pretty_midi raise many types for bad files
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(f"{path}: cannot read MIDI ({reason}); re-export the file") from None
    return pretty_midi_notes(midi, sustain=sustain)


def pretty_midi_notes(midi, *, sustain: bool = True) -> np.ndarray:
    """:func:`midi_notes` of an already parsed ``pretty_midi.PrettyMIDI``: float64 ``[N, 4]``."""
    end_time = midi.get_end_time()
    tables = []
    for inst in midi.instruments:
        if inst.is_drum or not inst.notes:
            continue
        table = np.array([(n.start, n.end, n.pitch, n.velocity) for n in inst.notes], np.float64)
        if sustain:
            table = _apply_sustain(table, _sustain_intervals(inst.control_changes, end_time))
        tables.append(table)
    if not tables:
        return np.zeros((0, 4), np.float64)
    notes = np.concatenate(tables)
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def notes_to_samples(notes: np.ndarray, sample_rate: int) -> np.ndarray:
    """Seconds -> sample table: int64 ``[N, 5]`` (see module docstring), sorted by onset.

    Every note lasts at least one sample, so a very short grace note is never lost.
    """
    notes = np.asarray(notes, np.float64).reshape(-1, 4)
    table = np.zeros((len(notes), 5), np.int64)
    if len(notes) == 0:
        return table
    table[:, ONSET] = np.maximum(np.round(notes[:, 0] * sample_rate), 0)
    table[:, OFFSET] = np.maximum(np.round(notes[:, 1] * sample_rate), table[:, ONSET] + 1)
    table[:, PITCH] = np.clip(notes[:, 2], 0, 127)
    table[:, VELOCITY] = np.clip(notes[:, 3], 0, 127)
    table = table[np.argsort(table[:, ONSET], kind="stable")]
    table[:, MAX_OFFSET] = np.maximum.accumulate(table[:, OFFSET])
    return table


def roll_window(
    table: np.ndarray, start: int, n_frames: int, hop: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Piano roll of samples ``[start, start + n_frames * hop)``: float32 ``[128, n_frames]``.

    Frame ``k`` covers samples ``[start + k*hop, start + (k+1)*hop)``; a note is on in every
    frame it overlaps, with value velocity / 127 (the loudest note wins where two overlap).
    ``start`` may be negative (a left-padded window): frames before sample 0 stay empty.
    """
    roll = out if out is not None else np.zeros((128, n_frames), np.float32)
    if out is not None:
        roll.fill(0.0)
    if len(table) == 0 or n_frames <= 0:
        return roll
    stop = start + n_frames * hop
    lo = int(np.searchsorted(table[:, MAX_OFFSET], start, side="right"))
    hi = int(np.searchsorted(table[:, ONSET], stop, side="left"))
    if hi <= lo:
        return roll
    cand = table[lo:hi]
    cand = cand[cand[:, OFFSET] > start]
    first = np.maximum((cand[:, ONSET] - start) // hop, 0)
    last = np.minimum(-((start - cand[:, OFFSET]) // hop), n_frames)  # ceil division
    values = cand[:, VELOCITY].astype(np.float32) / 127.0
    for pitch, f0, f1, value in zip(cand[:, PITCH], first, last, values):
        row = roll[pitch, f0:f1]
        np.maximum(row, value, out=row)
    return roll
