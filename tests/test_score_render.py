"""The score renderer (issue #23, part 4): voices by register, one DDSP instrument per line."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from waveloom.data.voices import _ordered_assignment, register_voices, score_lines
from waveloom.errors import ConfigError, DataError
from waveloom.sampling.score import fit_octaves, known_instruments, render_score


def _chorale_like(pitches_per_beat, beat: float = 0.5, velocity: int = 90) -> list:
    """Block chords, one per beat: ``[(s, a, t, b), ...]`` -> notes, all in one list."""
    notes = []
    for i, chord in enumerate(pitches_per_beat):
        notes += [(i * beat, (i + 1) * beat, p, velocity) for p in chord]
    return notes


def _midi(notes, parts: int = 1) -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI()
    for k in range(parts):
        instrument = pretty_midi.Instrument(0)
        instrument.notes = [pretty_midi.Note(v, p, a, b) for j, (a, b, p, v) in enumerate(notes)
                            if j % parts == k]
        midi.instruments.append(instrument)
    return midi


def test_ordered_assignment_keeps_order_and_moves_least():
    assert _ordered_assignment([72, 66], [74, 67, 55]) == [0, 1]
    assert _ordered_assignment([72, 58], [74, 67, 55]) == [0, 2]
    assert _ordered_assignment([50], [74, 67, 55]) == [2]
    assert _ordered_assignment([70, 69], [71, 70]) == [0, 1]  # no crossing at one instant


def test_register_voices_recovers_the_parts_of_a_merged_chorale():
    chords = [(72, 67, 64, 48), (74, 67, 62, 43), (72, 64, 60, 45), (71, 62, 55, 43)]
    notes = _chorale_like(chords)
    # a held alto note while the others move: the voices must still stay in register
    notes = [n for n in notes if not (n[0] == 0.5 and n[2] == 67)]
    notes = [(a, 1.0, p, v) if (a, p) == (0.0, 67) else (a, b, p, v) for a, b, p, v in notes]
    lines = register_voices(notes)
    assert [[n[2] for n in line] for line in lines] == [
        [72, 74, 72, 71], [67, 64, 62], [64, 62, 60, 55], [48, 43, 45, 43]]


def test_score_lines_errors_and_multi_part():
    with pytest.raises(DataError, match="no notes"):
        score_lines(pretty_midi.PrettyMIDI(), "empty.mid")
    notes = _chorale_like([(72, 60), (71, 59)])
    lines, end = score_lines(_midi(notes, parts=2))
    assert end == 1.0 and [n[2] for n in lines[0]] == [72, 71]


def test_fit_octaves_moves_the_fewest_octaves():
    line = [(0.0, 1.0, 40, 90), (1.0, 2.0, 50, 90)]
    lo, hi = 440.0 * 2 ** ((52 - 69) / 12), 440.0 * 2 ** ((96 - 69) / 12)
    assert fit_octaves(line, lo, hi) == 1
    assert fit_octaves([(0.0, 1.0, 100, 90)], lo, hi) == -1
    assert fit_octaves([(0.0, 1.0, 30, 90), (1.0, 2.0, 100, 90)], lo, hi) == 0  # too wide


def test_render_score_two_voices_headroom_and_determinism():
    notes = _chorale_like([(72, 60), (74, 59), (76, 55), (72, 48)], beat=0.4)
    midi = _midi(notes)
    out = render_score(midi, ["violin", "flute"], seed=3)
    again = render_score(midi, ["violin", "flute"], seed=3)
    assert out.voices == ["violin", "flute"] and out.sample_rate == 16000
    assert np.isfinite(out.audio).all() and out.peak > 0
    assert np.abs(out.audio).max() <= 10 ** (-1 / 20) + 1e-6
    assert len(out.audio) >= int(1.6 * out.sample_rate)
    assert np.array_equal(out.audio, again.audio)


def test_render_score_moves_a_low_line_into_range_and_says_so():
    notes = [(0.0, 0.5, 40, 90), (0.5, 1.0, 43, 90)]  # below the violin's range
    out = render_score(_midi(notes), ["violin"], what="low.mid")
    assert [n[2] for n in out.lines[0]] == [52, 55]
    assert any("low.mid: line 1 (MIDI 40-43) moved up 1 octave" in n for n in out.notes)


def test_render_score_bad_input():
    with pytest.raises(DataError, match="no notes"):
        render_score(pretty_midi.PrettyMIDI(), ["violin"], what="empty.mid")
    with pytest.raises(ConfigError, match="unknown instrument 'tuba'.*violin"):
        render_score(_midi([(0.0, 0.5, 60, 90)]), ["tuba"])
    assert {"violin", "flute", "trumpet"} <= set(known_instruments())


def test_shared_reverb_rings_out_and_keeps_the_level():
    from waveloom.sampling.score import shared_reverb

    click = np.zeros(1600, np.float32)
    click[100:900] = np.sin(np.arange(800) * 0.2).astype(np.float32)
    wet = shared_reverb(click, 16000, 0.3, seconds=0.5)
    assert len(wet) == 1600 + 8000 and np.isfinite(wet).all()
    assert np.abs(wet[2000:]).max() > 1e-3  # the tail rings on after the sound
    assert np.array_equal(shared_reverb(click, 16000, 0.0, 0.5)[:1600], click)
    with pytest.raises(ConfigError, match="reverb wet=1.5"):
        shared_reverb(click, 16000, 1.5)
    out = render_score(_midi([(0.0, 0.5, 72, 90)]), ["flute"], reverb=0.2)
    assert len(out.audio) == int(1.0 * 16000) + int(1.5 * 16000)
    assert np.abs(out.audio).max() <= 10 ** (-1 / 20) + 1e-6
