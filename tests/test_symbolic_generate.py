"""Sampling a symbolic family to MIDI: compose_events and ``waveloom generate`` on a
music_transformer checkpoint (MIDI + piano roll, not audio); same seed -> same bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from waveloom.cli import main
from waveloom.data.events import EOS, STEP, TIME_SHIFT, VELOCITY, midi_to_events
from waveloom.data.symbolic import build_symbolic
from waveloom.models.load import load_config
from waveloom.models.music_transformer import MusicTransformer, MusicTransformerConfig
from waveloom.sampling.events import compose_events
from waveloom.train.trainer import train

from .conftest import CONFIGS

TINY = CONFIGS / "music_transformer" / "tiny.yaml"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mtgen")
    build_symbolic(root / "sym", chorales=2)
    cfg = load_config(TINY, ["data.batch_size=2", "data.window=32", "train.val_every=0",
                             "train.max_steps=2"])
    train(cfg, root / "sym", root / "run", progress=False)
    return root / "run" / "model.safetensors"


def _model() -> MusicTransformer:
    torch.manual_seed(0)
    return MusicTransformer(MusicTransformerConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64,
                                                   max_distance=64, dropout=0.0))


def _seconds(tokens: np.ndarray) -> float:
    shifts = tokens[(tokens >= TIME_SHIFT) & (tokens < VELOCITY)]
    return float((shifts - TIME_SHIFT + 1).sum() * STEP)


def test_compose_events_stops_at_seconds_and_is_seeded():
    model = _model()
    a = compose_events(model, 2.0, None, 1.0, 0, 1.0, 7, n=3)
    b = compose_events(model, 2.0, None, 1.0, 0, 1.0, 7, n=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    for piece in a:
        assert EOS not in piece
        # stops at the shift that reaches 2 s (or earlier, at an EOS)
        assert _seconds(piece[:-1]) < 2.0 - 1e-9
    c = compose_events(model, 2.0, None, 1.0, 0, 1.0, 8, n=3)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_compose_events_keeps_the_prime_and_counts_events():
    model = _model()
    prime = np.array([356 + 20, 60, 255 + 50, 188], np.int64)
    pieces = compose_events(model, None, prime, 0.9, 10, 0.95, 0, n=2, events=25)
    for piece in pieces:
        assert np.array_equal(piece[:4], prime) and len(piece) <= 4 + 25


def test_generate_writes_same_midi_for_same_seed(checkpoint, tmp_path, capsys):
    args = ["generate", str(checkpoint), "--seconds", "3", "-n", "2", "--seed", "3",
            "--top-k", "40", "--top-p", "0.95", "--temperature", "0.9", "--device", "cpu", "-q"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for i in range(2):
        mid = tmp_path / "a" / f"sample-{i}.mid"
        assert mid.read_bytes() == (tmp_path / "b" / f"sample-{i}.mid").read_bytes()
        assert (tmp_path / "a" / f"sample-{i}.png").is_file()
    assert not list((tmp_path / "a").glob("*.wav"))
    assert "sample-1.mid" in capsys.readouterr().out


def test_generate_continues_a_prime(checkpoint, tmp_path):
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(80, 60, 0.0, 0.5), pretty_midi.Note(80, 64, 0.5, 1.0)]
    midi.instruments.append(inst)
    midi.write(str(tmp_path / "p.mid"))
    assert main(["generate", str(checkpoint), "--prime", str(tmp_path / "p.mid"), "--events",
                 "30", "-n", "1", "--out", str(tmp_path / "o"), "--device", "cpu", "-q"]) == 0
    prime = midi_to_events(tmp_path / "p.mid")
    out = midi_to_events(tmp_path / "o" / "sample-0.mid")
    # the prime's notes are at the start of the piece (new notes may follow at 1.0 s)
    assert np.array_equal(out[: len(prime) - 1], prime[:-1])


def test_training_logs_midi_samples_for_a_symbolic_family(tmp_path):
    build_symbolic(tmp_path / "sym", chorales=2)
    cfg = load_config(TINY, ["data.batch_size=2", "data.window=32", "train.val_every=0",
                             "train.max_steps=2", "train.sample_every=2",
                             "train.sample_seconds=1.0"])
    train(cfg, tmp_path / "sym", tmp_path / "run", progress=False)
    samples = tmp_path / "run" / "samples"
    assert (samples / "step-0000002.mid").is_file() and (samples / "step-0000002.png").is_file()
    assert not list(samples.glob("*.wav"))


def test_generate_list_says_symbolic(checkpoint, capsys):
    assert main(["generate", str(checkpoint), "--list", "--device", "cpu"]) == 0
    assert "symbolic" in capsys.readouterr().out
