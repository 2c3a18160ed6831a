"""Performance events: MIDI <-> the token vocabulary of Oore et al. 2018 (Music Transformer).

Vocabulary (int tokens): NOTE_ON pitch 0-127, NOTE_OFF pitch 128-255, TIME_SHIFT 256-355
(shift by k = 1..100 steps of 10 ms, token ``255 + k``), VELOCITY 356-387 (32 bins of 4 MIDI
velocities), then PAD 388, BOS 389, EOS 390: :data:`VOCAB_SIZE` = 391.

Why our own and not miditok (measured with miditok 3.1.0, Dec 2026): its MIDILike and REMI
tokenizers round-trip the chorales exactly (they sit on the beat grid) and fast (3-45 ms a
piece), but they quantize time in fractions of a *beat*, not in absolute 10 ms steps. On 300
random notes at 120 bpm (expressive timing, as in MAESTRO) both moved onsets by up to 31 ms,
three times the 10 ms this vocabulary promises; it also pulls in huggingface-hub, tokenizers
and symusic. The encoder here is ~100 lines over pretty_midi, which the project already uses.

Encoding choices (deterministic):

* times are rounded to the 10 ms grid; a note never becomes shorter than one step;
* a gap longer than 1 s becomes several TIME_SHIFTs (100 steps each, then the remainder);
* at one instant the NOTE_OFFs come first, then the NOTE_ONs by (velocity, pitch); a VELOCITY
  token is written only when the velocity bin changes;
* a note struck again while it still sounds (overlapping same pitch) is ended at the new onset,
  since one key cannot sound twice; the decoder does the same with a repeated NOTE_ON;
* all non-drum tracks are merged and sustain pedal lengthens notes (as heard on a piano).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from waveloom.data.roll import midi_notes, pretty_midi_notes
from waveloom.errors import DataError

#: Token ranges and specials.
NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY = 0, 128, 256, 356
N_SHIFTS, N_VELOCITIES = 100, 32
PAD, BOS, EOS = 388, 389, 390
VOCAB_SIZE = 391
#: Seconds per TIME_SHIFT step.
STEP = 0.01
_VEL_WIDTH = 128 // N_VELOCITIES
_DEFAULT_BIN = N_VELOCITIES // 2


def velocity_bin(velocity: int | np.ndarray) -> int | np.ndarray:
    """MIDI velocity 0-127 -> bin 0-31 (4 velocities a bin)."""
    return np.clip(velocity, 0, 127) // _VEL_WIDTH


def bin_velocity(index: int) -> int:
    """Bin 0-31 -> the MIDI velocity it decodes to (the middle of the bin, at least 1)."""
    return int(max(1, index * _VEL_WIDTH + _VEL_WIDTH // 2))


def _quantized(notes: np.ndarray) -> np.ndarray:
    """float ``[N, 4]`` (s, s, pitch, velocity) -> int64 ``[N, 4]`` (step, step, pitch, bin),
    same-pitch overlaps ended at the next onset, duplicates of one onset dropped."""
    on = np.floor(notes[:, 0] / STEP + 0.5).astype(np.int64)
    off = np.floor(notes[:, 1] / STEP + 0.5).astype(np.int64)
    q = np.stack([on, np.maximum(off, on + 1), notes[:, 2].astype(np.int64),
                  velocity_bin(notes[:, 3].astype(np.int64))], axis=1)
    q = q[np.lexsort((q[:, 0], q[:, 2]))]  # by pitch, then onset
    same = q[1:, 2] == q[:-1, 2]
    keep = np.ones(len(q), bool)
    keep[:-1][same & (q[1:, 0] == q[:-1, 0])] = False  # two strikes at one instant: one note
    q = q[keep]
    same = q[1:, 2] == q[:-1, 2]
    cut = same & (q[1:, 0] < q[:-1, 1])
    q[:-1, 1][cut] = q[1:, 0][cut]
    return q


def _event_list(q: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(step, kind 0=off 1=on, velocity bin, pitch) in stream order (offs first at a step)."""
    offs = [(int(off), 0, 0, int(p)) for _, off, p, _ in q]
    ons = [(int(on), 1, int(v), int(p)) for on, _, p, v in q]
    return sorted(offs + ons)


def _shifts(steps: int) -> list[int]:
    """TIME_SHIFT tokens for a gap of ``steps`` (several when longer than 1 s)."""
    full, rest = divmod(steps, N_SHIFTS)
    tokens = [TIME_SHIFT + N_SHIFTS - 1] * full
    return tokens + ([TIME_SHIFT + rest - 1] if rest else [])


def notes_to_events(notes: np.ndarray) -> np.ndarray:
    """Note table float ``[N, 4]`` (onset s, offset s, pitch, velocity) -> int64 tokens ``[T]``."""
    q = _quantized(np.asarray(notes, np.float64).reshape(-1, 4))
    tokens: list[int] = []
    now, current_bin = 0, None
    for step, kind, vbin, pitch in _event_list(q):
        tokens += _shifts(step - now)
        now = step
        if kind == 0:
            tokens.append(NOTE_OFF + pitch)
            continue
        if vbin != current_bin:
            tokens.append(VELOCITY + vbin)
            current_bin = vbin
        tokens.append(NOTE_ON + pitch)
    return np.asarray(tokens, np.int64)


def midi_to_events(midi, *, sustain: bool = True, name: str | None = None) -> np.ndarray:
    """A MIDI file path or a ``pretty_midi.PrettyMIDI`` -> int64 event tokens ``[T]``.

    Raises DataError (one line, naming the file or ``name``) when it holds no notes.
    """
    if isinstance(midi, (str, Path)):
        notes, label = midi_notes(midi, sustain=sustain), str(midi)
    else:
        notes, label = pretty_midi_notes(midi, sustain=sustain), name or "<PrettyMIDI>"
    notes = notes[(notes[:, 2] >= 0) & (notes[:, 2] <= 127)]
    if len(notes) == 0:
        raise DataError(f"{label}: no notes to encode (empty MIDI); give a MIDI file with notes")
    return notes_to_events(notes)


def events_to_notes(tokens) -> np.ndarray:
    """Tokens -> float64 note table ``[N, 4]`` sorted by onset (inverse of notes_to_events).

    Tolerant of any token stream (a model's output): PAD and BOS are skipped, EOS ends it, a
    NOTE_OFF of a silent pitch is ignored, a repeated NOTE_ON ends the sounding note, and notes
    still on at the end stop one step after the last event (never shorter than one step).
    """
    now, vbin = 0, _DEFAULT_BIN
    sounding: dict[int, tuple[int, int]] = {}
    notes: list[tuple[int, int, int, int]] = []

    def close(pitch: int) -> None:
        start, b = sounding.pop(pitch)
        notes.append((start, max(now, start + 1), pitch, b))

    for token in np.asarray(tokens, np.int64).reshape(-1):
        t = int(token)
        if t == EOS:
            break
        if NOTE_ON <= t < NOTE_OFF:
            if t in sounding:
                close(t)
            sounding[t] = (now, vbin)
        elif NOTE_OFF <= t < TIME_SHIFT:
            if t - NOTE_OFF in sounding:
                close(t - NOTE_OFF)
        elif TIME_SHIFT <= t < VELOCITY:
            now += t - TIME_SHIFT + 1
        elif VELOCITY <= t < PAD:
            vbin = t - VELOCITY
    for pitch in list(sounding):
        close(pitch)
    table = np.array(
        [(a * STEP, b * STEP, p, bin_velocity(v)) for a, b, p, v in notes], np.float64
    ).reshape(-1, 4)
    return table[np.lexsort((table[:, 2], table[:, 0]))]


def events_to_midi(tokens, *, program: int = 0):
    """Tokens -> ``pretty_midi.PrettyMIDI`` with one instrument (GM ``program``, default piano)."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=int(program))
    for start, end, pitch, velocity in events_to_notes(tokens):
        instrument.notes.append(pretty_midi.Note(int(velocity), int(pitch), start, end))
    midi.instruments.append(instrument)
    return midi
