"""Frame labels of a transcriber from a note table: onsets, offsets, frames and velocities.

Frame ``k`` of a window starting at sample ``start`` is centred on sample ``start + k * hop``
(the log-mel's centred STFT frames). Over the 88 piano keys (MIDI 21-108; notes outside are
ignored):

* ``onset``: 1 at the frame nearest the note's onset;
* ``offset``: 1 at the frame nearest its offset;
* ``frame``: 1 at every frame whose centre lies in [onset, offset), and at the onset frame;
* ``velocity``: velocity / 127 at the onset frame (0 elsewhere; the loss reads it only there).

Note table columns as in :mod:`waveloom.data.roll` (onset sample, offset sample, pitch,
velocity, running max offset).
"""

from __future__ import annotations

import numpy as np

from waveloom.data.roll import MAX_OFFSET, OFFSET, ONSET, PITCH, VELOCITY

#: Lowest MIDI key and number of keys (a piano's range).
LOWEST_KEY, N_KEYS = 21, 88
LABELS = ("onset", "offset", "frame", "velocity")


def note_labels(table: np.ndarray, start: int, n_frames: int, hop: int) -> dict[str, np.ndarray]:
    """Labels (float32 ``[n_frames, 88]`` each, see the module docstring) of the window."""
    out = {name: np.zeros((n_frames, N_KEYS), np.float32) for name in LABELS}
    if len(table) == 0 or n_frames <= 0:
        return out
    lo_s, hi_s = start - hop, start + n_frames * hop + hop
    lo = int(np.searchsorted(table[:, MAX_OFFSET], lo_s, side="right"))
    hi = int(np.searchsorted(table[:, ONSET], hi_s, side="left"))
    for on, off, pitch, vel in table[lo:hi, [ONSET, OFFSET, PITCH, VELOCITY]]:
        key = int(pitch) - LOWEST_KEY
        if not 0 <= key < N_KEYS or off <= lo_s:
            continue
        first = int(np.floor((on - start) / hop + 0.5))  # nearest frame to the onset
        last = int(np.floor((off - start) / hop + 0.5))
        if 0 <= first < n_frames:
            out["onset"][first, key] = 1.0
            out["velocity"][first, key] = vel / 127.0
        if 0 <= last < n_frames:
            out["offset"][last, key] = 1.0
        a = max(int(np.ceil((on - start) / hop)), 0)
        b = min(int(np.ceil((off - start) / hop)), n_frames)
        out["frame"][a:b, key] = 1.0
        if 0 <= first < n_frames:
            out["frame"][first, key] = 1.0
    return out
