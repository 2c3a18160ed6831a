"""A piano-roll picture of a note table: what a symbolic sample looks like without a renderer.

Why its own module: the spectrogram plots of :mod:`waveloom.audio.plots` need audio; a MIDI
sample has notes only. Each note is a bar from onset to offset at its pitch, shaded by velocity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def plot_piano_roll(notes: np.ndarray, path: str | Path, title: str | None = None) -> Path:
    """Draw ``notes`` float ``[N, 4]`` (onset s, offset s, MIDI pitch, velocity 0-127) to a PNG
    at ``path``: time (s) across, pitch up, darker for louder. Returns the path."""
    notes = np.asarray(notes, np.float64).reshape(-1, 4)
    fig = Figure(figsize=(10, 4), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if len(notes):
        shade = 0.25 + 0.75 * np.clip(notes[:, 3], 0, 127) / 127.0
        ax.barh(notes[:, 2], notes[:, 1] - notes[:, 0], left=notes[:, 0], height=0.8,
                color=[(0.1, 0.2, 0.6, a) for a in shade], edgecolor="none")
        low, high = notes[:, 2].min(), notes[:, 2].max()
        ax.set_ylim(low - 2, high + 2)
        ax.set_xlim(0, max(float(notes[:, 1].max()), 1e-3))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title or Path(path).stem)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    fig.clear()
    return path
