"""Notes -> DDSP control curves: f0 (Hz) and A-weighted loudness (dB) per frame.

A DDSP model is played through two curves at its frame rate, so a score becomes curves:

* **f0**: each frame takes the pitch of the note sounding (or, between notes, of the last one,
  so the oscillator glides on instead of jumping to 0 Hz). ``portamento`` seconds glide
  log-linearly from one note's pitch into the next at its onset; ``vibrato = (cents, hz)`` adds
  ``cents * sin(2 pi hz (t - onset))`` to each note, from its onset.
* **loudness**: velocity sets a level in dB below the loudest the model has seen
  (:func:`velocity_db`); an amplitude envelope (linear attack of ``attack`` seconds, hold, linear
  release of ``release`` seconds after the note off) shapes it: ``level + 20 log10(envelope)``,
  floored at :data:`SILENT_DB`.
* **polyphony**: a MIDI file is cut into monophonic lines (:func:`midi_lines`): every non-drum
  instrument is split greedily into voices whose notes do not overlap; each line is rendered
  alone and the lines are summed by the caller.

A note is ``(start_s, end_s, pitch, velocity)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from waveloom.audio.tuning import midi_hz
from waveloom.errors import DataError

Note = tuple[float, float, int, int]

SILENT_DB = -100.0  # waveloom.audio.loudness.FLOOR_DB: what digital silence reads
VELOCITY_RANGE_DB = 40.0  # velocity 1 sits this far below velocity 127
ATTACK_S, RELEASE_S = 0.02, 0.1


def velocity_db(velocity: np.ndarray | float, top_db: float) -> np.ndarray:
    """MIDI velocity 0..127 -> loudness in dB: ``top_db`` at 127, linear in velocity down to
    ``top_db - VELOCITY_RANGE_DB`` at 0 (a player's dynamic range of about 40 dB)."""
    v = np.clip(np.asarray(velocity, dtype=np.float64), 0, 127) / 127.0
    return top_db - VELOCITY_RANGE_DB * (1.0 - v)


def _envelope(t: np.ndarray, start: float, end: float, attack: float, release: float
              ) -> np.ndarray:
    """Linear attack from ``start``, hold, linear release after ``end`` -> [0, 1] per time."""
    rise = np.clip((t - start) / max(attack, 1e-9), 0.0, 1.0)
    fall = np.clip(1.0 - (t - end) / max(release, 1e-9), 0.0, 1.0)
    return np.where(t < start, 0.0, np.minimum(rise, fall))


def line_loudness(notes: Sequence[Note], frames: int, frame_rate: float, top_db: float,
                  attack: float = ATTACK_S, release: float = RELEASE_S) -> np.ndarray:
    """Loudness (dB) ``[frames]`` of one monophonic line; the loudest note wins an overlap."""
    t = np.arange(frames) / float(frame_rate)
    level = np.full(frames, SILENT_DB)
    for start, end, _, velocity in notes:
        env = _envelope(t, start, end, attack, release)
        db = velocity_db(velocity, top_db) + 20.0 * np.log10(np.maximum(env, 1e-10))
        level = np.maximum(level, db)
    return np.maximum(level, SILENT_DB).astype(np.float32)


def line_f0(notes: Sequence[Note], frames: int, frame_rate: float,
            vibrato: tuple[float, float] = (0.0, 0.0), portamento: float = 0.0) -> np.ndarray:
    """f0 (Hz) ``[frames]`` of one monophonic line (see the module docstring)."""
    t = np.arange(frames) / float(frame_rate)
    ordered = sorted(notes)
    if not ordered:
        return np.full(frames, midi_hz(60), dtype=np.float32)
    pitch = np.full(frames, float(ordered[0][2]))
    cents, rate = vibrato
    for i, (start, _, note, _) in enumerate(ordered):
        after = t >= start
        pitch[after] = note
        if portamento > 0 and i > 0:
            prev = float(ordered[i - 1][2])
            glide = after & (t < start + portamento)
            pitch[glide] = prev + (note - prev) * (t[glide] - start) / portamento
        if cents:
            pitch[after] += cents / 100.0 * np.sin(2 * math.pi * rate * (t[after] - start))
    return midi_hz(pitch).astype(np.float32)


def split_voices(notes: Sequence[Note]) -> list[list[Note]]:
    """Greedy voice allocation: each note goes to the first voice free at its onset."""
    voices: list[list[Note]] = []
    for note in sorted(notes):
        for voice in voices:
            if voice[-1][1] <= note[0] + 1e-6:
                voice.append(note)
                break
        else:
            voices.append([note])
    return voices


def midi_lines(path: str | Path) -> tuple[list[list[Note]], float]:
    """Monophonic lines of a MIDI file (every non-drum instrument, split into voices) and the
    end time in seconds. DataError for an unreadable file or one with no pitched notes."""
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such MIDI file")
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # noqa: BLE001 (pretty_midi/mido raise many kinds)
        raise DataError(f"{path}: not a readable MIDI file ({str(err).splitlines()[0]})") from None
    pitched = [i for i in midi.instruments if not i.is_drum and i.notes]
    if not pitched:
        what = "drums only" if any(i.notes for i in midi.instruments) else "no notes"
        raise DataError(f"{path}: has {what}; a DDSP instrument plays pitched notes, give a "
                        "MIDI file with a melodic part")
    lines = []
    for instrument in pitched:
        notes = [(float(n.start), float(n.end), int(n.pitch), int(n.velocity))
                 for n in instrument.notes if n.end > n.start]
        lines.extend(split_voices(notes))
    end = max(n[1] for line in lines for n in line)
    return lines, end
