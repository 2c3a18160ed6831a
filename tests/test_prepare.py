"""prepare() decodes once into a consistent cache; AudioCache reads it back and guards it."""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

import waveloom.data.prepare as prep
from waveloom.audio.io import load_audio, stream_audio
from waveloom.data.cache import AudioCache
from waveloom.data.prepare import hash_split, prepare
from waveloom.errors import DataError

SR = 16000
INT16_STEP = 1.0 / 32767


def _wav(path: Path, freq: float = 440.0, seconds: float = 0.25, sr: int = SR, amp=0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sr))) / sr
    sf.write(str(path), amp * np.sin(2 * np.pi * freq * t), sr, subtype="PCM_16")
    return path


def _midi(path: Path, notes: list[tuple[int, float, float]]) -> Path:
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in notes]
    pm.instruments.append(piano)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "src"
    for k in range(5):
        _wav(src / f"tone{k}.wav", freq=200 + 50 * k, seconds=0.2 + 0.05 * k)
    return src


def test_manifest_offsets_reproduce_decoded_audio(folder, tmp_path):
    summary = prepare(folder, tmp_path / "cache", progress=False)
    assert summary.format == "folder" and summary.n_examples == 5 and not summary.skipped
    cache = AudioCache(tmp_path / "cache")
    assert cache.audio.dtype == np.int16 and isinstance(cache.audio, np.memmap)
    assert cache.audio.shape == (summary.total_samples,) == (int(cache.lengths.sum()),)
    offsets = [e["offset"] for e in cache.entries]
    assert offsets == list(np.concatenate([[0], np.cumsum(cache.lengths)[:-1]]))
    for i, entry in enumerate(cache.entries):
        decoded, _ = load_audio(folder / entry["source"], sr=SR)
        np.testing.assert_allclose(cache.clip(i), decoded, atol=INT16_STEP)
        assert entry["pitch"] == entry["velocity"] == entry["instrument"] == entry["family"] == -1
        assert entry["split"] == hash_split(entry["name"]) and entry["midi"] is None


def test_resampling_44k1_to_16k_gives_right_length(tmp_path):
    _wav(tmp_path / "src" / "hi.wav", freq=1000, seconds=0.5, sr=44100)
    prepare(tmp_path / "src", tmp_path / "cache", sample_rate=SR, progress=False)
    cache = AudioCache(tmp_path / "cache")
    assert cache.sample_rate == SR and cache.entries[0]["sample_rate"] == SR
    assert abs(int(cache.lengths[0]) - SR // 2) <= 1
    # The tone survives resampling: its spectrum peaks at 1 kHz.
    clip = cache.clip(0)
    peak_hz = np.argmax(np.abs(np.fft.rfft(clip))) * SR / len(clip)
    assert abs(peak_hz - 1000) < 5


def test_bad_and_silent_files_are_skipped_and_listed(folder, tmp_path):
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 4)
    (folder / "empty.wav").write_bytes(b"")
    _wav(folder / "quiet.wav", amp=1e-6)
    summary = prepare(folder, tmp_path / "cache", progress=False)
    reasons = dict(summary.skipped)
    assert set(reasons) == {"corrupt.wav", "empty.wav", "quiet.wav"}
    assert reasons["quiet.wav"].startswith("silent")
    assert "empty" in reasons["empty.wav"]
    assert summary.n_examples == 5
    info = json.loads((tmp_path / "cache" / "cache.json").read_text())
    assert {s["path"] for s in info["skipped"]} == set(reasons)
    assert "skipped 3 file(s)" in str(summary)


def test_source_without_usable_audio_is_one_line_error(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.wav").write_bytes(b"nope")
    with pytest.raises(DataError) as err:
        prepare(src, tmp_path / "cache", progress=False)
    message = str(err.value)
    assert str(src) in message and "expected audio files" in message and "\n" not in message
    assert not (tmp_path / "cache" / "cache.json").exists()
    assert not list((tmp_path / "cache").glob("*.partial"))


def test_interrupted_prepare_leaves_the_old_cache_usable(folder, tmp_path, monkeypatch):
    """#19: the new cache is built beside OUT and swapped in only when complete, so an
    interrupted (or failing) re-run leaves the previous cache exactly as it was."""
    out = tmp_path / "cache"
    prepare(folder, out, progress=False)  # a complete cache that a re-run would replace
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def flaky_stream(path, sr=None, **kw):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        yield from stream_audio(path, sr, **kw)

    monkeypatch.setattr(prep, "stream_audio", flaky_stream)
    with pytest.raises(KeyboardInterrupt):
        prepare(folder, out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "src"]  # no leftovers
    assert len(AudioCache(out)) > 0


def test_hash_split_is_stable_across_processes_and_balanced():
    names = [f"note-{k:04d}" for k in range(2000)]
    splits = [hash_split(n) for n in names]
    fractions = {s: splits.count(s) / len(splits) for s in ("train", "valid", "test")}
    assert abs(fractions["train"] - 0.8) < 0.04
    assert abs(fractions["valid"] - 0.1) < 0.03 and abs(fractions["test"] - 0.1) < 0.03
    code = "from waveloom.data.prepare import hash_split; print(hash_split('note-0007'))"
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == hash_split("note-0007")


def test_splits_are_deterministic_between_runs(folder, tmp_path):
    prepare(folder, tmp_path / "a", progress=False)
    prepare(folder, tmp_path / "b", progress=False)
    a, b = AudioCache(tmp_path / "a"), AudioCache(tmp_path / "b")
    assert [e["split"] for e in a.entries] == [e["split"] for e in b.entries]
    assert np.array_equal(a.audio, b.audio)


def _nsynth(root: Path) -> Path:
    notes = {
        "string_acoustic_001-060-080": ("string_acoustic_001", "string", 60, 80, "train"),
        "bass_synthetic_009-040-127": ("bass_synthetic_009", "bass", 40, 127, "train"),
        "bass_synthetic_009-045-127": ("bass_synthetic_009", "bass", 45, 127, "test"),
        "mystery_000-050-100": ("mystery_000", "theremin", 50, 100, "valid"),
    }
    meta = {
        name: {
            "pitch": p,
            "velocity": v,
            "instrument_str": inst,
            "instrument_family_str": fam,
            "split": split,
        }
        for name, (inst, fam, p, v, split) in notes.items()
    }
    root.mkdir(parents=True)
    (root / "examples.json").write_text(json.dumps(meta))
    for name, (_, _, pitch, _, _) in notes.items():
        _wav(root / "audio" / f"{name}.wav", freq=440 * 2 ** ((pitch - 69) / 12))
    return root


def test_nsynth_metadata_vocabularies_and_counts(tmp_path):
    summary = prepare(_nsynth(tmp_path / "ns"), tmp_path / "cache", progress=False)
    assert summary.format == "nsynth"
    assert summary.counts == {"train": 2, "valid": 1, "test": 1}
    cache = AudioCache(tmp_path / "cache")
    info = cache.info
    assert info["instruments"] == sorted(info["instruments"])
    assert info["families"][0] == "bass" and info["families"][10] == "vocal"
    assert info["format"] == "nsynth" and info["dtype"] == "int16"
    by_name = {e["name"]: e for e in cache.entries}
    bass = by_name["bass_synthetic_009-045-127"]
    assert (bass["pitch"], bass["velocity"], bass["family"], bass["split"]) == (45, 127, 0, "test")
    assert info["instruments"][bass["instrument"]] == "bass_synthetic_009"
    assert by_name["string_acoustic_001-060-080"]["family"] == 8
    assert by_name["mystery_000-050-100"]["family"] == -1  # not an NSynth family
    assert list(cache.split_indices("train")) == [
        i for i, e in enumerate(cache.entries) if e["split"] == "train"
    ]


def test_maestro_with_midi_stores_notes_and_skips_missing_midi(tmp_path):
    src = tmp_path / "maestro"
    _wav(src / "2018" / "a.wav", seconds=1.5)
    _midi(src / "2018" / "a.midi", [(60, 0.5, 1.0), (64, 0.75, 1.25)])
    _wav(src / "2018" / "b.wav", seconds=1.0)  # its MIDI is missing
    with open(src / "maestro-v3.0.0.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "canonical_composer",
                "canonical_title",
                "split",
                "year",
                "midi_filename",
                "audio_filename",
                "duration",
            ]
        )
        w.writerow(["Bach", "A", "train", 2018, "2018/a.midi", "2018/a.wav", 1.5])
        w.writerow(["Bach", "B", "validation", 2018, "2018/b.midi", "2018/b.wav", 1.0])
    summary = prepare(src, tmp_path / "cache", progress=False)
    assert summary.format == "maestro" and summary.n_midi == 1 and summary.n_notes == 2
    assert [p for p, _ in summary.skipped] == ["2018/b.wav"]
    assert "MIDI" in summary.skipped[0][1]
    cache = AudioCache(tmp_path / "cache")
    entry = cache.entries[0]
    assert entry["midi"] == "2018/a.midi" and entry["notes_count"] == 2
    table = cache.note_table(0)
    assert table[:, 0].tolist() == [8000, 12000] and table[:, 1].tolist() == [16000, 20000]
    assert table[:, 2].tolist() == [60, 64]


def test_audio_cache_errors_name_the_fix(tmp_path, folder):
    with pytest.raises(DataError, match=r"run `waveloom prepare SRC .*nothing`"):
        AudioCache(tmp_path / "nothing")
    prepare(folder, tmp_path / "cache", sample_rate=22050, progress=False)
    cache = AudioCache(tmp_path / "cache")
    cache.check_sample_rate(22050)
    with pytest.raises(DataError) as err:
        cache.check_sample_rate(16000)
    assert str(err.value) == (
        f"cache {tmp_path / 'cache'} was built at 22050 Hz but the model expects 16000 Hz; "
        "re-run prepare with --sr 16000"
    )
    # A truncated audio array is caught, not served.
    audio = tmp_path / "cache" / "audio.npy"
    audio.write_bytes(audio.read_bytes()[:-200])
    with pytest.raises(DataError, match="waveloom prepare"):
        AudioCache(tmp_path / "cache")


def test_audio_cache_pickles_without_the_samples(folder, tmp_path):
    prepare(folder, tmp_path / "cache", progress=False)
    cache = AudioCache(tmp_path / "cache")
    blob = pickle.dumps(cache)
    assert len(blob) < cache.audio.nbytes
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone.clip(2), cache.clip(2))


def test_read_pads_outside_the_example_with_zeros(folder, tmp_path):
    prepare(folder, tmp_path / "cache", progress=False)
    cache = AudioCache(tmp_path / "cache")
    n = int(cache.lengths[0])
    window = cache.read(0, n - 100, 300)
    np.testing.assert_array_equal(window[:100], cache.clip(0)[-100:])
    assert not window[100:].any()
    left = cache.read(0, -50, 100)
    assert not left[:50].any() and np.array_equal(left[50:], cache.clip(0)[:50])


# ------------------------------------------------------------------ #19: reliability


def test_prepare_out_naming_a_file_is_one_line(folder, tmp_path):
    target = tmp_path / "cache.txt"
    target.write_text("not a folder")
    with pytest.raises(DataError, match="is a file, not a folder") as err:
        prepare(folder, target, progress=False)
    assert "\n" not in str(err.value) and target.read_text() == "not a folder"


def test_full_disk_keeps_the_old_cache_and_says_so(folder, tmp_path, monkeypatch):
    import errno

    out = tmp_path / "cache"
    prepare(folder, out, progress=False)
    (out / "notes.txt").write_text("mine")  # not a cache file: kept across re-runs
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_append = prep.NpyStreamWriter.append

    def full(self, rows):
        if self.rows > 2000:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(self, rows)

    monkeypatch.setattr(prep.NpyStreamWriter, "append", full)
    with pytest.raises(DataError, match="No space left on device") as err:
        prepare(folder, out, progress=False)
    assert "previous cache is unchanged" in str(err.value) and "\n" not in str(err.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "src"]
    monkeypatch.undo()
    summary = prepare(folder, out, progress=False, sample_rate=8000)  # a good re-run swaps in
    assert AudioCache(out).sample_rate == 8000 and summary.n_examples == len(AudioCache(out))
    assert (out / "notes.txt").read_text() == "mine"


def test_clipped_truncated_and_silent_files_are_named(tmp_path):
    src = tmp_path / "src"
    _wav(src / "good.wav")
    t = np.arange(SR // 4) / SR
    sf.write(src / "hot.wav", 1.5 * np.sin(2 * np.pi * 300 * t), SR, subtype="FLOAT")
    sf.write(src / "cut.wav", 0.5 * np.sin(2 * np.pi * 300 * t), SR, subtype="PCM_16")
    data = (src / "cut.wav").read_bytes()
    (src / "cut.wav").write_bytes(data[: len(data) // 2])
    sf.write(src / "quiet.wav", np.zeros(SR // 4), SR, subtype="PCM_16")
    summary = prepare(src, tmp_path / "cache", progress=False)
    warned = dict(summary.warnings)
    assert "beyond full scale" in warned["hot.wav"] and "peak 1.50" in warned["hot.wav"]
    assert "truncated" in warned["cut.wav"]
    assert [p for p, _ in summary.skipped] == ["quiet.wav"]
    assert summary.n_examples == 3
    text = str(summary)
    assert "hot.wav" in text and "cut.wav" in text and "quiet.wav" in text
    info = json.loads((tmp_path / "cache" / "cache.json").read_text())
    assert sorted(w["path"] for w in info["warnings"]) == ["cut.wav", "hot.wav"]


def test_streamed_prepare_matches_whole_file_decoding(tmp_path, monkeypatch):
    """Block-by-block decoding and resampling give the samples load_audio gives at once."""
    import waveloom.audio.io as aio

    monkeypatch.setattr(aio, "READ_BLOCK", 1000)  # many blocks, odd boundaries
    src = tmp_path / "src"
    rng = np.random.default_rng(0)
    sf.write(src.mkdir() or src / "a.wav", 0.3 * rng.standard_normal((22050, 2)), 44100)
    summary = prepare(src, tmp_path / "cache", sample_rate=SR, progress=False)
    cache = AudioCache(tmp_path / "cache")
    expected, _ = load_audio(src / "a.wav", sr=SR)
    got = cache.read(0, 0, int(cache.lengths[0]))
    assert summary.total_samples == len(expected)
    np.testing.assert_allclose(got, np.round(expected * 32767) / 32767, atol=1e-7)
