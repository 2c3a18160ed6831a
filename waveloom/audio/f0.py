"""Fundamental frequency and voicing confidence at a frame rate, for DDSP's pitch control.

Every method estimates f0 every ``hop_seconds`` on the audio resampled to 16 kHz (CREPE's rate;
YIN runs there too so the methods see the same signal), and the estimates are linearly
interpolated (in Hz) to the frame times ``i / frame_rate``, ``F = ceil(T * frame_rate / sr)``.

Methods:

* ``crepe-full`` / ``crepe-tiny``: CREPE (:mod:`waveloom.audio.crepe`), decoded by the local
  weighted average (``decoder='weighted'``) or the Viterbi path; confidence = the chosen bin's
  probability, 0 for frames under CREPE's silence level.
* ``yin``: :func:`waveloom.audio.yin.yin` (numpy, fast, no librosa import); confidence is a
  level gate (1 above the silence level, else 0): YIN gives no voicing probability.
* ``pyin``: ``librosa.pyin``, slower; confidence = its voiced probability.

The accuracy/speed trade-off is measured in ``benchmarks/ddsp_synth.py`` (docs/ddsp.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from waveloom.audio import crepe
from waveloom.audio.io import resample
from waveloom.audio.tuning import midi_hz
from waveloom.audio.yin import yin
from waveloom.errors import ConfigError

METHODS = ("crepe-full", "crepe-tiny", "yin", "pyin")
FMIN = 32.70  # Hz (C1): YIN's lowest candidate; CREPE's own range starts at 31.7 Hz
FMAX = 1975.5  # Hz: the top of CREPE's range, used for every method


def _crepe(x16: np.ndarray, capacity: str, hop_seconds: float, decoder: str
           ) -> tuple[np.ndarray, np.ndarray]:
    frames, rms_db = crepe.frame_audio(x16, crepe.SAMPLE_RATE, hop_seconds)
    _, probs = crepe.activations(crepe.load_crepe(capacity), frames)
    midi, conf = crepe.decode_pitch(probs, decoder=decoder)
    f0 = midi_hz(midi.double().numpy())
    conf = np.where(rms_db.numpy() < crepe.SILENCE_DB, 0.0, conf.double().numpy())
    return f0, conf


def _frame_rms_db(x16: np.ndarray, hop: int, length: int, count: int) -> np.ndarray:
    padded = np.pad(x16, (length // 2, length // 2))
    idx = np.arange(count)[:, None] * hop + np.arange(length)[None, :]
    frames = padded[np.minimum(idx, len(padded) - 1)]
    return 10.0 * np.log10(np.maximum((frames**2).mean(1), 1e-20))


def _yin(x16: np.ndarray, hop_seconds: float, probabilistic: bool
         ) -> tuple[np.ndarray, np.ndarray]:
    hop = max(1, int(round(hop_seconds * crepe.SAMPLE_RATE)))
    count = 1 + len(x16) // hop
    if probabilistic:
        import librosa  # seconds to import (numba, scipy): only for pyin

        f0, _, prob = librosa.pyin(x16, fill_na=None, fmin=FMIN, fmax=FMAX, sr=crepe.SAMPLE_RATE,
                                   frame_length=2048, hop_length=hop)
        return f0[:count].astype(np.float64), prob[:count].astype(np.float64)
    f0 = yin(x16, crepe.SAMPLE_RATE, hop, FMIN, FMAX, frame_length=2048)[:count]
    loud = _frame_rms_db(x16, hop, 1024, len(f0)) >= crepe.SILENCE_DB
    return f0, loud.astype(np.float64)


def track_f0(audio: np.ndarray, sample_rate: int, frame_rate: int, method: str = "crepe-tiny",
             hop_seconds: float = 0.01, decoder: str = "weighted"
             ) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and confidence (``[0, 1]``) of mono ``audio [T]`` at ``frame_rate`` frames/s.

    Returns two float32 arrays of ``F = ceil(T * frame_rate / sample_rate)`` frames; frame ``i``
    describes time ``i / frame_rate``. ``decoder`` applies to the CREPE methods only.
    """
    if method not in METHODS:
        raise ConfigError(f"f0 method {method!r}: choose one of {', '.join(METHODS)}")
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ConfigError(f"track_f0 expects mono audio [T], got shape {x.shape}; mix down first")
    if sample_rate <= 0 or frame_rate <= 0 or hop_seconds <= 0:
        raise ConfigError(f"track_f0: sample_rate={sample_rate}, frame_rate={frame_rate} and "
                          f"hop_seconds={hop_seconds} must be positive")
    n_frames = math.ceil(len(x) * frame_rate / sample_rate)
    if n_frames == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    x16 = resample(x, int(sample_rate), crepe.SAMPLE_RATE)
    with torch.inference_mode():
        if method.startswith("crepe"):
            f0, conf = _crepe(x16, method.split("-")[1], hop_seconds, decoder)
        else:
            f0, conf = _yin(x16, hop_seconds, probabilistic=method == "pyin")
    hop16 = max(1, int(round(hop_seconds * crepe.SAMPLE_RATE)))
    times = np.arange(len(f0)) * hop16 / crepe.SAMPLE_RATE
    frame_times = np.arange(n_frames) / frame_rate
    f0_out = np.interp(frame_times, times, np.nan_to_num(f0, nan=0.0))
    conf_out = np.interp(frame_times, times, np.clip(np.nan_to_num(conf), 0.0, 1.0))
    return f0_out.astype(np.float32), conf_out.astype(np.float32)
