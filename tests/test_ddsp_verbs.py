"""DDSP verbs (issue #22): train -> generate / transfer / perform through the CLI, and the bad
inputs the issue lists (silent input, f0 out of range, stereo at another rate, drums only)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from waveloom.cli import main

from .conftest import CONFIGS

SR = 16000


def _tone(hz: float, seconds: float, sr: int = SR, amp: float = 0.4) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny ddsp model trained 2 steps through `waveloom train` on a one-second melody of
    220-550 Hz (each window is the whole file, so the model sees that f0 range)."""
    root = tmp_path_factory.mktemp("ddsp-verbs")
    (root / "wavs").mkdir()
    melody = np.concatenate([_tone(hz, 0.25) for hz in (220.0, 330.0, 440.0, 550.0)])
    sf.write(root / "wavs" / "melody.wav", melody, SR)
    assert main(["prepare", str(root / "wavs"), str(root / "cache"), "-q"]) == 0
    assert main(["train", str(CONFIGS / "ddsp" / "tiny.yaml"), "--data", str(root / "cache"),
                 "--out", str(root / "run"), "-q", "train.max_steps=2", "data.window=16000",
                 "data.train_split=train", "data.batch_size=2", "train.sample_every=2"]) == 0
    assert list((root / "run" / "samples").glob("*.wav")), "the trainer logs a resynthesis"
    return root / "run" / "model.safetensors"


def test_generate_works_on_a_ddsp_checkpoint(checkpoint, tmp_path):
    assert main(["generate", str(checkpoint), "--out", str(tmp_path), "--n", "1",
                 "--seconds", "0.25", "--pitch", "64", "-q"]) == 0
    (wav,) = sorted(tmp_path.glob("*.wav"))
    audio, sr = sf.read(wav)
    assert sr == SR and len(audio) == 4000 and np.isfinite(audio).all()


def test_transfer_stereo_44k_with_shifts_and_a_clipped_range(checkpoint, tmp_path, capsys):
    stereo = np.stack([_tone(300.0, 0.5, 44100), _tone(300.0, 0.5, 44100)], axis=1)
    sf.write(tmp_path / "in.wav", stereo, 44100)
    high = np.concatenate([_tone(300.0, 0.5), _tone(1900.0, 0.5)])
    sf.write(tmp_path / "high.wav", high, SR)
    assert main(["transfer", str(checkpoint), str(tmp_path / "in.wav"), str(tmp_path / "high.wav"),
                 "--out", str(tmp_path / "out"), "--pitch-shift", "2", "--loudness-shift",
                 "-3", "-q"]) == 0
    out, sr = sf.read(tmp_path / "out" / "in.wav")
    assert sr == SR and len(out) == 8000 and np.isfinite(out).all()
    err = capsys.readouterr().err
    assert "high.wav: f0 outside the model's range" in err
    assert re.search(r"Hz at 0\.[45]\d-1\.00 s; clipped", err), "the warning names the seconds"
    assert "in.wav: f0 outside" not in err


def test_transfer_of_silence_warns_and_writes_silence(checkpoint, tmp_path, capsys):
    sf.write(tmp_path / "quiet.wav", np.zeros(8000, np.float32), SR)
    assert main(["transfer", str(checkpoint), str(tmp_path / "quiet.wav"), "--out",
                 str(tmp_path / "out"), "-q"]) == 0
    assert "silent or unvoiced" in capsys.readouterr().err
    out, _ = sf.read(tmp_path / "out" / "quiet.wav")
    assert len(out) == 8000 and not out.any()


def test_perform_a_two_part_midi_and_refuse_drums(checkpoint, tmp_path, capsys):
    midi = pretty_midi.PrettyMIDI()
    flute = pretty_midi.Instrument(program=73)
    flute.notes += [pretty_midi.Note(100, 64, 0.0, 0.3), pretty_midi.Note(80, 67, 0.3, 0.6)]
    bass = pretty_midi.Instrument(program=32)
    bass.notes.append(pretty_midi.Note(90, 57, 0.0, 0.6))
    midi.instruments += [flute, bass]
    midi.write(str(tmp_path / "song.mid"))
    assert main(["perform", str(checkpoint), str(tmp_path / "song.mid"), "--out",
                 str(tmp_path / "out"), "--vibrato", "30,5", "--portamento", "40", "-q"]) == 0
    out, sr = sf.read(tmp_path / "out" / "song.wav")
    assert sr == SR and len(out) == int((0.6 + 0.5) * SR) and np.abs(out).max() <= 1.0
    drums = pretty_midi.PrettyMIDI()
    kit = pretty_midi.Instrument(program=0, is_drum=True)
    kit.notes.append(pretty_midi.Note(100, 36, 0.0, 0.1))
    drums.instruments.append(kit)
    drums.write(str(tmp_path / "drums.mid"))
    capsys.readouterr()
    assert main(["perform", str(checkpoint), str(tmp_path / "drums.mid"), "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "drums only" in err and "\n" not in err


def test_instrument_folder_and_bad_flags(checkpoint, tmp_path, capsys):
    folder = tmp_path / "instruments"
    folder.mkdir()
    (folder / "ddsp-violin.safetensors").write_bytes(checkpoint.read_bytes())
    sf.write(tmp_path / "a.wav", _tone(330.0, 0.3), SR)
    assert main(["transfer", str(folder), str(tmp_path / "a.wav"), "--instrument", "violin",
                 "--out", str(tmp_path / "out"), "-q"]) == 0
    for argv, word in (
        (["transfer", str(folder), str(tmp_path / "a.wav"), "--instrument", "tuba"], "violin"),
        (["transfer", str(folder), str(tmp_path / "a.wav")], "--instrument NAME"),
        (["perform", str(checkpoint), str(tmp_path / "x.mid"), "--vibrato", "30"], "CENTS,HZ"),
    ):
        capsys.readouterr()
        assert main([*argv, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert word in err and err.count("\n") == 1
