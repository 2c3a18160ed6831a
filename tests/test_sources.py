"""Sources list the right files with the right metadata, and ``auto`` picks the right layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from waveloom.data.sources import detect_format, list_items, normalize_split
from waveloom.errors import DataError

SR = 16000


def _wav(path: Path, freq: float = 440.0, seconds: float = 0.25, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * freq * t), sr, subtype="PCM_16")
    return path


def _nsynth_folder(root: Path, notes: dict[str, dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "examples.json").write_text(json.dumps(notes))
    for note_str, meta in notes.items():
        _wav(root / "audio" / f"{note_str}.wav", 440 * 2 ** ((meta["pitch"] - 69) / 12))
    return root


def _note(pitch: int, instrument: str, family: str, **extra) -> dict:
    fam_ids = {"bass": 0, "guitar": 3, "keyboard": 4, "string": 8}
    return {
        "pitch": pitch,
        "velocity": 100,
        "instrument_str": instrument,
        "instrument_family_str": family,
        "instrument_family": fam_ids[family],
        "qualities": [0] * 10,
        **extra,
    }


def test_folder_lists_audio_recursively_sorted_and_pairs_midi(tmp_path):
    _wav(tmp_path / "b" / "z.flac")
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "b" / "c.wav")
    (tmp_path / "b" / "c.mid").write_bytes(b"MThd")  # paired by stem, not parsed here
    (tmp_path / "notes.txt").write_text("not audio")
    _wav(tmp_path / ".hidden" / "x.wav")
    fmt, items = list_items(tmp_path)
    assert fmt == "folder"
    assert [i.name for i in items] == ["a", "b/c", "b/z"]
    assert items[1].midi == tmp_path / "b" / "c.mid"
    assert items[0].midi is None and items[0].pitch is None and items[0].split is None


def test_folder_name_clash_keeps_extension(tmp_path):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "a.flac")
    _, items = list_items(tmp_path, "folder")
    assert sorted(i.name for i in items) == ["a.flac", "a.wav"]


def test_nsynth_single_folder_with_split_key(tmp_path):
    notes = {
        "bass_synthetic_000-060-100": _note(60, "bass_synthetic_000", "bass", split="valid"),
        "guitar_acoustic_001-064-100": _note(64, "guitar_acoustic_001", "guitar"),
    }
    _nsynth_folder(tmp_path, notes)
    assert detect_format(tmp_path) == "nsynth"
    fmt, items = list_items(tmp_path)
    assert fmt == "nsynth"
    by_name = {i.name: i for i in items}
    bass = by_name["bass_synthetic_000-060-100"]
    assert (bass.pitch, bass.velocity, bass.family_str, bass.split) == (60, 100, "bass", "valid")
    assert bass.path == tmp_path / "audio" / "bass_synthetic_000-060-100.wav"
    assert by_name["guitar_acoustic_001-064-100"].split is None


def test_nsynth_family_from_integer_when_string_missing(tmp_path):
    meta = _note(50, "string_acoustic_002", "string")
    del meta["instrument_family_str"]
    _nsynth_folder(tmp_path, {"string_acoustic_002-050-100": meta})
    _, items = list_items(tmp_path, "nsynth")
    assert items[0].family_str == "string"


def test_nsynth_official_folder_per_split(tmp_path):
    for split, pitch in (("train", 60), ("valid", 62), ("test", 64)):
        name = f"keyboard_acoustic_000-0{pitch}-100"
        _nsynth_folder(
            tmp_path / f"nsynth-{split}", {name: _note(pitch, "keyboard_acoustic_000", "keyboard")}
        )
    assert detect_format(tmp_path) == "nsynth"
    _, items = list_items(tmp_path)
    assert {i.split: i.pitch for i in items} == {"train": 60, "valid": 62, "test": 64}
    # One split folder given directly still knows its split from its name.
    _, items = list_items(tmp_path / "nsynth-valid")
    assert [i.split for i in items] == ["valid"]


def test_nsynth_bad_json_is_one_line_data_error(tmp_path):
    (tmp_path / "examples.json").write_text("{not json")
    with pytest.raises(DataError) as err:
        list_items(tmp_path, "nsynth")
    assert "examples.json" in str(err.value) and "\n" not in str(err.value)


MAESTRO_ROWS = [
    ("Bach", "Chorale 1", "train", 2018, "2018/a.midi", "2018/a.wav", 1.0),
    ("Bach", "Chorale 2", "validation", 2018, "2018/b.midi", "2018/b.wav", 1.0),
    ("Bach", "Chorale 3", "test", 2017, "2017/c.midi", "2017/c.wav", 1.0),
]
MAESTRO_COLS = [
    "canonical_composer",
    "canonical_title",
    "split",
    "year",
    "midi_filename",
    "audio_filename",
    "duration",
]


def test_maestro_csv(tmp_path):
    with open(tmp_path / "maestro-v3.0.0.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MAESTRO_COLS)
        writer.writerows(MAESTRO_ROWS)
    assert detect_format(tmp_path) == "maestro"
    fmt, items = list_items(tmp_path)
    assert fmt == "maestro"
    assert [i.split for i in items] == ["train", "valid", "test"]
    assert items[0].path == tmp_path / "2018/a.wav"
    assert items[0].midi == tmp_path / "2018/a.midi"
    assert items[0].name == "2018/a"
    assert (items[0].instrument_str, items[0].family_str) == ("piano", "keyboard")


def test_maestro_column_oriented_json(tmp_path):
    data = {
        col: {str(r): row[c] for r, row in enumerate(MAESTRO_ROWS)}
        for c, col in enumerate(MAESTRO_COLS)
    }
    (tmp_path / "maestro-v2.0.0.json").write_text(json.dumps(data))
    _, items = list_items(tmp_path)
    assert [i.name for i in items] == ["2018/a", "2018/b", "2017/c"]
    assert [i.split for i in items] == ["train", "valid", "test"]


def test_maestro_missing_column_names_it(tmp_path):
    (tmp_path / "maestro-v3.0.0.csv").write_text("split,audio_filename\ntrain,a.wav\n")
    with pytest.raises(DataError, match="midi_filename"):
        list_items(tmp_path)


def test_auto_falls_back_to_folder_and_rejects_missing_src(tmp_path):
    _wav(tmp_path / "x.wav")
    assert detect_format(tmp_path) == "folder"
    with pytest.raises(DataError, match="no such folder"):
        list_items(tmp_path / "nope")
    with pytest.raises(DataError, match="unknown source format"):
        list_items(tmp_path, "mp3s")


def test_split_aliases():
    assert normalize_split("validation", "x") == "valid"
    assert normalize_split("", "x") is None
    with pytest.raises(DataError, match="unknown split"):
        normalize_split("holdout", "x")


def test_domains_label_each_subfolder_and_link_any_folders(tmp_path, capsys):
    """prepare --domains NAME=FOLDER ...: each folder becomes a domain (an instrument id in
    sorted order) wherever it lives; loose files and bad pairs are one-line errors."""
    from waveloom.cli import main
    from waveloom.data.cache import AudioCache

    _wav(tmp_path / "rec" / "fiddle" / "a.wav")
    _wav(tmp_path / "rec" / "fiddle" / "deep" / "b.wav", 330.0)
    _wav(tmp_path / "elsewhere" / "keys" / "c.wav", 220.0)
    src, cache = tmp_path / "domains", tmp_path / "cache"
    assert main(["prepare", str(src), str(cache), "--domains",
                 f"violin={tmp_path / 'rec' / 'fiddle'}",
                 f"piano={tmp_path / 'elsewhere' / 'keys'}", "-q"]) == 0
    c = AudioCache(cache)
    assert c.info["instruments"] == ["piano", "violin"]
    labels = {e["name"]: e["instrument"] for e in c.entries}
    assert labels == {"piano/c": 0, "violin/a": 1, "violin/deep/b": 1}
    _, items = list_items(src, "domains")
    assert {i.instrument_str for i in items} == {"piano", "violin"}
    capsys.readouterr()
    _wav(src / "loose.wav")
    with pytest.raises(DataError, match="not inside a domain subfolder"):
        list_items(src, "domains")
    for pair, needle in (("violin", "write NAME=FOLDER"), (f"x={tmp_path / 'nope'}",
                                                            "is not a folder")):
        assert main(["prepare", str(tmp_path / "d2"), str(tmp_path / "c2"), "--domains", pair,
                     "-q"]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err
