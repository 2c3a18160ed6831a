"""Shared fixtures. Tests run on the CPU with one thread: the CI machine has 2 cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ._browser import browser  # noqa: F401 (the headless-Chromium fixture of the page tests)

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


def python_output(code: str) -> str:
    """What a fresh interpreter running ``code`` prints (stripped): how the tests see which
    modules a load imports, which this process has long imported."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=300).stdout.strip()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def notes_cache(tmp_path_factory) -> Path:
    """A prepared cache of rendered notes (programs 0 and 24, MIDI 55-62, 4 s each), rendered
    once per session for every test that trains or samples on real notes (it is read only)."""
    from waveloom.data.prepare import prepare
    from waveloom.data.synth import render_notes

    root = tmp_path_factory.mktemp("notes-data")
    render_notes(root / "notes", programs=[0, 24], pitches=range(55, 63), velocities=[100],
                 progress=False)
    prepare(root / "notes", root / "cache", progress=False)
    return root / "cache"
