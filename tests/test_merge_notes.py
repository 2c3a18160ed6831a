"""scripts/merge_notes.py: note folders of several SoundFonts become one, labels per font."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import soundfile as sf

from waveloom.data.prepare import prepare

from .conftest import REPO

SCRIPT = [sys.executable, str(REPO / "scripts" / "merge_notes.py")]


def _folder(root, names_splits):
    (root / "audio").mkdir(parents=True)
    table = {}
    for i, (name, split) in enumerate(names_splits):
        instrument, _, rest = name.partition("-")
        table[name] = {"note_str": name, "pitch": 60 + i, "velocity": 100,
                       "instrument_str": instrument, "instrument_family_str": "flute",
                       "split": split, "sample_rate": 16000}
        sf.write(root / "audio" / f"{name}.wav", 0.1 * np.ones(1600, "float32"), 16000)
    (root / "examples.json").write_text(json.dumps(table))


def test_tagged_fonts_get_their_own_instruments_and_keep_their_splits(tmp_path):
    notes = [("flute_synthetic_001-060-100", "train"), ("flute_synthetic_001-061-100", "valid")]
    _folder(tmp_path / "a", notes)
    _folder(tmp_path / "b", notes)
    clash = subprocess.run(SCRIPT + [str(tmp_path / "m0"), str(tmp_path / "a"),
                                     str(tmp_path / "b")], capture_output=True, text=True)
    assert clash.returncode != 0 and "is in two folders" in clash.stderr
    bad = subprocess.run(SCRIPT + [str(tmp_path / "m1"), f"{tmp_path / 'b'}:o-pl"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "letters and digits" in bad.stderr
    proc = subprocess.run(SCRIPT + [str(tmp_path / "m"), str(tmp_path / "a"),
                                    f"{tmp_path / 'b'}:opl3"],
                          capture_output=True, text=True, check=True)
    assert "4 notes of 2 instruments" in proc.stdout
    table = json.loads((tmp_path / "m" / "examples.json").read_text())
    tagged = table["flute_opl3_001-061-100"]
    assert tagged["instrument_str"] == "flute_opl3_001" and tagged["split"] == "valid"
    assert (tmp_path / "m" / "audio" / "flute_opl3_001-061-100.wav").is_symlink()
    summary = prepare(tmp_path / "m", tmp_path / "cache", progress=False)
    assert summary.n_examples == 4
    assert json.loads((tmp_path / "cache" / "cache.json").read_text())["instruments"] == [
        "flute_opl3_001", "flute_synthetic_001"]
