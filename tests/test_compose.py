"""``waveloom compose`` (issue #23, part 5): events until S seconds, rendered per voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import torch

from waveloom.checkpoint import save_checkpoint
from waveloom.cli import main
from waveloom.data.events import TIME_SHIFT
from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.sampling.compose import compose_tokens, cut_at, duration

from .conftest import CONFIGS

TINY = CONFIGS / "music_transformer" / "tiny.yaml"


@pytest.fixture(scope="module")
def composer(tmp_path_factory) -> Path:
    """An untrained tiny Music Transformer: its events are random, which is all the verb's
    plumbing needs (seconds, voices, files); the real model only changes the music."""
    cfg = load_config(TINY)
    torch.manual_seed(0)
    model = build_model(cfg)
    return save_checkpoint(tmp_path_factory.mktemp("mt") / "model.safetensors", model, cfg)


def _model(path: Path):
    from waveloom.models.load import load_checkpoint

    return load_checkpoint(path, expect_family="music_transformer")[0]


def test_duration_and_cut_at_land_exactly():
    shift = lambda steps: TIME_SHIFT + steps - 1  # noqa: E731
    tokens = np.array([60, shift(50), 188, shift(100), 62, shift(30)])
    assert duration(tokens) == pytest.approx(1.8)
    cut = cut_at(tokens, 1.0)
    assert duration(cut) == pytest.approx(1.0) and list(cut[:3]) == [60, shift(50), 188]
    assert list(cut_at(tokens, 1.5)) == [60, shift(50), 188, shift(100)]
    assert list(cut_at(tokens, 5.0)) == list(tokens)


def test_compose_tokens_spans_the_seconds_and_repeats_with_a_seed(composer):
    model = _model(composer)
    tokens, _ = compose_tokens(model, 3.0, seed=4, top_p=0.95)
    again, _ = compose_tokens(model, 3.0, seed=4, top_p=0.95)
    assert duration(tokens) == pytest.approx(3.0) and np.array_equal(tokens, again)
    prime = np.array([60, TIME_SHIFT + 99, 188])
    primed, _ = compose_tokens(model, 3.0, prime, seed=4)
    assert list(primed[:3]) == list(prime) and duration(primed) == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="prime lasts 1.0 s"):
        compose_tokens(model, 0.5, prime)


def test_compose_verb_writes_the_piece(composer, tmp_path, capsys):
    prime = pretty_midi.PrettyMIDI()
    part = pretty_midi.Instrument(0)
    part.notes = [pretty_midi.Note(90, p, 0.0, 0.5) for p in (72, 64, 55, 48)]
    prime.instruments.append(part)
    prime.write(str(tmp_path / "prime.mid"))
    out = tmp_path / "out"
    assert main(["compose", "--seconds", "4", "--model", str(composer), "--prime",
                 str(tmp_path / "prime.mid"), "--instruments", "violin,flute", "--seed", "2",
                 "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "compose" in printed and "render" in printed and "dBFS" in printed
    audio, sr = sf.read(out / "piece.wav")
    assert sr == 16000 and 4.0 * sr <= len(audio) <= 5.0 * sr and np.abs(audio).max() < 0.9
    assert (out / "piece.png").stat().st_size > 10_000
    tracks = pretty_midi.PrettyMIDI(str(out / "piece.mid")).instruments
    assert 1 <= len(tracks) <= 4 and tracks[0].name == "violin" and tracks[0].program == 40
    first = sorted(n.pitch for t in tracks for n in t.notes if n.start == 0.0)
    assert first == [48, 55, 64, 72]  # the prime's chord opens the piece
    assert main(["compose", "--seconds", "4", "--model", str(composer), "--prime",
                 str(tmp_path / "prime.mid"), "--instruments", "violin,flute", "--seed", "2",
                 "--out", str(tmp_path / "again"), "-q"]) == 0
    again, _ = sf.read(tmp_path / "again" / "piece.wav")
    assert np.array_equal(audio, again)  # same seed -> the same piece


@pytest.mark.parametrize("flags, message", [
    (["--seconds", "0"], "--seconds 0.0: must be a finite number > 0"),
    (["--seconds", "1e6"], "--seconds 1e+06: at most 600"),
    (["--instruments", "violin,tuba"], "unknown instrument 'tuba': use one of flute, trumpet"),
    (["--voices", "0"], "--voices 0: must be"),
    (["--reverb", "2"], "--reverb 2.0: the wet share must be in 0..1"),
    (["--model", "nowhere.safetensors"], "no Music Transformer at nowhere.safetensors"),
])
def test_compose_bad_input_is_one_line(flags, message, tmp_path, capsys):
    assert main(["compose", "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_compose_refuses_an_empty_prime(composer, tmp_path, capsys):
    pretty_midi.PrettyMIDI().write(str(tmp_path / "empty.mid"))
    assert main(["compose", "--model", str(composer), "--prime", str(tmp_path / "empty.mid"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "empty.mid: no notes to encode" in err and err.count("\n") == 1


def test_demo_compose_section_plays_a_piece_or_says_why_not(composer, tmp_path, capsys):
    import re

    from waveloom.app._demo_compose import compose_section
    from waveloom.app.demo import _section

    page = compose_section(tmp_path / "absent.safetensors", tmp_path, _section)
    assert "skipped: no shipped Music Transformer" in page
    assert "skipped: no shipped Music Transformer" in capsys.readouterr().out
    page = compose_section(composer, tmp_path, _section)
    links = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", page)
    assert len(links) == 3 and all((tmp_path / link).is_file() for link in links)
    assert "events" in page and (tmp_path / "compose" / "piece.png").is_file()
