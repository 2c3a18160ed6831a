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
        capacity: 'tiny' (fast, ~2 ms per frame on one CPU core) or 'full' (the strict judge:
            ~1.4 G multiply-adds per frame, 20-60x slower than tiny).
        hop_seconds: frame hop; notes are near-stationary, so 20 ms loses little.
        threshold: minimum periodicity of a voiced frame (CREPE's confidence, in [0, 1]).
        fmin, fmax: search range in Hz (CREPE covers 31.7-1975.5 Hz).
        decoder: 'weighted' (each frame's argmax, the paper's) or 'viterbi' (a smoothed track).
        batch_frames: frames per network call; :meth:`many` batches frames across notes.
        skip_silent: drop frames quieter than -60 dBFS *before* the network (default). They can
            never count as voiced (with ``False`` they run through the network and are then
            marked unvoiced, torchcrepe's silence threshold), so the weighted decoder gives the
            same pitch either way and the release tails' cost is saved; the Viterbi track is
            then smoothed over the loud frames only.
    """

    def __init__(self, capacity: str = "tiny", *, hop_seconds: float = 0.02,
                 threshold: float = 0.5, fmin: float = 31.7, fmax: float = 1975.5,
                 device: str = "cpu", decoder: str = "weighted", batch_frames: int = 512,
                 skip_silent: bool = True):
        from waveloom.audio.crepe import DECODERS, load_crepe

        if decoder not in DECODERS:
            raise ConfigError(f"--pitch-decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
        self.name = f"crepe-{capacity}" + ("" if decoder == "weighted" else f"-{decoder}")
        self.model = load_crepe(capacity, str(device))
        self.hop_seconds, self.threshold = hop_seconds, threshold
        self.fmin, self.fmax, self.decoder = fmin, fmax, decoder
        self.batch_frames, self.skip_silent = batch_frames, skip_silent
        self.frames_run = 0  # frames through the network so far (for timing reports)

    def __call__(self, audio: np.ndarray, sample_rate: int) -> PitchEstimate:
        return self.many([audio], sample_rate)[0]

    def many(self, clips: Iterable[np.ndarray], sample_rate: int) -> list[PitchEstimate]:
        """Estimates of every clip, frames of several notes batched into one network call."""
        import torch

        from waveloom.audio.crepe import SILENCE_DB, activations, frame_audio

        out: list[PitchEstimate] = []
        pending: list[torch.Tensor] = []
        loud: list[torch.Tensor] = []

        def flush() -> None:
            if not pending:
                return
            _, probs = activations(self.model, torch.cat(pending), self.batch_frames)
            for part, mask in zip(torch.split(probs, [len(f) for f in pending]), loud):
                out.append(self._note(part, mask))
            pending.clear()
            loud.clear()

        for clip in clips:
            frames, rms_db = frame_audio(clip, sample_rate, self.hop_seconds)
            mask = rms_db > SILENCE_DB
            pending.append(frames[mask] if self.skip_silent else frames)
            loud.append(mask[mask] if self.skip_silent else mask)
            self.frames_run += len(pending[-1])
            if sum(len(f) for f in pending) >= self.batch_frames:
                flush()
        flush()
        return out

    def _note(self, probs, loud) -> PitchEstimate:
        """The note's estimate from its frames' ``probs [M, 360]``; ``loud [M]`` (bool) marks
        the frames above the silence threshold (the others are never voiced)."""
        from waveloom.audio.crepe import decode_pitch

        if probs.shape[0] == 0:
            return PitchEstimate(math.nan, 0.0, math.nan)
        midi, periodicity = decode_pitch(probs, self.fmin, self.fmax, self.decoder)
        voiced = (periodicity >= self.threshold) & loud
        if not bool(voiced.any()):
            return PitchEstimate(math.nan, 0.0, math.nan)
        m, w = midi[voiced].double().numpy(), periodicity[voiced].double().numpy()
        # Voiced share of the loud frames: the same whether silent frames were skipped or not.
        return PitchEstimate(weighted_median(m, w), float(voiced.sum() / loud.sum()),
                             float(w.mean()))


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The smallest value whose cumulative weight reaches half the total (``[n]`` arrays)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def get_estimator(name: str = "crepe-tiny", device: str = "cpu", *, hop_seconds: float = 0.02,
                  decoder: str = "weighted") -> PitchEstimator:
    """The pitch estimator called ``name`` (one of :data:`ESTIMATORS`); CREPE takes a hop (s)
    and a decoder ('weighted' | 'viterbi')."""
    if name == "pyin":
        return estimate_pitch
    if name.startswith("crepe-") and name in ESTIMATORS:
        return CrepePitch(name.split("-", 1)[1], device=device, hop_seconds=hop_seconds,
                          decoder=decoder)
    raise ConfigError(f"--pitch-estimator {name!r}: choose one of {', '.join(ESTIMATORS)}")


#: Semitone offsets counted as octave errors and as fifth errors (the estimator locked onto a
#: harmonic or subharmonic: a fifth, a twelfth = octave + fifth, either direction).
OCTAVES = (-24, -12, 12, 24)
FIFTHS = (-19, -7, 7, 19)


def error_kind(estimated_midi: float, target: float, tolerance_cents: float) -> str:
    """'correct', 'octave', 'fifth', 'other' (any other pitch) or 'unvoiced' (no estimate)."""
    if not math.isfinite(estimated_midi):
        return "unvoiced"
    diff = estimated_midi - target
    if abs(diff) * 100.0 <= tolerance_cents:
        return "correct"
    for kind, offsets in (("octave", OCTAVES), ("fifth", FIFTHS)):
        if any(abs(diff - k) * 100.0 <= tolerance_cents for k in offsets):
            return kind
    return "other"


def pitch_accuracy(
    clips: Iterable[np.ndarray],
    targets: list[int],
    sample_rate: int,
    tolerance_cents: float = 50.0,
    estimator: PitchEstimator = estimate_pitch,
) -> dict[str, object]:
    """Fraction of clips whose estimated pitch is within ``tolerance_cents`` of its target.

    Strict: a note heard an octave or a fifth away is wrong; those errors are also counted on
    their own (``errors``: octave, fifth, other, unvoiced), since they say whether the model or
    the judge locked onto a harmonic. ``estimator`` defaults to pYIN for backward compatibility;
    :func:`get_estimator` builds the others (CREPE batches frames across notes). Each note's row
    keeps the estimate, so failures can be inspected.
    """
    targets = list(targets)
    if hasattr(estimator, "many"):
        estimates = estimator.many(clips, sample_rate)
    else:
        estimates = [estimator(clip, sample_rate) for clip, _ in zip(clips, targets)]
    rows = []
    errors = {"octave": 0, "fifth": 0, "other": 0, "unvoiced": 0}
    for est, target in zip(estimates, targets):
        kind = error_kind(est.midi, target, tolerance_cents)
        if kind != "correct":
            errors[kind] += 1
        rows.append({"target": int(target), "estimated_midi": est.midi,
                     "cents_off": est.cents_off(target), "voiced_fraction": est.voiced_fraction,
                     "confidence": est.confidence, "correct": kind == "correct", "error": kind})
    correct = sum(r["correct"] for r in rows)
    return {"accuracy": correct / max(1, len(rows)), "correct": correct, "total": len(rows),
            "errors": errors, "tolerance_cents": tolerance_cents,
            "estimator": getattr(estimator, "name", type(estimator).__name__), "notes": rows}


def read_targets_csv(path) -> dict[str, int]:
    """``name,pitch`` rows (a header line is allowed) -> {clip name: MIDI pitch}.

    Names are clip names as the set reports them (file path without extension); a name given
    with an audio extension is accepted too.
    """
    import csv
    from pathlib import Path

    from waveloom.errors import DataError

    out: dict[str, int] = {}
    with open(path, newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise DataError(f"{path}: line {i + 1}: expected name,pitch, got {row}")
            try:
                pitch = int(round(float(row[1])))
            except ValueError:
                if i == 0:
                    continue  # header
                raise DataError(f"{path}: line {i + 1}: pitch {row[1]!r} is not a number "
                                "(MIDI)") from None
            name = row[0].strip()
            suffix = Path(name).suffix.lower()
            out[name[: -len(suffix)] if suffix in (".wav", ".flac", ".mp3", ".ogg") else name] = \
                pitch
    return out
