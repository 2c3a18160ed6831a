"""The pitch excitation and note clock of :mod:`waveloom.nn.pitch_clock`, in numpy.

``waveloom generate`` on a packed model (:mod:`waveloom.app._generate_packed`) computes a note
model's local features without importing torch. These are the same formulas in the same
precision (float64, rounded once to float32), so the features equal the torch ones
(``tests/test_generate_packed.py`` checks them against :mod:`waveloom.nn.pitch_clock`).
Sampling only: the label is known (or -1) and the phase starts at 0, never at random.
"""

from __future__ import annotations

import numpy as np


def note_clock(times: np.ndarray, sample_rate: int, taus_s: tuple[float, ...]) -> np.ndarray:
    """Samples since the note's onset [n, L] -> [n, 1 + len(taus_s), L] float32: a gate (1
    from the onset on) and ``exp(-t / tau)`` per time scale ``taus_s`` (seconds; the model's
    ``NOTE_CLOCK_TAUS``, recorded in the packed file; 0 before the onset)."""
    t = np.asarray(times, np.float64)
    on = (t >= 0).astype(np.float32)
    taus = np.asarray(taus_s, np.float64) * sample_rate
    decays = np.exp(-np.maximum(t, 0.0)[:, None, :] / taus[None, :, None]).astype(np.float32)
    return np.concatenate([on[:, None], decays * on[:, None]], axis=1)


def pitch_excitation(pitch: np.ndarray | None, times: np.ndarray, sample_rate: int, *,
                     onset_phase: bool) -> np.ndarray:
    """sin / cos of each stream's pitch phase [n, 2, L] float32 (zeros where the pitch is
    unknown, -1 or None; before the onset too when ``onset_phase``). ``times`` [n, L]: since
    the onset (``onset_phase``) or any running count whose phase starts at 0."""
    n, length = np.shape(times)
    if pitch is None:
        return np.zeros((n, 2, length), np.float32)
    p = np.broadcast_to(np.asarray(pitch, np.float64).reshape(-1), (n,))
    known = (p >= 0).astype(np.float32)[:, None]
    hz = 440.0 * np.power(2.0, (p - 69.0) / 12.0)
    t = np.asarray(times)
    cycles = hz[:, None] * t.astype(np.float64) / sample_rate
    if onset_phase:
        known = known * (t >= 0).astype(np.float32)
    phase = 2 * np.pi * (cycles - np.floor(cycles))
    return np.stack([np.sin(phase).astype(np.float32) * known,
                     np.cos(phase).astype(np.float32) * known], axis=1)
