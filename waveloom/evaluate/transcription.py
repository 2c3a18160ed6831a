"""Notes from a transcriber's predictions, and how good they are (mir_eval).

Decoding (:func:`decode`), per key, as Onsets and Frames does: a note starts where the onset
probability rises above ``onset_threshold``; it lasts while the frame (or the onset)
probability stays above ``frame_threshold``, at least one frame, and ends early where the
next onset of the same key starts; its velocity is the velocity head at its onset.

Scores (:func:`score`), each precision / recall / F1 by mir_eval as the paper reports them:

* ``note``: a note is found when the pitch is right and its onset within 50 ms;
* ``note_with_offset``: the offset too, within 20 % of the note's length or 50 ms;
* ``frame``: every (16 ms frame, key) pair that sounds, against the score's.

Long audio is transcribed in chunks (:data:`CHUNK_SECONDS` with :data:`OVERLAP_SECONDS` each
side) so memory stays bounded; each chunk keeps the predictions of its middle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from waveloom.audio.tuning import midi_hz
from waveloom.data.note_labels import LOWEST_KEY
from waveloom.errors import DataError

CHUNK_SECONDS = 60.0
OVERLAP_SECONDS = 2.0


def decode(probs: dict[str, np.ndarray], hop_seconds: float, onset_threshold: float = 0.5,
           frame_threshold: float = 0.5) -> np.ndarray:
    """Probabilities ``[F, 88]`` (``onset``, ``frame``, ``velocity``) -> notes float64
    ``[N, 4]``: onset s, offset s, MIDI pitch, velocity 1-127, sorted by onset."""
    onset, frame = probs["onset"] > onset_threshold, probs["frame"] > frame_threshold
    n_frames = onset.shape[0]
    starts = onset & ~np.vstack([np.zeros((1, onset.shape[1]), bool), onset[:-1]])
    notes = []
    for key in np.flatnonzero(starts.any(axis=0)):
        sounding = frame[:, key] | onset[:, key]
        begins = np.flatnonzero(starts[:, key])
        for i, begin in enumerate(begins):
            limit = begins[i + 1] if i + 1 < len(begins) else n_frames
            quiet = np.flatnonzero(~sounding[begin + 1 : limit])
            end = begin + 1 + (quiet[0] if len(quiet) else limit - begin - 1)
            velocity = float(np.clip(round(probs["velocity"][begin, key] * 127), 1, 127))
            notes.append((begin * hop_seconds, end * hop_seconds, key + LOWEST_KEY, velocity))
    table = np.array(notes, np.float64).reshape(-1, 4)
    return table[np.argsort(table[:, 0], kind="stable")]


def _prf(found: int, n_est: int, n_ref: int) -> tuple[float, float, float]:
    p = found / n_est if n_est else 0.0
    r = found / n_ref if n_ref else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def frame_roll(notes: np.ndarray, n_frames: int, hop_seconds: float) -> np.ndarray:
    """Boolean ``[n_frames, 128]``: frame k (centred at k * hop) sounds pitch p."""
    roll = np.zeros((n_frames, 128), bool)
    for on, off, pitch in notes[:, :3]:
        a, b = int(math.ceil(on / hop_seconds)), int(math.ceil(off / hop_seconds))
        roll[max(a, 0) : min(max(b, a + 1), n_frames), int(pitch)] = True
    return roll


def score(reference: np.ndarray, estimate: np.ndarray, hop_seconds: float = 0.016) -> dict:
    """mir_eval precision/recall/F1 of ``estimate`` against ``reference`` (notes ``[N, >=3]``:
    onset s, offset s, pitch): keys ``note``, ``note_with_offset``, ``frame`` -> (P, R, F1)."""
    from mir_eval.transcription import match_notes

    reference = np.asarray(reference, np.float64)
    estimate = np.asarray(estimate, np.float64)
    estimate = estimate.reshape(-1, estimate.shape[-1]) if estimate.size else np.zeros((0, 3))
    if len(reference) == 0:
        raise DataError("the reference score has no notes to score against")
    out = {}
    for name, ratio in (("note", None), ("note_with_offset", 0.2)):
        if len(estimate) == 0:
            out[name] = (0.0, 0.0, 0.0)
            continue
        matched = match_notes(reference[:, :2], midi_hz(reference[:, 2]), estimate[:, :2],
                              midi_hz(estimate[:, 2]), onset_tolerance=0.05,
                              pitch_tolerance=50.0, offset_ratio=ratio, offset_min_tolerance=0.05)
        out[name] = _prf(len(matched), len(estimate), len(reference))
    end = max(reference[:, 1].max(), estimate[:, 1].max() if len(estimate) else 0.0)
    n = int(math.ceil(end / hop_seconds)) + 1
    ref, est = frame_roll(reference, n, hop_seconds), frame_roll(estimate, n, hop_seconds)
    out["frame"] = _prf(int((ref & est).sum()), int(est.sum()), int(ref.sum()))
    return out


@torch.no_grad()
def predict(model: Any, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Probabilities ``[len(audio) // hop, 88]`` of float audio ``[T]``, in overlapping chunks."""
    c = model.config
    hop = c.hop
    if len(audio) < hop:
        raise DataError(f"{len(audio)} samples is shorter than one frame ({hop} samples, "
                        f"{hop / c.sample_rate * 1000:.0f} ms); give longer audio")
    n_frames = len(audio) // hop
    chunk = int(CHUNK_SECONDS * c.sample_rate / hop)
    pad = int(OVERLAP_SECONDS * c.sample_rate / hop)
    device = next(model.parameters()).device
    out = {k: np.zeros((n_frames, 88), np.float32) for k in ("onset", "offset", "frame",
                                                             "velocity")}
    for first in range(0, n_frames, chunk):
        lo, hi = max(first - pad, 0), min(first + chunk + pad, n_frames)
        piece = torch.as_tensor(audio[lo * hop : hi * hop], dtype=torch.float32, device=device)
        probs = model.probabilities(piece[None])
        keep = slice(first - lo, first - lo + min(chunk, n_frames - first))
        for k in out:
            out[k][first : first + chunk] = probs[k][0, keep].float().cpu().numpy()
    return out


def transcribe_audio(model: Any, audio: np.ndarray, onset_threshold: float = 0.5,
                     frame_threshold: float = 0.5) -> np.ndarray:
    """Notes ``[N, 4]`` (onset s, offset s, pitch, velocity) of float audio ``[T]`` at the
    model's sample rate."""
    probs = predict(model, audio)
    return decode(probs, model.config.hop / model.config.sample_rate, onset_threshold,
                  frame_threshold)


def load_transcriber(checkpoint: str | Path, device: str = "cpu") -> Any:
    """A transcriber checkpoint in eval mode (a one-line error for another family)."""
    from waveloom.device import pick_device
    from waveloom.models.load import load_checkpoint

    model, _ = load_checkpoint(checkpoint, pick_device(device), expect_family="transcriber")
    return model.eval()


def transcribe_files(checkpoint: str | Path | Any, paths: Sequence[str | Path]
                     ) -> list[np.ndarray]:
    """Notes ``[N, 4]`` of each audio file (resampled to the model's rate when needed)."""
    from waveloom.audio.io import load_audio

    model = checkpoint if hasattr(checkpoint, "probabilities") else load_transcriber(checkpoint)
    return [transcribe_audio(model, load_audio(p, model.config.sample_rate)[0]) for p in paths]
