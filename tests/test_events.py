"""Performance events (waveloom.data.events): the MIDI -> events -> MIDI round trip."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waveloom.data import events as ev
from waveloom.errors import DataError

TOL = 0.01 + 1e-9  # 10 ms


def _midi(notes) -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    for start, end, pitch, velocity in notes:
        inst.notes.append(pretty_midi.Note(int(velocity), int(pitch), float(start), float(end)))
    midi.instruments.append(inst)
    return midi


def _sorted(notes) -> np.ndarray:
    table = np.asarray(notes, np.float64).reshape(-1, 4)
    return table[np.lexsort((table[:, 2], table[:, 0]))]


# One voice per pitch: a chain of (gap, duration, velocity), so same-pitch notes never overlap.
_voice = st.lists(
    st.tuples(st.floats(0.0, 3.0), st.floats(0.015, 2.5), st.integers(1, 127)),
    min_size=1, max_size=6,
)
_piece = st.dictionaries(st.integers(0, 127), _voice, min_size=1, max_size=8)


def _notes_of(piece: dict) -> list[tuple[float, float, int, int]]:
    notes = []
    for pitch, chain in piece.items():
        t = 0.0
        for gap, duration, velocity in chain:
            start = t + gap
            notes.append((start, start + duration, pitch, velocity))
            t = start + duration
    return notes


@settings(max_examples=50, deadline=None)
@given(_piece)
def test_round_trip_keeps_every_note(piece):
    notes = _sorted(_notes_of(piece))
    tokens = ev.midi_to_events(_midi(notes))
    assert tokens.dtype == np.int64 and tokens.min() >= 0 and tokens.max() < ev.PAD
    back = _sorted([(n.start, n.end, n.pitch, n.velocity)
                    for n in ev.events_to_midi(tokens).instruments[0].notes])
    assert len(back) == len(notes)
    # Match note for note by (pitch, onset order within the pitch).
    for pitch in np.unique(notes[:, 2]):
        a, b = notes[notes[:, 2] == pitch], back[back[:, 2] == pitch]
        assert len(a) == len(b)
        np.testing.assert_array_less(np.abs(a[:, 0] - b[:, 0]), TOL)
        np.testing.assert_array_less(np.abs(a[:, 1] - b[:, 1]), TOL)
        assert (ev.velocity_bin(a[:, 3].astype(int)) == ev.velocity_bin(b[:, 3].astype(int))).all()


def test_vocabulary_is_oore_388_plus_specials():
    assert ev.VELOCITY + ev.N_VELOCITIES == 388 == ev.PAD
    assert {ev.PAD, ev.BOS, ev.EOS} == {388, 389, 390} and ev.VOCAB_SIZE == 391
    decoded = [ev.bin_velocity(b) for b in range(32)]
    assert decoded == sorted(set(decoded))
    assert all(ev.velocity_bin(ev.bin_velocity(b)) == b for b in range(32))


def test_long_gap_splits_into_several_time_shifts():
    tokens = ev.midi_to_events(_midi([(0.0, 0.5, 60, 80), (3.55, 4.0, 62, 80)]))
    shifts = [int(t) - ev.TIME_SHIFT + 1 for t in tokens if ev.TIME_SHIFT <= t < ev.VELOCITY]
    # 0.5 s held, then 3.05 s of silence: 50 | 100 + 100 + 100 + 5 | 45.
    assert shifts == [50, 100, 100, 100, 5, 45]
    back = ev.events_to_notes(tokens)
    np.testing.assert_allclose(back[:, :2], [[0.0, 0.5], [3.55, 4.0]], atol=1e-9)


def test_overlapping_same_pitch_ends_the_first_at_the_second_onset():
    tokens = ev.midi_to_events(_midi([(0.0, 1.0, 60, 100), (0.4, 0.8, 60, 50), (0.1, 0.3, 64, 70)]))
    on = [int(t) for t in tokens if t == ev.NOTE_ON + 60]
    assert len(on) == 2
    back = ev.events_to_notes(tokens)
    sixty = back[back[:, 2] == 60]
    np.testing.assert_allclose(sixty[:, :2], [[0.0, 0.4], [0.4, 0.8]], atol=1e-9)
    assert list(ev.velocity_bin(sixty[:, 3].astype(int))) == [25, 12]


def test_tiny_note_lasts_one_step_and_decoder_tolerates_junk():
    back = ev.events_to_notes(ev.midi_to_events(_midi([(1.0, 1.001, 40, 64)])))
    np.testing.assert_allclose(back[0, :2], [1.0, 1.01], atol=1e-9)
    junk = [ev.BOS, ev.PAD, ev.NOTE_OFF + 61, ev.NOTE_ON + 61, ev.NOTE_ON + 61,
            ev.TIME_SHIFT + 9, ev.EOS, ev.NOTE_ON + 70]
    back = ev.events_to_notes(junk)
    assert back[:, 2].tolist() == [61, 61]
    np.testing.assert_allclose(back[:, :2], [[0.0, 0.01], [0.0, 0.1]], atol=1e-9)


def test_empty_midi_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "empty.mid"
    pretty_midi.PrettyMIDI().write(str(path))
    with pytest.raises(DataError) as err:
        ev.midi_to_events(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="piece-7"):
        ev.midi_to_events(pretty_midi.PrettyMIDI(), name="piece-7")


def test_file_and_object_agree(tmp_path):
    midi = _midi([(0.0, 0.25, 60, 90), (0.25, 0.5, 64, 72), (0.25, 1.0, 48, 72)])
    path = tmp_path / "x.mid"
    midi.write(str(path))
    np.testing.assert_array_equal(ev.midi_to_events(path), ev.midi_to_events(midi))
