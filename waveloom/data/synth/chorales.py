"""Bach chorales from music21's bundled corpus, turned into multi-track MIDI (no download).

music21 ships 371 four-part chorales (MusicXML); we take them in the order of
``music21.corpus.chorales.Iterator`` (fixed by music21, so the first N are always the same) and
write each voice part as its own pretty_midi instrument. Choices (all deterministic):

* tempo: constant (default 80 quarter notes per minute); fermatas are not held longer;
* ties are merged into one note; grace notes (zero duration) are dropped;
* velocity: 90 for the top part (the melody), 72 for the others, like an ensemble that lets the
  tune sing;
* timbre: by default chorale i is played by ensemble ``i mod 4`` of
  :data:`~waveloom.data.synth.gm.ROTATION` (organ, strings, choir, winds), so a render holds
  several timbres; pass ``program`` (a GM number or an ensemble name) to fix it.
"""

from __future__ import annotations

import re

import pretty_midi

from waveloom.data.synth import gm
from waveloom.errors import ConfigError

COMPOSER = "Johann Sebastian Bach"
#: The chorales' parts, top down (music21 lists them in this order), by ``--voice`` name.
VOICES = ("soprano", "alto", "tenor", "bass")
_MELODY_VELOCITY, _INNER_VELOCITY = 90, 72


def chorale_ids(count: int) -> list[str]:
    """The first ``count`` corpus paths of music21's chorale iterator, e.g. 'bach/bwv269'."""
    from music21.corpus import chorales

    if count < 0:
        raise ConfigError(f"chorales={count}: must be >= 0")
    ids: list[str] = []
    for path in chorales.Iterator(returnType="filename"):
        if len(ids) >= count:
            break
        ids.append(str(path))
    if len(ids) < count:
        raise ConfigError(f"chorales={count}: music21 bundles only {len(ids)} chorales")
    return ids


def title_of(chorale_id: str) -> str:
    """'bach/bwv153.1' -> 'Chorale BWV 153.1' (the catalogue number names the chorale)."""
    stem = chorale_id.rsplit("/", 1)[-1]
    match = re.fullmatch(r"bwv(.+)", stem)
    return f"Chorale BWV {match.group(1)}" if match else f"Chorale {stem}"


def name_of(chorale_id: str) -> str:
    """File stem of a chorale: 'bach/bwv153.1' -> 'bach-bwv153.1'."""
    return chorale_id.replace("/", "-")


def ensemble_for(index: int, program: int | str | None) -> tuple[str, tuple[int, ...]]:
    """(instrument label, GM programs per part) of chorale number ``index``."""
    if program is None:
        name = gm.ROTATION[index % len(gm.ROTATION)]
        return name, gm.ENSEMBLES[name]
    if isinstance(program, str) and not program.isdigit():
        if program not in gm.ENSEMBLES:
            raise ConfigError(
                f"program={program!r}: use a GM program 0-127 or one of {', '.join(gm.ENSEMBLES)}"
            )
        return program, gm.ENSEMBLES[program]
    number = int(program)
    if not 0 <= number <= 127:
        raise ConfigError(f"program={number}: a GM program is 0-127")
    return gm.gm_name(number).lower().replace(" ", "_"), (number,)


def chorale_midi(
    chorale_id: str, programs: tuple[int, ...], tempo: float
) -> pretty_midi.PrettyMIDI:
    """Parse a corpus chorale and return it as MIDI, one instrument per part."""
    from music21 import corpus

    if tempo <= 0:
        raise ConfigError(f"tempo={tempo}: must be a positive number of quarter notes per minute")
    score = corpus.parse(chorale_id)
    seconds_per_quarter = 60.0 / tempo
    midi = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    for i, part in enumerate(score.parts):
        program = programs[min(i, len(programs) - 1)]
        instrument = pretty_midi.Instrument(program=program, name=str(part.partName or f"part {i}"))
        velocity = _MELODY_VELOCITY if i == 0 else _INNER_VELOCITY
        for element in part.flatten().stripTies().notes:
            length = float(element.quarterLength)
            if length <= 0:
                continue
            start = float(element.offset) * seconds_per_quarter
            end = start + length * seconds_per_quarter
            for pitch in element.pitches:
                instrument.notes.append(pretty_midi.Note(velocity, int(pitch.midi), start, end))
        if instrument.notes:
            midi.instruments.append(instrument)
    return midi


def voice_index(voice: str) -> int:
    """'soprano' -> 0 ... 'bass' -> 3 (ConfigError naming the choices otherwise)."""
    if voice not in VOICES:
        raise ConfigError(f"voice={voice!r}: use one of {', '.join(VOICES)}")
    return VOICES.index(voice)


def keep_voice(midi: pretty_midi.PrettyMIDI, index: int) -> pretty_midi.PrettyMIDI:
    """Keep only the ``index``-th pitched part (a solo melodic line), in place; a piece with
    fewer parts keeps none (and is skipped by the renderer as having no notes)."""
    pitched = [i for i in midi.instruments if not i.is_drum]
    midi.instruments = [pitched[index]] if index < len(pitched) else []
    return midi
