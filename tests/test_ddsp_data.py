"""DDSP data (issue #22): solo chorale voices from render-midi, MIDI -> control curves."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from waveloom.cli import main
from waveloom.data.midi_controls import (
    SILENT_DB,
    line_f0,
    line_loudness,
    midi_lines,
    split_voices,
    velocity_db,
)
from waveloom.errors import ConfigError, DataError


def test_render_midi_voice_renders_one_solo_part(tmp_path):
    out = tmp_path / "solo"
    assert main(["data", "render-midi", str(out), "--chorales", "1", "--voice", "soprano",
                 "--program", "40", "-q"]) == 0
    (midi_path,) = sorted(out.rglob("*.midi"))
    assert midi_path.stem.endswith("-soprano")
    midi = pretty_midi.PrettyMIDI(str(midi_path))
    assert [i.program for i in midi.instruments] == [40]
    pitches = [n.pitch for n in midi.instruments[0].notes]
    assert min(pitches) >= 57, "the top part of a chorale is the soprano"
    assert len(list(out.rglob("*.wav"))) == 1


def test_render_midi_refuses_an_unknown_voice(tmp_path):
    from waveloom.data.synth import render_midi

    with pytest.raises(ConfigError, match="voice='descant': use one of soprano"):
        render_midi(tmp_path / "x", chorales=1, voice="descant", progress=False)


def test_velocity_sets_the_level_and_the_envelope_attacks_and_releases():
    assert velocity_db(127, -10.0) == pytest.approx(-10.0)
    assert velocity_db(0, -10.0) == pytest.approx(-50.0)
    loud = line_loudness([(0.2, 0.6, 60, 127)], frames=250, frame_rate=250, top_db=-10.0,
                         attack=0.02, release=0.1)
    t = np.arange(250) / 250
    assert (loud[t < 0.2] == SILENT_DB).all()
    assert loud[int(0.21 * 250)] < -10.0 - 3.0, "still rising during the attack"
    assert loud[int(0.4 * 250)] == pytest.approx(-10.0)
    assert -10.0 - 30 < loud[int(0.65 * 250)] < -10.0 - 3.0, "releasing after the note off"
    assert (loud[t > 0.71] == SILENT_DB).all()


def test_f0_follows_notes_with_portamento_and_vibrato():
    notes = [(0.0, 0.5, 69, 100), (0.5, 1.0, 81, 100)]
    plain = line_f0(notes, 250, 250)
    assert plain[10] == pytest.approx(440.0) and plain[200] == pytest.approx(880.0)
    glide = line_f0(notes, 250, 250, portamento=0.1)
    assert 440.0 < glide[int(0.55 * 250)] < 880.0 and glide[200] == pytest.approx(880.0)
    vib = line_f0(notes, 250, 250, vibrato=(50.0, 5.0))
    cents = 1200 * np.log2(vib[:125] / 440.0)
    assert cents.max() == pytest.approx(50.0, abs=1.0) and cents.min() == pytest.approx(-50, abs=1)


def test_polyphony_becomes_monophonic_lines():
    chord = [(0.0, 1.0, 60, 90), (0.0, 1.0, 64, 90), (1.0, 2.0, 62, 90)]
    voices = split_voices(chord)
    assert len(voices) == 2 and sum(len(v) for v in voices) == 3
    for voice in voices:
        assert all(a[1] <= b[0] for a, b in zip(voice, voice[1:]))


def test_midi_lines_and_a_drums_only_file(tmp_path):
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(90, 60, 0.0, 1.0), pretty_midi.Note(90, 64, 0.0, 1.0)]
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(100, 36, 0.0, 0.1))
    midi.instruments += [piano, drums]
    midi.write(str(tmp_path / "song.mid"))
    lines, end = midi_lines(tmp_path / "song.mid")
    assert len(lines) == 2 and end == pytest.approx(1.0)
    only = pretty_midi.PrettyMIDI()
    only.instruments.append(drums)
    only.write(str(tmp_path / "drums.mid"))
    with pytest.raises(DataError, match="drums only") as err:
        midi_lines(tmp_path / "drums.mid")
    assert "\n" not in str(err.value)
