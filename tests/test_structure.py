"""Structure numbers of a piece (waveloom.evaluate.structure): keys, repetition, density."""

from __future__ import annotations

import numpy as np
import pytest

from waveloom.errors import DataError
from waveloom.evaluate import structure as st

C_MAJOR_PHRASE = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 62, 60, 55, 59, 62, 60]


def _melody(pitches, step=0.25):
    """Back-to-back notes of ``step`` s: float ``[N, 3]`` onset, offset, pitch."""
    t = np.arange(len(pitches)) * step
    return np.stack([t, t + step, np.asarray(pitches, float)], axis=1)


def test_key_of_a_major_scale_and_of_its_transposition():
    notes = _melody(C_MAJOR_PHRASE * 4)
    assert st.estimate_key(st.pitch_class_histogram(notes))[:2] == (0, "major")
    up = notes.copy()
    up[:, 2] += 7
    assert st.estimate_key(st.pitch_class_histogram(up))[:2] == (7, "major")
    np.testing.assert_allclose(st.tonic_normalised_histogram(up),
                               st.tonic_normalised_histogram(notes))


def test_a_repeated_tonal_phrase_against_random_pitches():
    """A 4-s phrase played 8 times repeats at the 4-s lag and stays in its key; random
    chromatic pitches (seeded) do neither as well."""
    phrase = st.piece_structure(_melody(C_MAJOR_PHRASE * 8))
    rng = np.random.default_rng(0)
    noise = st.piece_structure(_melody(rng.integers(48, 84, size=128)))
    # Only the frames before the first repeat (t < 4 s) miss a perfect match.
    assert phrase.self_similarity > 0.95
    assert phrase.key_consistency == 1.0
    assert noise.self_similarity < 0.9 and noise.key_consistency < 0.7
    assert phrase.notes_per_second == pytest.approx(4.0)
    assert phrase.polyphony == pytest.approx(1.0)


def test_set_distance_is_zero_to_itself_and_grows_with_chromatic_noise():
    tonal = [_melody(C_MAJOR_PHRASE * 2), _melody([p + 5 for p in C_MAJOR_PHRASE] * 2)]
    rng = np.random.default_rng(1)
    noise = [_melody(rng.integers(48, 84, size=64)) for _ in range(2)]
    assert st.set_structure(tonal, tonal)["pc_js_bits"] == pytest.approx(0.0, abs=1e-12)
    assert st.set_structure(noise, tonal)["pc_js_bits"] > 0.05
    assert st.js_divergence(np.eye(12)[0], np.eye(12)[1]) == pytest.approx(1.0)


def test_a_real_chorale_is_tonal():
    from waveloom.data.events import events_to_notes, midi_to_events
    from waveloom.data.synth import chorales as bach

    cid = bach.chorale_ids(1)[0]
    notes = events_to_notes(midi_to_events(bach.chorale_midi(cid, (0,), 80.0), name=cid))
    s = st.piece_structure(notes)
    assert s.key_consistency > 0.5 and s.self_similarity > 0.8
    assert 1.0 < s.notes_per_second < 12.0 and 3.0 < s.polyphony < 4.5


def test_empty_input_is_one_line():
    with pytest.raises(DataError, match="no notes"):
        st.piece_structure(np.zeros((0, 3)))
    with pytest.raises(DataError, match="at least one piece"):
        st.set_structure([], [_melody(C_MAJOR_PHRASE)])
