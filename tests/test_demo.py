"""The shipped demo model and ``make demo``'s job: what a first-time user runs before anything.

The demo model's quality is measured in BENCHMARKS.md (pitch accuracy over many notes); here
the tests pin what must never break: the asset loads as the README says, fits the size budget,
samples deterministically, and the demo writes a page whose every link resolves.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from waveloom.app.demo import (
    DEMO_CHECKPOINT,
    MELODY,
    SINGLE_PITCHES,
    _melody_instrument,
    run_demo,
)
from waveloom.config import SamplingOptions
from waveloom.models.load import load_checkpoint, read_extra
from waveloom.sampling.sample import sample


def test_shipped_demo_model_loads_within_budget() -> None:
    assert DEMO_CHECKPOINT.is_file(), "the demo model ships in waveloom/assets"
    assert DEMO_CHECKPOINT.stat().st_size <= 20 * 2**20  # issue 3: <= 20 MB in the repo
    model, run = load_checkpoint(DEMO_CHECKPOINT, expect_family="wavenet")
    assert run.data.sample_rate == 16000
    assert {"pitch", "instrument"} <= set(model.conditioning_keys())
    extra = read_extra(DEMO_CHECKPOINT)
    assert len(extra["instruments"]) == 6 and extra["step"] > 0 and extra["training"]


def test_shipped_demo_model_samples_deterministically() -> None:
    model, _ = load_checkpoint(DEMO_CHECKPOINT)
    cond = {"pitch": torch.tensor([48, 72]), "instrument": torch.tensor([1, 3])}
    a = sample(model, 2, 400, cond,
               options=SamplingOptions(seed=3, temperature=0.9, progress=False))
    b = sample(model, 2, 400, cond,
               options=SamplingOptions(seed=3, temperature=0.9, progress=False))
    assert torch.equal(a, b)
    assert a.shape == (2, 400) and a.abs().max() <= 1.0


def test_melody_goes_to_the_first_known_family() -> None:
    vocab = ["brass_synthetic_000", "flute_synthetic_001", "keyboard_synthetic_000"]
    assert _melody_instrument(vocab) == 1
    assert _melody_instrument(["keyboard_acoustic_002", "brass_x"]) == 0
    assert _melody_instrument(["bass_x"]) == 0  # no preferred family: the first instrument


@pytest.mark.slow
def test_demo_writes_a_page_whose_links_resolve(tmp_path) -> None:
    # zoo=[]: the zoo's sections (a SampleRNN draws ~50 s of notes) have a test of their own
    index = run_demo(tmp_path, progress=False, autoencoder=tmp_path / "absent.safetensors",
                     zoo=[])
    page = index.read_text()
    links = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", page)
    assert links and all((tmp_path / link).is_file() for link in links)
    vocab = read_extra(DEMO_CHECKPOINT)["instruments"]
    assert len(list((tmp_path / "model").glob("note-*.wav"))) == len(vocab) * len(SINGLE_PITCHES)
    report = json.loads((tmp_path / "model" / "pitch.json").read_text())
    assert report["melody_notes"] == len(MELODY)
    assert 0 <= report["singles_on_pitch"] <= report["singles"]
    assert "within 50 cents" in page
    # Each shipped model's section is headed by its card's figures (issue #30).
    assert "<b>music-transformer-chorales</b>" in page and "bits/event" in page
    # The melody is audible, not silence or clipping.
    from waveloom.audio.io import load_audio

    melody, _ = load_audio(tmp_path / "model" / "melody.wav")
    rms = float(np.sqrt(np.mean(np.square(melody))))
    assert 0.005 < rms < 0.5


def test_ddsp_section_transfers_the_reference_to_each_instrument(tmp_path) -> None:
    """The DDSP section renders the reference melody, plays it on each DDSP checkpoint (here an
    untrained tiny one: only the plumbing is pinned) and counts notes on pitch by pYIN."""
    from waveloom.app._demo_ddsp import ddsp_section, notes_on_pitch, reference_melody
    from waveloom.app.demo import _section
    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    from .conftest import CONFIGS

    torch.manual_seed(0)
    run = load_config(CONFIGS / "ddsp" / "tiny.yaml")
    ckpt = save_checkpoint(tmp_path / "ddsp-tiny.safetensors", build_model(run), run)
    melody = MELODY[:4]
    html = ddsp_section([ckpt], melody, tmp_path, _section)
    assert "ddsp-tiny" in html and "within 50 cents" in html
    report = json.loads((tmp_path / "ddsp" / "pitch.json").read_text())
    assert 0 <= report["instruments"]["ddsp-tiny"]["notes_on_pitch"] <= len(melody)
    assert (tmp_path / "ddsp" / "ddsp-tiny.wav").is_file()
    # the reference itself is the ceiling: every one of its notes is on pitch
    ref = reference_melody(melody, 16000)
    assert notes_on_pitch(ref, 16000, melody) == len(melody)


def test_vocoder_section_resynthesises_beside_griffin_lim(tmp_path) -> None:
    """The vocoder section turns each MIDI-60 reference note into its mel and back, by the
    vocoder and by Griffin-Lim, and states both spectral distances (plumbing: a tiny MelGAN
    with the 80-mel analysis of the shipped one)."""
    from waveloom.app._demo_vocoder import vocoder_section
    from waveloom.app.demo import _data_section, _section
    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    from .conftest import CONFIGS

    run = load_config(CONFIGS / "melgan" / "tiny.yaml", ["model.excitation_harmonics=4"])
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "melgan-tiny.safetensors", build_model(run), run)
    examples, _ = _data_section(tmp_path / "data", tmp_path, progress=False)
    html = vocoder_section(ckpt, tmp_path / "data", examples, tmp_path, _section)
    assert "Griffin-Lim" in html and "spectral distance" in html
    scores = json.loads((tmp_path / "vocoder" / "distances.json").read_text())
    assert scores and all(set(s) == {"MelGAN", "Griffin-Lim"} for s in scores.values())
    assert all(0 < v < 1e3 for s in scores.values() for v in s.values())


def test_zoo_notes_section_labels_each_note_with_its_heard_pitch(tmp_path, monkeypatch) -> None:
    """A zoo model's section (here an untrained tiny SampleRNN with the pitch clock: only the
    plumbing is pinned) draws two instruments x three pitches and writes what pYIN heard."""
    import waveloom.app._demo_notes as zoo_notes
    from waveloom.app._demo_notes import PITCHES, notes_section, pick_instruments
    from waveloom.app.demo import _section
    from waveloom.checkpoint import save_checkpoint
    from waveloom.models.load import load_config
    from waveloom.models.registry import build_model

    from .conftest import CONFIGS

    assert pick_instruments(["brass_a", "flute_b", "guitar_c"]) == [1, 2]
    assert pick_instruments([]) == [0]
    run = load_config(CONFIGS / "samplernn" / "tiny.yaml",
                      ["model.pitch_excitation=true", "model.note_clock=true"])
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "samplernn-tiny.safetensors", build_model(run), run)
    monkeypatch.setattr(zoo_notes, "SECONDS", 0.25)  # an untrained model: any length will do
    html = notes_section(ckpt, tmp_path, _section)
    assert "samplernn-tiny" in html and "within 50 cents" in html
    report = json.loads((tmp_path / "samplernn-tiny" / "pitch.json").read_text())
    assert len(report["notes"]) == len(PITCHES) and 0 <= report["on_pitch"] <= len(PITCHES)
