"""A score -> monophonic lines ordered by register (top line first), for per-voice rendering.

Why not :func:`waveloom.data.midi_controls.split_voices`: it gives each note to the first free
voice, which is right for playing but mixes registers. A Music Transformer writes all four
chorale parts into one track, and the renderer must hand the soprano to one instrument and the
bass to another. Here, at each onset the notes that start there (highest first) go to the free
voices with the least total pitch movement, keeping their order (the higher note never takes a
lower voice than a lower note: no crossing at one instant); a note with no free voice opens a
new one, or, past ``max_voices``, takes the voice holding the oldest note and cuts that note
off (an undertrained model leaves notes hanging: without the cap a 30-s piece had 27 lines).
The lines are then sorted by mean pitch, highest first.

A note is ``(start_s, end_s, pitch, velocity)`` as in :mod:`waveloom.data.midi_controls`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from waveloom.data.midi_controls import Note
from waveloom.errors import DataError

_EPS = 1e-6  # seconds: a note ending this close to an onset has freed its voice


def _ordered_assignment(pitches: Sequence[int], free: Sequence[float]) -> list[int]:
    """Indices into ``free`` (voices' last pitches, highest first) for ``pitches`` (highest
    first, ``len(pitches) <= len(free)``), order-preserving, least total |pitch - last|."""
    n, m = len(pitches), len(free)
    inf = float("inf")
    cost = np.full((n + 1, m + 1), inf)
    cost[0, :] = 0.0
    for i in range(1, n + 1):
        for j in range(i, m + 1):
            take = cost[i - 1, j - 1] + abs(pitches[i - 1] - free[j - 1])
            cost[i, j] = min(cost[i, j - 1], take)
    picks, j = [], m
    for i in range(n, 0, -1):
        while cost[i, j] == cost[i, j - 1]:
            j -= 1
        picks.append(j - 1)
        j -= 1
    return picks[::-1]


def _steal(voices: list[list[Note]], free: list[list[Note]], onset: float, count: int) -> None:
    """Free ``count`` busy voices for notes starting at ``onset``: those holding the oldest
    notes, each cut off at ``onset`` (a synthesiser's voice stealing)."""
    if count <= 0:
        return
    busy = [v for v in voices if not any(v is f for f in free) and v[-1][0] < onset - _EPS]
    for voice in sorted(busy, key=lambda v: v[-1][0])[:count]:
        start, _, pitch, velocity = voice[-1]
        voice[-1] = (start, onset, pitch, velocity)
        free.append(voice)


def register_voices(notes: Sequence[Note], max_voices: int | None = None) -> list[list[Note]]:
    """Monophonic lines of ``notes``, highest (by mean pitch) first; see the module docstring.

    ``max_voices``: at most this many lines. A note with no free voice then cuts off the oldest
    held note (a model's notes left hanging), or, when none is older, is dropped.
    """
    voices: list[list[Note]] = []
    by_onset: dict[float, list[Note]] = {}
    for note in sorted(notes):
        by_onset.setdefault(note[0], []).append(note)
    for onset in sorted(by_onset):
        group = sorted(by_onset[onset], key=lambda n: -n[2])
        free = [v for v in voices if v[-1][1] <= onset + _EPS]
        if max_voices is not None:
            room = max_voices - len(voices)
            _steal(voices, free, onset, len(group) - len(free) - room)
            group = group[: len(free) + room]
        free.sort(key=lambda v: -v[-1][2])
        placed = group[: len(free)]
        picks = _ordered_assignment([n[2] for n in placed], [v[-1][2] for v in free])
        for note, k in zip(placed, picks):
            free[k].append(note)
        voices.extend([note] for note in group[len(free):])
    return sorted(voices, key=lambda v: -float(np.mean([n[2] for n in v])))


def load_midi(midi, what: str | None = None):
    """``midi`` (a path or a ``pretty_midi.PrettyMIDI``) -> (PrettyMIDI, its name for messages).
    A one-line DataError for a missing or unreadable file."""
    import pretty_midi

    if isinstance(midi, pretty_midi.PrettyMIDI):
        return midi, what or "<PrettyMIDI>"
    path = Path(midi)
    if not path.is_file():
        raise DataError(f"{path}: no such MIDI file")
    try:
        return pretty_midi.PrettyMIDI(str(path)), what or str(path)
    except Exception as err:  # noqa: BLE001 (pretty_midi/mido raise many kinds)
        raise DataError(f"{path}: not a readable MIDI file ({str(err).splitlines()[0]})") from None


def score_lines(midi, what: str | None = None, max_voices: int | None = None
                ) -> tuple[list[list[Note]], float]:
    """Every non-drum part of ``midi`` (path or PrettyMIDI) split by :func:`register_voices`
    (``max_voices`` lines a part at most), all lines sorted highest first, and the score's end
    in seconds. DataError (one line, naming the file) when it has no pitched notes."""
    midi, label = load_midi(midi, what)
    lines: list[list[Note]] = []
    for instrument in midi.instruments:
        if instrument.is_drum:
            continue
        notes = [(float(n.start), float(n.end), int(n.pitch), int(n.velocity))
                 for n in instrument.notes if n.end > n.start]
        lines.extend(register_voices(notes, max_voices))
    if not lines:
        what_is = "drums only" if any(i.notes for i in midi.instruments) else "no notes"
        raise DataError(f"{label}: has {what_is}; the renderer plays pitched notes, give a MIDI "
                        "file with a melodic part")
    lines.sort(key=lambda v: -float(np.mean([n[2] for n in v])))
    return lines, max(n[1] for line in lines for n in line)


def lines_to_midi(lines: Sequence[Sequence[Note]], names: Sequence[str],
                  programs: Sequence[int]):
    """One MIDI track per line (named ``names[i]``, GM ``programs[i]``): a score that
    :func:`score_lines` cuts back into the same lines."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    for line, name, program in zip(lines, names, programs):
        track = pretty_midi.Instrument(program=int(program), name=str(name))
        track.notes = [pretty_midi.Note(int(v), int(p), float(a), float(b))
                       for a, b, p, v in line]
        midi.instruments.append(track)
    return midi
