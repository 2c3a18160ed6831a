"""The SoundFont swap of the small-n sanity table (docs/evaluation.md): the same notes rendered
with Debian's TimGM6mb and FluidR3_GM carry the same names and labels and differ only in sound.

Both SoundFonts are Debian packages (``timgm6mb-soundfont``, ``fluid-soundfont-gm``) that
.ci/run installs where it can (``make soundfonts`` for a developer); without them the test skips
and says which file is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from waveloom.data.synth import render_notes

TIMGM6MB = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
FLUIDR3 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def _need(path: Path, package: str) -> None:
    if not path.is_file():
        pytest.skip(f"{path} missing: install Debian's {package} (`make soundfonts`)")


def test_the_same_notes_rendered_with_both_soundfonts(tmp_path):
    _need(TIMGM6MB, "timgm6mb-soundfont")
    _need(FLUIDR3, "fluid-soundfont-gm")
    sets = {}
    for name, font in (("tim", TIMGM6MB), ("fluid", FLUIDR3)):
        render_notes(tmp_path / name, soundfont=font, programs=[0, 40], pitches=[60],
                     velocities=[100], hold_seconds=0.5, release_seconds=0.2, progress=False)
        sets[name] = json.loads((tmp_path / name / "examples.json").read_text())
    def labels(notes):  # everything but the SoundFont's own preset name
        return {k: {f: v for f, v in e.items() if f != "preset_name"} for k, e in notes.items()}

    assert labels(sets["tim"]) == labels(sets["fluid"]) and len(sets["tim"]) == 2
    assert sets["tim"] != sets["fluid"]  # the presets are named by each SoundFont
    for note in sets["tim"]:
        a, sr = sf.read(tmp_path / "tim" / "audio" / f"{note}.wav")
        b, _ = sf.read(tmp_path / "fluid" / "audio" / f"{note}.wav")
        assert sr == 16000 and a.shape == b.shape
        assert np.sqrt(np.mean(a ** 2)) > 1e-3 and np.sqrt(np.mean(b ** 2)) > 1e-3
        assert np.abs(a - b).max() > 0.05  # another instrument sample, not a copy
