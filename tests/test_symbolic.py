"""The symbolic corpus (waveloom.data.symbolic): chorales / MIDI folder / MAESTRO -> tokens."""

from __future__ import annotations

import pickle

import numpy as np
import pretty_midi
import pytest

from waveloom.data import events as ev
from waveloom.data.symbolic import SymbolicCache, build_symbolic
from waveloom.errors import ConfigError, DataError


def _write(path, notes):
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(v, p, s, e) for s, e, p, v in notes]
    midi.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))


def test_chorale_split_is_the_audio_renders_split(tmp_path):
    """A chorale held out of the audio renders (the transcriber's test set) is held out of the
    symbolic corpus too: both hash its title. Chorale 3 is where a hash of the name differed."""
    from waveloom.data.synth import render_midi

    cache = build_symbolic(tmp_path / "sym", chorales=5)
    render_midi(tmp_path / "audio", chorales=5, progress=False)
    rows = (tmp_path / "audio" / "maestro-v3.0.0.csv").read_text().splitlines()[1:]
    audio = {row.split(",")[4].split("/")[-1].removesuffix(".midi"): row.split(",")[2]
             for row in rows}
    assert {p["name"]: p["split"] for p in cache.pieces} == {
        name: split.replace("validation", "valid") for name, split in audio.items()}


def test_three_chorales(tmp_path):
    cache = build_symbolic(tmp_path / "sym", chorales=3)
    assert len(cache) == 3
    names = [p["name"] for p in cache.pieces]
    assert names[0].startswith("bach-")
    assert sum(len(cache.split_indices(s)) for s in ("train", "valid", "test")) == 3
    for i in range(3):
        tokens = cache.piece(i)
        assert tokens.dtype == np.int64 and 0 <= tokens.min() and tokens.max() < ev.PAD
        notes = ev.events_to_notes(tokens)
        assert len(notes) > 50 and notes[:, 2].min() >= 30
    again = SymbolicCache(tmp_path / "sym")
    np.testing.assert_array_equal(again.piece(2), cache.piece(2))
    clone = pickle.loads(pickle.dumps(again))
    assert clone._tokens is None and np.array_equal(clone.piece(0), cache.piece(0))


def test_midi_folder_skips_empty_files(tmp_path):
    src = tmp_path / "midi"
    _write(src / "a.mid", [(0.0, 0.5, 60, 80), (0.5, 1.0, 64, 80)])
    _write(src / "sub" / "b.MIDI", [(0.1, 0.3, 67, 40)])
    pretty_midi.PrettyMIDI().write(str(src / "empty.mid"))
    (src / "notes.txt").write_text("not midi")
    cache = build_symbolic(tmp_path / "sym", midi_dir=src)
    assert [p["name"] for p in cache.pieces] == ["a", "sub/b"]
    assert [s[0] for s in cache.info["skipped"]] == ["empty"]
    assert "no notes" in cache.info["skipped"][0][1]
    np.testing.assert_allclose(ev.events_to_notes(cache.piece(0))[:, :3],
                               [[0.0, 0.5, 60], [0.5, 1.0, 64]], atol=1e-9)


def test_maestro_layout_keeps_its_split(tmp_path):
    src = tmp_path / "maestro"
    _write(src / "2004" / "x.midi", [(0.0, 0.5, 60, 80)])
    _write(src / "2004" / "y.midi", [(0.0, 0.5, 62, 80)])
    (src / "maestro-v3.0.0.csv").write_text(
        "audio_filename,midi_filename,split\n"
        "2004/x.wav,2004/x.midi,validation\n2004/y.wav,2004/y.midi,test\n"
    )
    cache = build_symbolic(tmp_path / "sym", maestro=src)
    assert [(p["name"], p["split"]) for p in cache.pieces] == [("2004/x", "valid"),
                                                                ("2004/y", "test")]


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="nothing to read"):
        build_symbolic(tmp_path / "sym")
    with pytest.raises(DataError, match="index.json missing"):
        SymbolicCache(tmp_path / "nowhere")
    src = tmp_path / "midi"
    src.mkdir()
    pretty_midi.PrettyMIDI().write(str(src / "empty.mid"))
    with pytest.raises(DataError, match="no piece with notes"):
        build_symbolic(tmp_path / "sym", midi_dir=src)
    with pytest.raises(DataError, match="MIDI folder not found"):
        build_symbolic(tmp_path / "sym", midi_dir=tmp_path / "absent")


def test_data_symbolic_verb_prints_a_summary(tmp_path, capsys):
    from waveloom.cli import main

    src = tmp_path / "midi"
    _write(src / "a.mid", [(0.0, 0.5, 60, 80)])
    pretty_midi.PrettyMIDI().write(str(src / "empty.mid"))
    assert main(["data", "symbolic", str(tmp_path / "sym"), "--midi", str(src), "-q"]) == 0
    out, err = capsys.readouterr()
    assert out.strip().endswith("1 pieces (" + {"train": "1/0/0", "valid": "0/1/0",
                                                 "test": "0/0/1"}[
        SymbolicCache(tmp_path / "sym").pieces[0]["split"]] + " train/valid/test), "
        f"{len(SymbolicCache(tmp_path / 'sym').piece(0))} tokens, 1 skipped")
    assert "skipped empty:" in err and "no notes" in err


@pytest.mark.parametrize("case", ["empty", "no-notes", "no-midi"])
def test_data_symbolic_bad_input_is_one_line(tmp_path, capsys, case):
    from waveloom.cli import main

    src = tmp_path / "midi"
    src.mkdir()
    if case == "empty":
        pretty_midi.PrettyMIDI().write(str(src / "x.mid"))
    elif case == "no-notes":  # only drums: nothing a pitched model can play
        midi = pretty_midi.PrettyMIDI()
        drums = pretty_midi.Instrument(program=0, is_drum=True)
        drums.notes = [pretty_midi.Note(80, 36, 0.0, 0.5)]
        midi.instruments.append(drums)
        midi.write(str(src / "x.mid"))
    else:
        (src / "notes.txt").write_text("not midi")
    assert main(["data", "symbolic", str(tmp_path / "sym"), "--midi", str(src), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert ("no .mid/.midi files" in err) if case == "no-midi" else ("x.mid: no notes" in err)
