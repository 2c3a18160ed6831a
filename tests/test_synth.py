"""Built-in offline data: NSynth-layout notes and MAESTRO-layout pieces from a SoundFont."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from waveloom.data.sources import NSYNTH_FAMILIES
from waveloom.data.synth import GM_FAMILY, instrument_str, render_midi, render_notes, stable_split
from waveloom.data.synth.midi import MAESTRO_COLUMNS
from waveloom.data.synth.performance import note_spans
from waveloom.errors import ConfigError, DataError

#: Every key of an official NSynth examples.json entry.
NSYNTH_KEYS = {
    "note_str", "note", "pitch", "velocity", "instrument", "instrument_str",
    "instrument_family", "instrument_family_str", "instrument_source", "instrument_source_str",
    "sample_rate", "qualities", "qualities_str",
}  # fmt: skip
EXTRA_KEYS = {"gm_program", "gm_name", "preset_name", "split"}
PROGRAMS = (0, 40, 67)  # piano, violin, baritone sax (no sample above ~E5 in TimGM6mb)
PITCHES = (60, 84)
VELOCITIES = (50, 100)


def f0_hps(audio: np.ndarray, sr: int, fmin: float = 40.0, fmax: float = 2000.0) -> float:
    """Fundamental by the harmonic product spectrum (5 harmonics, log domain) of 1 s of audio."""
    segment = audio[int(0.2 * sr) : int(1.2 * sr)]
    n = 1 << 18  # zero-padded: 0.06 Hz bins at 16 kHz, well under a cent at C4
    log_mag = np.log(np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n)) + 1e-9)
    total = log_mag.copy()
    for h in range(2, 6):
        decimated = log_mag[::h]
        total[: len(decimated)] += decimated
        total[len(decimated) :] = -np.inf
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    band = (freqs >= fmin) & (freqs <= fmax)
    return float(freqs[np.argmax(np.where(band, total, -np.inf))])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.fixture(scope="module")
def notes(tmp_path_factory):
    out = tmp_path_factory.mktemp("notes")
    summary = render_notes(
        out, programs=PROGRAMS + (121,), pitches=PITCHES, velocities=VELOCITIES, progress=False
    )
    examples = json.loads((out / "examples.json").read_text())
    return out, summary, examples


def load(out: Path, note_str: str) -> np.ndarray:
    audio, sr = sf.read(out / "audio" / f"{note_str}.wav", dtype="float64")
    assert sr == 16000
    return audio


def test_examples_json_has_nsynth_layout_and_keys(notes):
    out, summary, examples = notes
    assert summary.examples == len(examples) > 0
    assert sorted(p.stem for p in (out / "audio").glob("*.wav")) == sorted(examples)
    for note_str, meta in examples.items():
        assert set(meta) == NSYNTH_KEYS | EXTRA_KEYS
        assert meta["note_str"] == note_str
        assert re.fullmatch(r"[a-z_]+_(acoustic|electronic|synthetic)_\d{3}-\d{3}-\d{3}", note_str)
        assert note_str == f"{meta['instrument_str']}-{meta['pitch']:03d}-{meta['velocity']:03d}"
        assert meta["instrument_str"] == instrument_str(meta["gm_program"])
        family = meta["instrument_family_str"]
        assert NSYNTH_FAMILIES[meta["instrument_family"]] == family == GM_FAMILY[meta["instrument"]]
        assert meta["instrument_str"].startswith(f"{family}_synthetic_")
        assert (meta["instrument_source"], meta["instrument_source_str"]) == (2, "synthetic")
        assert meta["qualities"] == [0] * 10 and meta["qualities_str"] == []
        assert meta["sample_rate"] == 16000 and meta["split"] == stable_split(note_str)
    assert len({m["note"] for m in examples.values()}) == len(examples)  # unique note ids


def test_wavs_are_16khz_mono_pcm16_four_seconds(notes):
    out, _, examples = notes
    for note_str in examples:
        info = sf.info(out / "audio" / f"{note_str}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == 4 * 16000


@pytest.mark.parametrize("program", [0, 40])
def test_rendered_pitch_matches_label(notes, program):
    out, _, examples = notes
    note_str = f"{instrument_str(program)}-060-100"
    f0 = f0_hps(load(out, note_str), 16000)
    expected = 440.0 * 2 ** ((examples[note_str]["pitch"] - 69) / 12)
    assert abs(1200 * math.log2(f0 / expected)) < 50


def test_velocity_follows_the_sf2_curve(notes):
    """Gain (v/127)^2 (SF2 default modulator, GM): 100 vs 50 is 40*log10(2) = 12.04 dB louder."""
    out, _, examples = notes
    for note_str, meta in examples.items():
        if meta["velocity"] == 100:
            soft = note_str[:-3] + "050"
            if soft in examples:
                assert rms(load(out, note_str)) > rms(load(out, soft))
    piano = instrument_str(0)
    ratio_db = 20 * math.log10(
        rms(load(out, f"{piano}-060-100")) / rms(load(out, f"{piano}-060-050"))
    )
    assert ratio_db == pytest.approx(40 * math.log10(2), abs=0.5)


def test_silent_notes_and_sound_effects_are_dropped_and_counted(notes):
    out, summary, examples = notes
    silent = {f"{instrument_str(67)}-084-{v:03d}" for v in VELOCITIES}
    assert silent <= set(summary.silent)
    assert not silent & set(examples)
    assert not any((out / "audio" / f"{s}.wav").exists() for s in silent)
    assert summary.skipped_programs == [121]  # breath noise: no NSynth family
    assert summary.examples + len(summary.silent) == len(PROGRAMS) * len(PITCHES) * len(VELOCITIES)


def test_one_global_gain_puts_the_loudest_peak_at_minus_1_dbfs(notes):
    out, summary, examples = notes
    peaks = {s: float(np.max(np.abs(load(out, s)))) for s in examples}
    assert summary.clipped_samples == 0
    assert max(peaks.values()) == pytest.approx(10 ** (-1 / 20), rel=0.05)
    assert peaks[summary.loudest] == max(peaks.values())
    assert min(peaks.values()) < 0.5 * max(peaks.values())  # notes were not normalised one by one


def test_fixed_gain_scales_every_sample(tmp_path):
    kwargs = dict(programs=[0], pitches=[60], velocities=[100], progress=False)
    render_notes(tmp_path / "a", gain=1.0, **kwargs)
    render_notes(tmp_path / "b", gain=0.5, **kwargs)
    name = f"{instrument_str(0)}-060-100.wav"
    a, _ = sf.read(tmp_path / "a" / "audio" / name, dtype="int16")
    b, _ = sf.read(tmp_path / "b" / "audio" / name, dtype="int16")
    assert np.max(np.abs(a.astype(int) - 2 * b.astype(int))) <= 1  # rounding of the half


def test_rendering_again_instead_of_caching_gives_identical_files(tmp_path):
    kwargs = dict(programs=[0, 40], pitches=[60], velocities=[100], progress=False)
    cached = render_notes(tmp_path / "a", **kwargs)
    uncached = render_notes(tmp_path / "b", cache_mb=0, **kwargs)
    assert cached.gain == uncached.gain
    for wav in (tmp_path / "a" / "audio").glob("*.wav"):
        assert wav.read_bytes() == (tmp_path / "b" / "audio" / wav.name).read_bytes()


def test_rerun_with_same_settings_resumes(notes, tmp_path):
    kwargs = dict(programs=[0], pitches=[60, 62], velocities=[100], progress=False)
    first = render_notes(tmp_path, **kwargs)
    wav = tmp_path / "audio" / f"{instrument_str(0)}-060-100.wav"
    stamp = wav.stat().st_mtime_ns
    again = render_notes(tmp_path, **kwargs)
    assert (first.rendered, again.rendered, again.resumed) == (2, 0, 2)
    assert wav.stat().st_mtime_ns == stamp
    changed = render_notes(tmp_path, hold_seconds=2.0, **kwargs)  # other settings: re-render
    assert changed.rendered == 2


def test_bad_soundfont_is_a_one_line_data_error(tmp_path):
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF not really a soundfont")
    for path in (tmp_path / "missing.sf2", junk):
        with pytest.raises(DataError, match=re.escape(str(path))) as err:
            render_notes(
                tmp_path / "out", soundfont=path, programs=[0], pitches=[60], progress=False
            )
        assert "\n" not in str(err.value)


def test_all_silent_or_bad_arguments_raise(tmp_path):
    with pytest.raises(DataError, match="min_rms"):
        render_notes(
            tmp_path, programs=[0], pitches=[60], velocities=[100], min_rms=10.0, progress=False
        )
    with pytest.raises(ConfigError, match="pitches"):
        render_notes(tmp_path, programs=[0], pitches=[128], progress=False)
    with pytest.raises(ConfigError, match="no NSynth family"):
        render_notes(tmp_path, programs=[125], progress=False)


def test_gm_family_table():
    assert len(GM_FAMILY) == 128
    groups = {range(0, 8): "keyboard", range(8, 16): "mallet", range(24, 32): "guitar",
              range(32, 40): "bass", range(56, 64): "brass", range(64, 72): "reed",
              range(72, 80): "flute", range(80, 88): "synth_lead"}  # fmt: skip
    for programs, family in groups.items():
        assert {GM_FAMILY[p] for p in programs} == {family}
    assert [GM_FAMILY[p] for p in (52, 53, 54)] == ["vocal"] * 3
    assert {GM_FAMILY[p] for p in range(48, 56)} == {"string", "vocal"}
    assert all(GM_FAMILY[p] is None for p in range(120, 128))
    assert set(GM_FAMILY) - {None} == set(NSYNTH_FAMILIES)  # every family is reachable
    assert instrument_str(0) == "keyboard_synthetic_000"
    assert instrument_str(1) == "keyboard_synthetic_001"
    assert instrument_str(40) == "string_synthetic_000"


def test_stable_split_is_deterministic_and_80_10_10():
    keys = [f"note-{i}" for i in range(20000)]
    splits = [stable_split(k) for k in keys]
    assert splits == [stable_split(k) for k in keys]
    counts = {s: splits.count(s) / len(keys) for s in ("train", "valid", "test")}
    assert counts == pytest.approx({"train": 0.8, "valid": 0.1, "test": 0.1}, abs=0.015)


def _instrument(notes, pedal=()):
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in notes]
    inst.control_changes = [pretty_midi.ControlChange(64, v, t) for t, v in pedal]
    return inst


def test_note_spans_apply_pedal_restrike_and_drop_empty_notes():
    inst = _instrument(
        [(60, 0.0, 0.5), (64, 1.0, 3.0), (67, 2.5, 2.5)], pedal=[(0.2, 127), (2.0, 0)]
    )
    spans = {(p, round(on, 3), round(off, 3)) for on, off, p, _ in note_spans(inst)}
    assert spans == {(60, 0.0, 2.0), (64, 1.0, 3.0)}  # 60 held by the pedal; empty 67 dropped
    restruck = _instrument([(60, 0.0, 2.0), (60, 1.0, 1.5)])
    assert sorted((on, off) for on, off, *_ in note_spans(restruck)) == [(0.0, 1.0), (1.0, 1.5)]


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
    midi_dir = tmp_path_factory.mktemp("midi_in")
    (midi_dir / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06 not midi")
    midi = pretty_midi.PrettyMIDI()
    midi.instruments.append(_instrument([(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 1.0, 1.5)]))
    (midi_dir / "sub").mkdir()
    midi.write(str(midi_dir / "sub" / "arpeggio.mid"))
    out = tmp_path_factory.mktemp("pieces")
    summary = render_midi(out, chorales=1, midi_dir=midi_dir, progress=False)
    with (out / "maestro-v3.0.0.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return out, midi_dir, summary, rows


def test_render_midi_writes_the_maestro_layout(pieces):
    out, _, summary, rows = pieces
    assert tuple(rows[0])[: len(MAESTRO_COLUMNS)] == MAESTRO_COLUMNS
    assert len(rows) == len(summary.rows) == 2
    for row in rows:
        assert row["split"] in ("train", "validation", "test")
        assert row["split"] == stable_split(row["canonical_title"], ("train", "validation", "test"))
        assert row["midi_filename"] == f"{row['year']}/{Path(row['midi_filename']).name}"
        assert row["midi_filename"].endswith(".midi") and row["audio_filename"].endswith(".wav")
        info = sf.info(out / row["audio_filename"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert float(row["duration"]) == pytest.approx(info.frames / info.samplerate, abs=1e-9)
        assert pretty_midi.PrettyMIDI(str(out / row["midi_filename"])).instruments
        assert rms(sf.read(out / row["audio_filename"])[0]) > 1e-3
    chorale = rows[0]
    assert chorale["canonical_composer"] == "Johann Sebastian Bach"
    assert chorale["canonical_title"].startswith("Chorale BWV")


def test_chorale_duration_follows_score_and_tempo(pieces):
    from music21 import corpus

    from waveloom.data.synth.chorales import chorale_ids

    _, _, _, rows = pieces
    score = corpus.parse(chorale_ids(1)[0])
    expected = float(score.highestTime) * 60.0 / 80.0 + 1.0  # default tempo 80, 1 s tail
    assert float(rows[0]["duration"]) == pytest.approx(expected, abs=1e-3)


def test_bad_midi_is_skipped_and_listed(pieces):
    _, midi_dir, summary, rows = pieces
    assert [Path(path).name for path, _ in summary.skipped] == ["broken.mid"]
    assert all("broken" not in row["audio_filename"] for row in rows)
    user = rows[1]
    assert user["canonical_title"] == "sub/arpeggio"
    assert float(user["duration"]) == pytest.approx(1.5 + 1.0, abs=1e-3)
    copied = Path(pieces[0]) / user["midi_filename"]
    assert copied.read_bytes() == (midi_dir / "sub" / "arpeggio.mid").read_bytes()


def test_render_midi_needs_something_to_render(tmp_path):
    with pytest.raises(ConfigError, match="nothing to render"):
        render_midi(tmp_path, progress=False)


def test_render_midi_rerun_resumes_without_rendering(pieces):
    out, midi_dir, first, _ = pieces
    before = (out / "maestro-v3.0.0.csv").read_text()
    again = render_midi(out, chorales=1, midi_dir=midi_dir, progress=False)
    assert (again.rendered, again.resumed) == (0, len(first.rows))
    assert (out / "maestro-v3.0.0.csv").read_text() == before
    assert again.skipped == first.skipped  # a bad file is tried again and listed again


def test_program_override_is_what_the_written_midi_says(tmp_path):
    midi_dir = tmp_path / "in"
    midi_dir.mkdir()
    midi = pretty_midi.PrettyMIDI()
    midi.instruments.append(_instrument([(67, 0.0, 0.5)]))
    midi.write(str(midi_dir / "g.mid"))
    summary = render_midi(tmp_path / "out", midi_dir=midi_dir, program=40, progress=False)
    (row,) = summary.rows
    written = pretty_midi.PrettyMIDI(str(tmp_path / "out" / row["midi_filename"]))
    assert [inst.program for inst in written.instruments] == [40]
    assert (row["instrument_str"], row["family_str"]) == ("violin", "string")


def test_render_midi_caps_a_held_note_and_names_the_file(tmp_path):
    """#19: a lost note-off must not render minutes of drone; the cap is named in a warning."""
    midi_dir = tmp_path / "in"
    midi_dir.mkdir()
    midi = pretty_midi.PrettyMIDI()
    midi.instruments.append(_instrument([(60, 0.0, 0.5), (64, 0.5, 4.0)]))
    midi.write(str(midi_dir / "held.mid"))
    summary = render_midi(tmp_path / "out", midi_dir=midi_dir, progress=False,
                          max_note_seconds=1.0)
    assert [Path(p).name for p, _ in summary.warnings] == ["held.mid"]
    assert "1 note(s) longer than 1 s" in str(summary) and "--max-note-seconds" in str(summary)
    assert float(summary.rows[0]["duration"]) == pytest.approx(1.5 + 1.0, abs=1e-3)
    with pytest.raises(ConfigError, match="--max-note-seconds"):
        render_midi(tmp_path / "x", midi_dir=midi_dir, progress=False, max_note_seconds=-1)


def test_render_midi_folder_where_every_file_fails_names_them(tmp_path):
    midi_dir = tmp_path / "in"
    midi_dir.mkdir()
    for name in ("a.mid", "b.mid"):
        (midi_dir / name).write_bytes(b"MThd\x00\x00\x00\x06 not midi")
    with pytest.raises(DataError) as err:
        render_midi(tmp_path / "out", midi_dir=midi_dir, progress=False)
    message = str(err.value)
    assert "a.mid: unreadable" in message and "b.mid: unreadable" in message
    assert "\n" not in message


def test_render_midi_every_ensemble_plays_each_piece_in_every_timbre(tmp_path):
    """program='every': one render per ensemble, named by it, in the piece's own split."""
    import csv

    from waveloom.data.synth import chorales
    from waveloom.data.synth.gm import ROTATION

    render_midi(tmp_path / "every", chorales=1, program="every", progress=False)
    rows = list(csv.DictReader((tmp_path / "every" / "maestro-v3.0.0.csv").open()))
    assert sorted(r["instrument_str"] for r in rows) == sorted(ROTATION)
    first = chorales.name_of(chorales.chorale_ids(1)[0])
    assert {r["midi_filename"].split("/")[-1].removesuffix(".midi") for r in rows} == {
        f"{first}-{name}" for name in ROTATION}
    assert len({r["split"] for r in rows}) == 1 and len({r["canonical_title"] for r in rows}) == 1


def test_render_midi_ensemble_list_gives_one_domain_per_ensemble(tmp_path, capsys):
    """--program strings,winds,brass,keyboard --voice soprano: the same line once per named
    ensemble, labelled by it (a translator's built-in domains); a bad list is one line."""
    import csv

    from waveloom.cli import main

    out = tmp_path / "domains"
    assert main(["data", "render-midi", str(out), "--chorales", "1", "--voice", "soprano",
                 "--program", "strings,winds,brass,keyboard", "-q"]) == 0
    rows = list(csv.DictReader((out / "maestro-v3.0.0.csv").open()))
    assert sorted(r["instrument_str"] for r in rows) == ["brass", "keyboard", "strings", "winds"]
    assert len({r["split"] for r in rows}) == 1
    assert main(["data", "render-midi", str(tmp_path / "bad"), "--chorales", "1",
                 "--program", "strings,tuba", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "a list names each ensemble once" in err and "\n" not in err


def test_render_midi_several_soundfonts_render_each_piece_once_per_font(tmp_path):
    """A list of SoundFonts: each piece once per font, suffixed by the font's stem, one split."""
    import shutil

    from waveloom.data.synth import chorales
    from waveloom.data.synth.engine import default_soundfont

    other = tmp_path / "Other Font.sf2"
    shutil.copyfile(default_soundfont(), other)
    fonts = [default_soundfont(), other]
    summary = render_midi(tmp_path / "two", chorales=1, soundfont=fonts, progress=False)
    rows = list(csv.DictReader((tmp_path / "two" / "maestro-v3.0.0.csv").open()))
    first = chorales.name_of(chorales.chorale_ids(1)[0])
    stem = default_soundfont().stem.lower()
    assert {r["audio_filename"].split("/")[-1] for r in rows} == {
        f"{first}-{stem}.wav", f"{first}-other_font.wav"}
    assert summary.rendered == 2 and len({r["split"] for r in rows}) == 1
    with pytest.raises(ConfigError, match="same file name"):
        render_midi(tmp_path / "dup", chorales=1, soundfont=[other, other], progress=False)
