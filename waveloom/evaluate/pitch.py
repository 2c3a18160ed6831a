"""Pitch accuracy of generated notes, measured by an independent estimator (pYIN).

pYIN (Mauch & Dixon 2014, as implemented in librosa) shares nothing with our models, so a note
counts as "on pitch" only if an outside judge hears it there. A note's pitch is the median f0 over
its voiced frames; it is correct when within ``tolerance_cents`` of the requested MIDI pitch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PitchEstimate:
    midi: float  # NaN when no frame is voiced
    voiced_fraction: float

    def cents_off(self, target_midi: float) -> float:
        return abs(self.midi - target_midi) * 100.0 if math.isfinite(self.midi) else math.inf


def estimate_pitch(audio: np.ndarray, sample_rate: int, fmin: float = 30.0,
                   fmax: float = 2100.0) -> PitchEstimate:
    """Median pYIN pitch (in MIDI units) of a mono clip [T]."""
    import librosa

    audio = np.asarray(audio, dtype=np.float32)
    if audio.size < 2048 or not np.any(audio):
        return PitchEstimate(math.nan, 0.0)
    f0, voiced, _ = librosa.pyin(audio, fmin=fmin, fmax=fmax, sr=sample_rate, frame_length=2048)
    f0 = f0[voiced & np.isfinite(f0)]
    if f0.size == 0:
        return PitchEstimate(math.nan, 0.0)
    return PitchEstimate(float(np.median(librosa.hz_to_midi(f0))), float(voiced.mean()))


def pitch_accuracy(
    clips: list[np.ndarray], targets: list[int], sample_rate: int, tolerance_cents: float = 50.0
) -> dict[str, object]:
    """Fraction of clips whose estimated pitch is within ``tolerance_cents`` of its target."""
    rows = []
    for clip, target in zip(clips, targets):
        est = estimate_pitch(clip, sample_rate)
        off = est.cents_off(target)
        rows.append({"target": int(target), "estimated_midi": est.midi, "cents_off": off,
                     "voiced_fraction": est.voiced_fraction, "correct": off <= tolerance_cents})
    correct = sum(r["correct"] for r in rows)
    return {"accuracy": correct / max(1, len(rows)), "correct": correct, "total": len(rows),
            "tolerance_cents": tolerance_cents, "notes": rows}
