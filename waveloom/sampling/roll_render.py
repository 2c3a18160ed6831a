"""A score played by a piano-roll-conditioned WaveNet (``model.local=roll``): Wave2Midi2Wave's
renderer, here at the demo's size (configs/wavenet/chorale-roll.yaml).

The score's notes become the same roll the model trained on (:func:`waveloom.data.roll.
roll_window`: 128 pitch rows at the model's ``local_hop``, velocity / 127 while a note sounds),
and the WaveNet samples audio from silence with that roll as local conditioning. Unlike the DDSP
renderer (one monophonic line per instrument), one network plays every voice at once, in the
timbre it was trained on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from waveloom.config import SamplingOptions
from waveloom.data.roll import notes_to_samples, roll_window
from waveloom.errors import ConfigError, DataError

#: Seconds of roll (and so of audio) after the last note-off: the release.
TAIL_SECONDS = 0.5


def score_roll(notes: np.ndarray, sample_rate: int, hop: int,
               tail: float = TAIL_SECONDS) -> np.ndarray:
    """Notes float ``[N, 4]`` (onset s, offset s, pitch, velocity) -> roll float32
    ``[128, frames]`` at ``hop`` samples a frame, ``tail`` seconds past the last offset."""
    notes = np.asarray(notes, np.float64).reshape(-1, 4)
    if len(notes) == 0:
        raise DataError("the score has no notes to render; give a MIDI file with notes")
    table = notes_to_samples(notes, sample_rate)
    frames = int(np.ceil((notes[:, 1].max() + tail) * sample_rate / hop))
    return roll_window(table, 0, frames, hop)


def check_roll_model(model: Any, label: str = "this checkpoint") -> None:
    """A one-line error unless ``model`` is a WaveNet conditioned on a piano roll."""
    config = getattr(model, "config", None)
    if getattr(config, "local", None) != "roll":
        raise ConfigError(f"{label} is not a roll-conditioned WaveNet (model.local=roll); train "
                          "one with configs/wavenet/chorale-roll.yaml, or render with a DDSP "
                          "instrument (waveloom perform)")


def render_roll(model: Any, notes: np.ndarray, options: SamplingOptions | None = None
                ) -> torch.Tensor:
    """Audio float ``[samples]`` in [-1, 1] of the score ``notes`` ``[N, 4]`` (see
    :func:`score_roll`) played by the roll WaveNet ``model``; ``options`` as for ``generate``
    (seed, engine, threads, progress)."""
    from waveloom.sampling import autoregressive

    check_roll_model(model)
    c = model.config
    roll = score_roll(notes, c.sample_rate, c.local_hop)
    device = next(model.parameters()).device
    cond = {"roll": torch.from_numpy(roll)[None].to(device)}
    options = options or SamplingOptions(progress=False)
    audio = autoregressive.generate(model, 1, roll.shape[1] * c.local_hop, cond, options)
    return audio[0]
