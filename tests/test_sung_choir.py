"""The procedural choir (``render-midi --soundfont sung``): pitch, swell, vowels, determinism,
and the MAESTRO layout it writes through ``render_midi``."""

from __future__ import annotations

import json

import numpy as np
import pretty_midi
import soundfile as sf

from waveloom.data.synth import sung
from waveloom.data.synth.midi import render_midi

SR = 16000


def _midi(*notes: tuple[int, float, float]) -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI()
    part = pretty_midi.Instrument(program=52)
    part.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in notes]
    midi.instruments.append(part)
    return midi


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_a_sung_note_is_at_its_pitch_and_swells_without_an_attack():
    """MIDI 60 for 1.5 s: the spectrum's strongest partial below 400 Hz is C4 within 50 cents
    (vibrato included), and the level 10-30 ms after the onset is well under the level at
    0.5 s (a swell from silence, no attack transient)."""
    audio = sung.sing_midi(_midi((60, 0.5, 2.0)), SR, 0.5, seed=3)
    assert _rms(audio[: int(0.4 * SR)]) < 1e-4  # silence before the note
    steady = audio[int(1.0 * SR) : int(1.8 * SR)]
    spec = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    freqs = np.fft.rfftfreq(len(steady), 1 / SR)
    low = (freqs > 150) & (freqs < 400)
    peak = freqs[low][np.argmax(spec[low])]
    assert abs(1200 * np.log2(peak / 261.63)) < 50, peak
    early = _rms(audio[int(0.51 * SR) : int(0.53 * SR)])
    held = _rms(audio[int(1.0 * SR) : int(1.1 * SR)])
    assert early < 0.3 * held, (early, held)


def test_vowels_put_their_formants_where_the_tables_say():
    singer = sung.Singer(detune=0, vib_rate=5, vib_depth=0, vib_delay=0, jitter=0,
                         formant_scale=1.0, ring_db=0.0, ring_hz=2900.0, tilt=0.0,
                         breath_db=-30.0)
    freqs = np.arange(100.0, 1500.0, 5.0)
    for vowel, ((f1, _, _), _) in sung.VOWELS.items():
        level = sung.envelope_db(freqs, vowel, singer)
        peak = freqs[np.argmax(level)]
        assert abs(peak - f1) <= 60, (vowel, peak)  # F1 is the loudest below 1.5 kHz


def test_the_same_seed_sings_the_same_choir_and_another_seed_another():
    midi = _midi((55, 0.0, 0.5), (57, 0.5, 1.0), (59, 1.0, 1.6))
    a = sung.sing_midi(midi, SR, 0.3, seed=1)
    assert np.array_equal(a, sung.sing_midi(midi, SR, 0.3, seed=1))
    b = sung.sing_midi(midi, SR, 0.3, seed=2)
    assert len(a) == len(b) and not np.allclose(a, b)
    assert len(a) >= int(1.9 * SR)  # the last note off plus the tail


def test_render_midi_sings_a_folder_of_midi_files_into_the_maestro_layout(tmp_path):
    src = tmp_path / "midi"
    src.mkdir()
    _midi((60, 0.0, 0.6), (64, 0.6, 1.2)).write(str(src / "tune.mid"))
    summary = render_midi(tmp_path / "out", midi_dir=src, soundfont="sung", progress=False)
    assert summary.rendered == 1
    wav = next((tmp_path / "out").rglob("*.wav"))
    audio, sr = sf.read(wav)
    assert sr == SR and 1.2 <= len(audio) / sr <= 3.0 and np.abs(audio).max() > 0.5
    settings = json.loads((tmp_path / "out" / "render-midi.json").read_text())
    assert settings["soundfont"]["renderer"] == "sung"
    again = render_midi(tmp_path / "out", midi_dir=src, soundfont="sung", progress=False)
    assert again.resumed == 1 and again.rendered == 0  # same settings: kept


def test_merge_renders_links_two_folders_into_one_mixture(tmp_path):
    """scripts/merge_renders.py: one CSV with both folders' rows (a stable fraction of the
    first), links to their files, and a clear exit when a name is in both."""
    import subprocess
    import sys

    from .conftest import REPO

    src = tmp_path / "midi"
    src.mkdir()
    for i in range(6):
        _midi((60 + i, 0.0, 0.3)).write(str(src / f"tune{i}.mid"))
    render_midi(tmp_path / "a", midi_dir=src, soundfont="sung", progress=False)
    render_midi(tmp_path / "b", midi_dir=src, soundfont="sung", progress=False,
                tail_seconds=0.5)
    script = [sys.executable, str(REPO / "scripts" / "merge_renders.py")]
    clash = subprocess.run(script + [str(tmp_path / "m1"), str(tmp_path / "a"),
                                     str(tmp_path / "b")], capture_output=True, text=True)
    assert clash.returncode != 0 and "is in two folders" in clash.stderr
    proc = subprocess.run(script + [str(tmp_path / "m2"), f"{tmp_path / 'a'}:0.5"],
                          capture_output=True, text=True, check=True)
    rows = (tmp_path / "m2" / "maestro-v3.0.0.csv").read_text().splitlines()[1:]
    assert 0 < len(rows) < 6 and f"{len(rows)} rows linked" in proc.stdout
    wav = next((tmp_path / "m2").rglob("*.wav"))
    assert wav.is_symlink() and sf.read(wav)[0].size > 0
