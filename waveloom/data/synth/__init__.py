"""Built-in offline data: notes and whole pieces rendered from a SoundFont (no download).

* :func:`render_notes` writes NSynth's exact layout (``examples.json`` + ``audio/*.wav``) from
  General MIDI presets: ``waveloom data render-notes``.
* :func:`render_midi` writes MAESTRO's layout (``maestro-v3.0.0.csv`` + ``<year>/*.midi|wav``)
  from music21's Bach chorales and/or a folder of MIDI files: ``waveloom data render-midi``.

Both default to the TimGM6mb SoundFont that pretty_midi bundles, render with TinySoundFont at
an oversampled rate, decimate with soxr, print nothing but tqdm bars and return a summary whose
``str()`` is a short report for the CLI. The GM -> NSynth family table is in :mod:`.gm`.
"""

from waveloom.data.synth.engine import default_soundfont, stable_split
from waveloom.data.synth.gm import ENSEMBLES, GM_FAMILY, family_of, instrument_str
from waveloom.data.synth.midi import MidiSummary, render_midi
from waveloom.data.synth.notes import NotesSummary, render_notes

__all__ = [
    "ENSEMBLES",
    "GM_FAMILY",
    "MidiSummary",
    "NotesSummary",
    "default_soundfont",
    "family_of",
    "instrument_str",
    "render_midi",
    "render_notes",
    "stable_split",
]
