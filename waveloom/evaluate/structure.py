"""Musical structure of a piece, read from its notes: does it sound like music over seconds?

The compose chain's claim is long-range structure that audio models lack. These four numbers
make that claim checkable on any audio (through a transcriber) or score, beside real chorales:

* **pitch-class histogram distance**: each piece's duration-weighted pitch-class histogram is
  rotated so its estimated tonic is class 0 (a chorale in G and one in D then share a shape),
  the set's histograms are averaged, and the Jensen-Shannon divergence (bits, 0..1) to the
  reference set's average is reported. Key-normalised because a set of real chorales spans many
  keys: an unrotated average is nearly flat and says nothing.
* **key consistency**: the fraction of ``window``-second windows (default 8 s, a phrase or
  two; hop ``window / 2``) whose estimated key (tonic and mode) equals the whole piece's key.
  Real chorales score about 0.5 (relative major/minor and modulations count against them),
  their pitches shuffled about 0.2. Tonal music modulates a little and returns; a
  random walk over pitches agrees with no key for long.
* **self-similarity at the 2-8 s scale**: chroma frames of ``frame`` seconds; for every frame,
  the best cosine similarity to a frame 2-8 s earlier, averaged over the piece. Repeated
  phrases and cadences score high; unrelated material scores low. It rewards loops too, which
  is why it is read beside the other three.
* **note density**: notes per second (and mean polyphony, notes sounding per second of sound).

Keys are estimated by the Krumhansl-Schmuckler method: the correlation of a pitch-class
histogram with the Krumhansl-Kessler major and minor profiles (Krumhansl 1990) in all 12
rotations; the best of the 24 is the key.

A note table is float ``[N, >= 3]``: onset (s), offset (s), MIDI pitch (the layout of
:func:`waveloom.data.events.events_to_notes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from waveloom.errors import DataError

#: Krumhansl-Kessler key profiles (probe-tone ratings), tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Structure:
    """The per-piece numbers (see the module docstring); NaN where a piece is too short."""

    key_consistency: float
    self_similarity: float
    notes_per_second: float
    polyphony: float
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def pitch_class_histogram(notes: np.ndarray, start: float = 0.0,
                          end: float = np.inf) -> np.ndarray:
    """Seconds each pitch class sounds within ``[start, end)``, float64 ``[12]``."""
    on, off = np.clip(notes[:, 0], start, end), np.clip(notes[:, 1], start, end)
    weight = np.maximum(off - on, 0.0)
    return np.bincount(notes[:, 2].astype(np.int64) % 12, weights=weight, minlength=12)


def estimate_key(histogram: np.ndarray) -> tuple[int, str, float]:
    """(tonic pitch class, ``"major"``/``"minor"``, correlation) of a ``[12]`` histogram;
    (-1, "none", nan) when it is silent."""
    if not np.any(histogram > 0):
        return -1, "none", float("nan")
    best = (-1, "none", -np.inf)
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(histogram, np.roll(profile, tonic))[0, 1])
            if r > best[2]:
                best = (tonic, mode, r)
    return best


def tonic_normalised_histogram(notes: np.ndarray) -> np.ndarray:
    """The piece's pitch-class histogram rotated so its tonic is class 0, summing to 1."""
    hist = pitch_class_histogram(notes)
    tonic, _, _ = estimate_key(hist)
    if tonic < 0:
        raise DataError("a piece with no sounding notes has no pitch-class histogram")
    hist = np.roll(hist, -tonic)
    return hist / hist.sum()


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = same, 1 = disjoint) of two distributions."""
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        keep = a > 0
        return float(np.sum(a[keep] * np.log2(a[keep] / m[keep])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def key_consistency(notes: np.ndarray, window: float = 8.0) -> float:
    """Fraction of ``window``-s windows (hop ``window/2``) whose key is the piece's key."""
    end = float(notes[:, 1].max())
    piece_key = estimate_key(pitch_class_histogram(notes))[:2]
    starts = np.arange(0.0, max(end - window, 0.0) + 1e-9, window / 2)
    keys = [estimate_key(pitch_class_histogram(notes, s, s + window))[:2] for s in starts]
    keys = [k for k in keys if k[0] >= 0]
    return float(np.mean([k == piece_key for k in keys])) if keys else float("nan")


def chroma_frames(notes: np.ndarray, frame: float = 0.5) -> np.ndarray:
    """Seconds each pitch class sounds in each ``frame``-s frame, float64 ``[n_frames, 12]``."""
    n = int(np.ceil(float(notes[:, 1].max()) / frame))
    out = np.zeros((n, 12))
    for on, off, pitch in notes[:, :3]:
        first, last = int(on // frame), min(int(np.ceil(off / frame)), n)
        for k in range(first, last):
            out[k, int(pitch) % 12] += min(off, (k + 1) * frame) - max(on, k * frame)
    return out


def self_similarity(notes: np.ndarray, frame: float = 0.5, lags: tuple[float, float] = (2.0, 8.0)
                    ) -> float:
    """Mean over frames of the best chroma cosine similarity to a frame ``lags`` seconds back;
    NaN for a piece shorter than the shortest lag."""
    chroma = chroma_frames(notes, frame)
    norm = np.linalg.norm(chroma, axis=1, keepdims=True)
    unit = np.divide(chroma, norm, out=np.zeros_like(chroma), where=norm > 0)
    lo, hi = int(round(lags[0] / frame)), int(round(lags[1] / frame))
    best = []
    for t in range(lo, len(unit)):
        if norm[t, 0] == 0:
            continue
        back = unit[max(t - hi, 0) : t - lo + 1]
        best.append(float((back @ unit[t]).max()))
    return float(np.mean(best)) if best else float("nan")


def piece_structure(notes: np.ndarray, window: float = 8.0, frame: float = 0.5) -> Structure:
    """The per-piece numbers of one note table ``[N, >= 3]`` (onset s, offset s, pitch)."""
    notes = np.asarray(notes, np.float64)
    if notes.ndim != 2 or notes.shape[1] < 3 or len(notes) == 0:
        raise DataError("a piece with no notes has no structure to measure")
    seconds = float(notes[:, 1].max() - min(notes[:, 0].min(), 0.0))
    sounding = float(np.sum(notes[:, 1] - notes[:, 0]))
    return Structure(
        key_consistency=key_consistency(notes, window),
        self_similarity=self_similarity(notes, frame),
        notes_per_second=len(notes) / seconds,
        polyphony=sounding / seconds,
        seconds=seconds,
    )


def set_structure(pieces: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> dict:
    """Means of the per-piece numbers over ``pieces``, plus ``pc_js_bits``: the JS divergence
    of their mean tonic-normalised pitch-class histogram to ``reference``'s."""
    pieces = [p for p in pieces if len(p)]
    if not pieces or not reference:
        raise DataError("structure: need at least one piece with notes and one reference piece")
    rows = [piece_structure(p).as_dict() for p in pieces]
    summary = {key: float(np.nanmean([r[key] for r in rows])) for key in rows[0]}
    mean = np.mean([tonic_normalised_histogram(p) for p in pieces], axis=0)
    ref = np.mean([tonic_normalised_histogram(p) for p in reference], axis=0)
    summary["pc_js_bits"] = js_divergence(mean, ref)
    summary["pieces"] = len(pieces)
    return summary
