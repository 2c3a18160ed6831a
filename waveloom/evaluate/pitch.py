"""Pitch accuracy of generated notes, measured by an independent estimator.

The judge shares nothing with our models, so a note counts as "on pitch" only if an outside
estimator hears it there. Two estimators are offered:

* ``crepe-tiny`` / ``crepe-full`` (default ``crepe-tiny``): CREPE (Kim et al. 2018), a network
  trained on real recordings, with its per-frame periodicity as confidence. A note's pitch is
  the periodicity-weighted median over frames that are voiced (periodicity >= ``threshold``)
  and not silent.
* ``pyin``: pYIN (Mauch & Dixon 2014, as implemented in librosa), a signal-processing method;
  a note's pitch is the median f0 over its voiced frames.

A note is correct when its pitch is within ``tolerance_cents`` (default 50, i.e. the nearest
semitone) of the requested MIDI pitch. Reports name both the estimator and the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from waveloom.errors import ConfigError

#: Estimator names accepted by :func:`get_estimator`.
ESTIMATORS = ("crepe-tiny", "crepe-full", "pyin")


@dataclass(frozen=True)
class PitchEstimate:
    midi: float  # NaN when no frame is voiced
    voiced_fraction: float
    confidence: float = math.nan  # mean periodicity of the voiced frames (CREPE only)

    def cents_off(self, target_midi: float) -> float:
        return abs(self.midi - target_midi) * 100.0 if math.isfinite(self.midi) else math.inf


#: ``(audio [T], sample_rate) -> PitchEstimate``, with a ``name`` attribute for reports.
PitchEstimator = Callable[[np.ndarray, int], PitchEstimate]


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


estimate_pitch.name = "pyin"  # type: ignore[attr-defined]


class CrepePitch:
    """Note-level pitch from CREPE: periodicity-weighted median over voiced, non-silent frames.

    Args:
        capacity: 'tiny' (fast, ~2 ms per frame on one CPU core) or 'full' (~20x slower).
        hop_seconds: frame hop; notes are near-stationary, so 20 ms loses nothing.
        threshold: minimum periodicity of a voiced frame (CREPE's confidence, in [0, 1]).
        fmin, fmax: search range in Hz (CREPE covers 31.7-1975.5 Hz).
    """

    def __init__(self, capacity: str = "tiny", *, hop_seconds: float = 0.02,
                 threshold: float = 0.5, fmin: float = 31.7, fmax: float = 1975.5,
                 device: str = "cpu"):
        from waveloom.evaluate.crepe import load_crepe

        self.name = f"crepe-{capacity}"
        self.model = load_crepe(capacity, str(device))
        self.hop_seconds, self.threshold = hop_seconds, threshold
        self.fmin, self.fmax = fmin, fmax

    def __call__(self, audio: np.ndarray, sample_rate: int) -> PitchEstimate:
        from waveloom.evaluate.crepe import SILENCE_DB, activations, decode_pitch, frame_audio

        frames, rms_db = frame_audio(audio, sample_rate, self.hop_seconds)
        _, probs = activations(self.model, frames)
        midi, periodicity = decode_pitch(probs, self.fmin, self.fmax)
        voiced = (periodicity >= self.threshold) & (rms_db > SILENCE_DB)
        if not bool(voiced.any()):
            return PitchEstimate(math.nan, 0.0, math.nan)
        m, w = midi[voiced].double().numpy(), periodicity[voiced].double().numpy()
        return PitchEstimate(weighted_median(m, w), float(voiced.float().mean()),
                             float(w.mean()))


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The smallest value whose cumulative weight reaches half the total (``[n]`` arrays)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def get_estimator(name: str = "crepe-tiny", device: str = "cpu") -> PitchEstimator:
    """The pitch estimator called ``name`` (one of :data:`ESTIMATORS`)."""
    if name == "pyin":
        return estimate_pitch
    if name.startswith("crepe-") and name in ESTIMATORS:
        return CrepePitch(name.split("-", 1)[1], device=device)
    raise ConfigError(f"--pitch-estimator {name!r}: choose one of {', '.join(ESTIMATORS)}")


def pitch_accuracy(
    clips: Iterable[np.ndarray],
    targets: list[int],
    sample_rate: int,
    tolerance_cents: float = 50.0,
    estimator: PitchEstimator = estimate_pitch,
) -> dict[str, object]:
    """Fraction of clips whose estimated pitch is within ``tolerance_cents`` of its target.

    ``estimator`` defaults to pYIN for backward compatibility; :func:`get_estimator` builds the
    others. Each note's row keeps the estimate, so failures can be inspected.
    """
    rows = []
    for clip, target in zip(clips, targets):
        est = estimator(clip, sample_rate)
        off = est.cents_off(target)
        rows.append({"target": int(target), "estimated_midi": est.midi, "cents_off": off,
                     "voiced_fraction": est.voiced_fraction, "confidence": est.confidence,
                     "correct": off <= tolerance_cents})
    correct = sum(r["correct"] for r in rows)
    return {"accuracy": correct / max(1, len(rows)), "correct": correct, "total": len(rows),
            "tolerance_cents": tolerance_cents,
            "estimator": getattr(estimator, "name", type(estimator).__name__), "notes": rows}
