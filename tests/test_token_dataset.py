"""Token windows for a next-event model (waveloom.data.token_dataset)."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from waveloom.data.events import BOS, EOS, PAD
from waveloom.data.symbolic import build_symbolic
from waveloom.data.token_dataset import TokenWindowDataset
from waveloom.errors import ConfigError, DataError


@pytest.fixture
def corpus(tmp_path):
    src = tmp_path / "midi"
    src.mkdir()
    for n, count in (("long", 60), ("short", 2)):
        midi = pretty_midi.PrettyMIDI()
        inst = pretty_midi.Instrument(program=0)
        inst.notes = [pretty_midi.Note(80, 60 + i % 12, 0.1 * i, 0.1 * i + 0.05)
                      for i in range(count)]
        midi.instruments.append(inst)
        midi.write(str(src / f"{n}.mid"))
    cache = build_symbolic(tmp_path / "sym", midi_dir=src)
    for p in cache.pieces:  # one split for both, whatever their names hash to
        p["split"] = "train"
    cache.splits = np.array(["train"] * len(cache))
    return cache


def test_windows_are_framed_padded_and_reproducible(corpus):
    data = TokenWindowDataset(corpus, window=16, epoch_size=200, seed=3)
    items = [data[i] for i in range(200)]
    assert all(it["tokens"].shape == (17,) for it in items)
    again = TokenWindowDataset(corpus, window=16, epoch_size=200, seed=3)
    assert all(np.array_equal(again[i]["tokens"], items[i]["tokens"]) for i in range(200))
    short = [it["tokens"] for it in items if corpus.pieces[int(it["piece"])]["name"] == "short"]
    assert short
    framed = data.framed([corpus.pieces[i]["name"] for i in data.indices].index("short"))
    assert framed[0] == BOS and framed[-1] == EOS
    for tokens in short:  # shorter than the window: the whole piece, then PAD
        assert np.array_equal(tokens[: len(framed)], framed) and (tokens[len(framed):] == PAD).all()
    data.set_epoch(1)
    assert any(not np.array_equal(data[i]["tokens"], items[i]["tokens"]) for i in range(200))


def test_bad_split_or_window(corpus):
    with pytest.raises(DataError, match="no pieces in split 'test'"):
        TokenWindowDataset(corpus, split="test")
    with pytest.raises(ConfigError, match="data.window"):
        TokenWindowDataset(corpus, window=0)


def test_transposition_moves_every_note_of_a_window_alike(corpus):
    """transpose=5: each window's notes move by one shift in [-5, 5], times and velocities
    stay; shifts vary between windows; the same item is the same window (reproducible)."""
    from waveloom.data.events import NOTE_ON, TIME_SHIFT

    plain = TokenWindowDataset(corpus, window=32, epoch_size=100, seed=1)
    moved = TokenWindowDataset(corpus, window=32, epoch_size=100, seed=1, transpose=5)
    shifts = set()
    for i in range(100):
        a, b = plain[i]["tokens"].numpy(), moved[i]["tokens"].numpy()
        note = (a >= NOTE_ON) & (a < TIME_SHIFT)
        assert np.array_equal(a[~note], b[~note]), "only note tokens change"
        delta = set((b[note] - a[note]).tolist())
        assert len(delta) <= 1 and all(-5 <= d <= 5 for d in delta)
        assert ((b[note] % 128 >= 0) & (b[note] < TIME_SHIFT)).all()
        assert (b[note] >= 128).sum() == (a[note] >= 128).sum(), "ons stay ons, offs offs"
        shifts |= delta
        assert np.array_equal(moved[i]["tokens"].numpy(), b)
    assert len(shifts) >= 5
    with pytest.raises(ConfigError, match="data.transpose"):
        TokenWindowDataset(corpus, transpose=30)
