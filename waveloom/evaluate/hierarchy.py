"""Scores for hierarchies of discrete codes: per-level reconstruction and code likelihood, and
a long-range structure measure for long samples.

* :func:`level_scores` -- for each ADA level (bottom first): the audio reconstructed through
  that level and every level below it (encode down to the level's codes, then sample back up
  with the decoders) against the original, as a multi-scale spectral distance; the level's
  decoder NLL given its own codes (bits per step); its code perplexity. And the prior's NLL of
  the top codes (bits per code) -- what the codes cost to model.
* :func:`chroma_structure` -- does a sample keep its harmony? The 12-bin chroma profile of
  seconds 0-5 is correlated (Pearson, so a flat profile scores ~0 against anything) with the
  profile of seconds 10-25, and the mean frame-to-frame chroma correlation between the two
  spans is reported beside it. A piece that stays in its key scores high on both; a model whose
  memory ends after its receptive field drifts, and scores lower. Caveat: a *static* sound (a
  drone, stationary noise) scores high too, since nothing changes at all; so the same function
  reports what tells those apart: ``chroma_change`` (how much the harmony moves from frame to
  frame within seconds 10-25: ~0 for a drone), ``key_clarity`` (the best correlation of each
  span's profile with the 24 Krumhansl-Kessler key profiles: high for tonal music, low for
  noise) and ``same_key`` (whether both spans pick the same key). Read them together, against
  real pieces of the same data.

Numbers only mean something relative to a reference computed the same way (real pieces of the
same data set) and between models of similar cost; ``benchmarks/hierarchy_eval.py`` does both.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from waveloom.errors import DataError

EARLY = (0.0, 5.0)
LATE = (10.0, 25.0)


def chroma(audio: np.ndarray, sample_rate: int, hop: int = 2048) -> np.ndarray:
    """Chroma ``[12, frames]`` of mono ``audio`` (librosa's STFT chroma, ``hop`` samples)."""
    import librosa

    y = np.asarray(audio, np.float32)
    return librosa.feature.chroma_stft(y=y, sr=sample_rate, hop_length=hop, n_fft=4096)


def _span(c: np.ndarray, sample_rate: int, hop: int, span: tuple[float, float]) -> np.ndarray:
    lo, hi = (int(round(s * sample_rate / hop)) for s in span)
    return c[:, lo:hi]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denom if denom > 0 else 0.0


#: Krumhansl-Kessler probe-tone profiles (C major and C minor; other keys are rotations).
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def best_key(profile: np.ndarray) -> tuple[int, float]:
    """(key index: 0-11 major on C..B, 12-23 minor; its Pearson correlation) of a chroma
    profile [12] against the Krumhansl-Kessler key profiles."""
    scores = [_pearson(profile, np.roll(base, k)) for base in (KK_MAJOR, KK_MINOR)
              for k in range(12)]
    k = int(np.argmax(scores))
    return k, float(scores[k])


def chroma_structure(
    audio: np.ndarray,
    sample_rate: int,
    early: tuple[float, float] = EARLY,
    late: tuple[float, float] = LATE,
    hop: int = 2048,
) -> dict[str, float]:
    """Long-range harmonic consistency of one clip (module docstring).

    Returns ``profile_correlation`` (Pearson correlation of the mean chroma of ``early`` and
    of ``late`` seconds, in [-1, 1]), ``frame_correlation`` (mean Pearson correlation of
    every early frame with every late frame), ``chroma_change`` (mean absolute change of the
    sum-normalised chroma between consecutive late frames, 0..2), ``key_clarity`` (mean of
    the two spans' best key correlations) and ``same_key`` (1.0 if both spans pick the same
    key, else 0.0). Raises :class:`DataError` if the clip is shorter than ``late[1]``
    seconds."""
    needed = int(math.ceil(late[1] * sample_rate))
    if len(audio) < needed:
        raise DataError(f"chroma_structure needs {late[1]:g} s of audio, got "
                        f"{len(audio) / sample_rate:.1f} s; generate longer samples")
    c = chroma(audio[:needed], sample_rate, hop)
    a, b = _span(c, sample_rate, hop, early), _span(c, sample_rate, hop, late)
    profile = _pearson(a.mean(1), b.mean(1))
    ac = a - a.mean(0, keepdims=True)
    bc = b - b.mean(0, keepdims=True)
    an = ac / np.maximum(np.linalg.norm(ac, axis=0, keepdims=True), 1e-9)
    bn = bc / np.maximum(np.linalg.norm(bc, axis=0, keepdims=True), 1e-9)
    bs = b / np.maximum(b.sum(0, keepdims=True), 1e-9)
    change = float(np.abs(np.diff(bs, axis=1)).sum(0).mean()) if bs.shape[1] > 1 else 0.0
    (ka, ca), (kb, cb) = best_key(a.mean(1)), best_key(b.mean(1))
    return {"profile_correlation": profile, "frame_correlation": float((an.T @ bn).mean()),
            "chroma_change": change, "key_clarity": 0.5 * (ca + cb),
            "same_key": float(ka == kb)}


@torch.no_grad()
def level_scores(
    hierarchy: Any,
    clips: list[np.ndarray],
    *,
    seconds: float = 1.0,
    seed: int = 0,
    engine: str = "auto",
) -> list[dict[str, float]]:
    """Per-level scores of a :class:`~waveloom.sampling.hierarchy.Hierarchy` on audio
    ``clips`` (each cropped to ``seconds``), bottom level first, then one entry for the prior.

    A level entry: ``level`` (1 = waveform level), ``spectral_distance`` (original vs the
    reconstruction through this level and those below it, sampled at temperature 1),
    ``bits_per_step`` (the level's decoder NLL given its codes, teacher-forced),
    ``perplexity`` (of its codes on the clips). The prior's entry: ``bits_per_code``.
    """
    from waveloom.audio.spectral import multiscale_spectral_distance
    from waveloom.config import SamplingOptions
    from waveloom.nn.quantize import perplexity
    from waveloom.sampling.autoregressive import decode_steps

    levels = list(reversed(hierarchy.levels))  # bottom first
    sr = hierarchy.sample_rate
    n = int(round(seconds * sr))
    hop_all = hierarchy.total_hop
    n -= n % hop_all
    if n <= 0:
        raise DataError(f"seconds={seconds} is shorter than one top-level code")
    audio = torch.stack([torch.as_tensor(c[:n], dtype=torch.float32) for c in clips])
    if audio.shape[-1] < n:
        raise DataError("every clip must be at least `seconds` long")
    device = levels[0].stack.out2.weight.device
    audio = audio.to(device)
    # codes going up: inputs[i] is what level i reads (audio, then codes of level i-1)
    inputs: list[torch.Tensor] = [audio]
    for level in levels:
        inputs.append(level.encode(inputs[-1]))
    results = []
    for i, level in enumerate(levels):
        codes = inputs[i + 1]
        x = inputs[i]
        tokens = level.tokens(x) if not level.codes_in else x
        params = level.decoder_params(tokens, codes)
        logp = level._log_probs(params, tokens)
        bits = float(-logp.mean()) / math.log(2.0)
        # reconstruct: decode from this level's codes down to audio
        z = codes
        for j in range(i, -1, -1):
            steps = inputs[j].shape[-1]
            z = decode_steps(levels[j], z, steps,
                             SamplingOptions(seed=seed + j, progress=False, engine=engine))
        recon = levels[0].head.decode(z).clamp(-1, 1)
        dist = multiscale_spectral_distance(audio.cpu(), recon.float().cpu())
        results.append({
            "level": i + 1,
            "hop": level.hop,
            "spectral_distance": float(dist.mean()),
            "bits_per_step": bits,
            "perplexity": float(perplexity(codes, level.codebook_size)),
        })
    top = inputs[-1]
    prior = hierarchy.prior
    ctx = prior.context
    pad = torch.full((top.shape[0], ctx), prior.pad, dtype=torch.long, device=top.device)
    tokens = torch.cat([pad, top], 1)
    cond_g = None
    if prior.global_cond is not None:
        cond_g = prior.global_cond(None, None, batch=top.shape[0])
    params = prior.stack(tokens[:, :-1], cond_g, None, padded=False)
    logp = prior._log_probs(params, tokens[:, ctx:])
    results.append({"level": "prior", "bits_per_code": float(-logp.mean()) / math.log(2.0)})
    return results
