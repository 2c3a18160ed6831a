"""Spectral transforms: STFT, mel, constant-Q, instantaneous frequency, Griffin-Lim, distances.

Everything is torch (so it runs on the model's device and can sit inside a loss) and takes
``[T]`` or ``[..., T]`` audio as a tensor or numpy array; outputs are always torch tensors with
the leading dimensions kept. Conventions shared by every function here:

* Frames are *centred*: frame ``m`` is centred on sample ``m * hop`` and there are
  ``1 + T // hop`` of them. The signal is zero-padded (not reflect-padded) by ``n_fft // 2`` at
  both ends, so any length, including a single sample, is valid input.
* Magnitudes are the raw DFT sums (no 1/N): a unit sine under a Hann window of ``n_fft`` samples
  peaks at ``n_fft / 4`` in :func:`stft`. :func:`cqt` is instead normalised so that its magnitude
  *is* the amplitude of a sinusoid centred on a bin.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from waveloom.audio.mel_scale import _mel_filterbank_np, hz_to_mel, mel_to_hz  # noqa: F401

__all__ = [
    "cqt",
    "cqt_frequencies",
    "griffin_lim",
    "hz_to_mel",
    "instantaneous_frequency",
    "istft",
    "log_magnitude",
    "magnitude",
    "mel_filterbank",
    "mel_spectrogram",
    "mel_to_hz",
    "multiscale_spectral_distance",
    "phase_from_if",
    "spectral_convergence",
    "stft",
]


def _as_tensor(x) -> Tensor:
    """numpy / list / tensor -> floating (or complex) tensor, sharing memory where possible."""
    if not isinstance(x, Tensor):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not (x.is_floating_point() or x.is_complex()):
        x = x.float()
    return x


def _window(win, n_fft: int, like: Tensor) -> Tensor:
    """The analysis window: periodic Hann of ``n_fft`` by default (COLA at hop n_fft/4)."""
    dtype = like.real.dtype if like.is_complex() else like.dtype
    if win is None:
        return torch.hann_window(n_fft, periodic=True, dtype=dtype, device=like.device)
    win = _as_tensor(win).to(device=like.device, dtype=dtype)
    if win.ndim != 1 or win.numel() > n_fft:
        raise ValueError(f"window must be 1-D with at most n_fft={n_fft} samples, got {win.shape}")
    return win


# ------------------------------------------------------------------------------------ STFT


def stft(x, n_fft: int = 1024, hop: int = 256, win=None) -> Tensor:
    """Centred short-time Fourier transform.

    Args:
        x: audio ``[..., T]`` (tensor or numpy).
        n_fft: frame length in samples (the FFT size).
        hop: frame advance in samples.
        win: window ``[<= n_fft]``; default periodic Hann of ``n_fft`` samples.

    Returns:
        complex ``[..., n_fft // 2 + 1, 1 + T // hop]`` (frequency bins, frames).
    """
    x = _as_tensor(x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"stft needs audio of shape [..., T] with T > 0, got {tuple(x.shape)}")
    lead, t = x.shape[:-1], x.shape[-1]
    spec = torch.stft(
        x.reshape(-1, t),
        n_fft,
        hop_length=hop,
        window=_window(win, n_fft, x),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec, hop: int = 256, win=None, length: int | None = None) -> Tensor:
    """Inverse of :func:`stft` by weighted overlap-add; ``n_fft`` is ``2 * (F - 1)``.

    Args:
        spec: complex ``[..., F, frames]``.
        hop, win: as given to :func:`stft`.
        length: output length in samples; default ``(frames - 1) * hop``.

    Returns:
        real ``[..., T]``.
    """
    spec = _as_tensor(spec)
    lead, (f, frames) = spec.shape[:-2], spec.shape[-2:]
    n_fft = 2 * (f - 1)
    out = torch.istft(
        spec.reshape(-1, f, frames),
        n_fft,
        hop_length=hop,
        window=_window(win, n_fft, spec),
        center=True,
        length=length,
    )
    return out.reshape(*lead, out.shape[-1])


def magnitude(spec) -> Tensor:
    """``|spec|`` of a complex spectrogram (a real input is taken as a magnitude already)."""
    spec = _as_tensor(spec)
    return spec.abs() if spec.is_complex() else spec


def log_magnitude(spec, eps: float = 1e-5) -> Tensor:
    """Natural log of the magnitude, floored at ``eps`` (-11.5 for 1e-5) so silence is finite.

    A floor (``log(max(|S|, eps))``) rather than an offset (``log(|S| + eps)``) keeps the log
    exact above the floor, which matters for the log term of spectral distances.
    """
    return torch.log(magnitude(spec).clamp_min(eps))


def spectral_convergence(mag_ref, mag_est) -> Tensor:
    """``||M_ref - M_est||_F / ||M_ref||_F`` over the last two dims (Sturmel & Daudet 2011)."""
    mag_ref, mag_est = magnitude(mag_ref), magnitude(mag_est)
    num = torch.linalg.matrix_norm(mag_ref - mag_est)
    return num / torch.linalg.matrix_norm(mag_ref).clamp_min(1e-12)


# ------------------------------------------------------------------------------------- mel


def mel_filterbank(
    sr: int, n_fft: int, n_mels: int = 80, fmin: float = 0.0, fmax: float | None = None
) -> Tensor:
    """Triangular mel filters ``[n_mels, n_fft // 2 + 1]`` (float32) on the Slaney mel scale.

    Filter ``i`` rises linearly from mel edge ``i`` to its centre ``i + 1`` and falls to edge
    ``i + 2`` (edges evenly spaced in mel between ``fmin`` and ``fmax``, default ``sr / 2``), and
    is scaled by ``2 / (f_hi - f_lo)`` so its area over Hz is one ("Slaney" normalisation, the
    librosa default and what HiFi-GAN-style vocoders were trained on).
    """
    fmax = sr / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= fmin < fmax <= sr / 2.0 + 1e-6:
        raise ValueError(f"need 0 <= fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    fb = _mel_filterbank_np(int(sr), int(n_fft), int(n_mels), float(fmin), float(fmax))
    return torch.tensor(fb, dtype=torch.float32)


def mel_spectrogram(
    x,
    sr: int,
    n_fft: int = 1024,
    hop: int = 256,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    log: bool = True,
    eps: float = 1e-5,
) -> Tensor:
    """Mel spectrogram of the STFT *magnitude*: ``[..., n_mels, 1 + T // hop]``.

    Magnitude (not power) with a natural-log floor at ``eps`` is the vocoder convention, so
    these features can condition WaveNet-style decoders directly.
    """
    x = _as_tensor(x)
    mag = stft(x, n_fft, hop).abs()
    fb = mel_filterbank(sr, n_fft, n_mels, fmin, fmax).to(device=mag.device, dtype=mag.dtype)
    mel = torch.matmul(fb, mag)
    return torch.log(mel.clamp_min(eps)) if log else mel


# ------------------------------------------------------------------------------------- CQT


def cqt_frequencies(fmin: float = 32.7, n_bins: int = 84, bins_per_octave: int = 12) -> np.ndarray:
    """Centre frequencies ``fmin * 2 ** (k / bins_per_octave)`` in Hz, ``[n_bins]``."""
    return fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)


@lru_cache(maxsize=16)
def _cqt_kernels(
    sr: int, fmin: float, n_bins: int, bins_per_octave: int, filter_scale: float, threshold: float
) -> tuple[int, tuple[tuple[int, int, np.ndarray], ...]]:
    """Brown & Puckette (1992) spectral kernels: per bin, a band ``[lo, hi)`` of rfft bins.

    The temporal kernel of bin k is ``2 w(n) / sum(w) * exp(2 pi i f_k n / sr)`` with ``w`` a
    Hann window of ``N_k = Q sr / f_k`` samples centred in a frame of ``L`` (a power of two >=
    the longest kernel). By Parseval the CQ coefficient of a frame is ``(1/L) X . conj(K)`` with
    ``X, K`` their DFTs. ``K`` is concentrated around ``f_k`` (the window's main lobe), so only
    entries above ``threshold * max|K|`` are kept: one FFT per frame plus ~``15 L / 2``
    multiply-adds for all 84 bins (1e-4 threshold) instead of ``84 L / 2``. Only the
    positive-frequency half of a real signal's spectrum is used: the kernel's image at ``-f_k``
    lies ``2 Q`` window bins from its peak, where a Hann spectrum is ~1e-5 of it, at the level
    of ``threshold``.
    """
    q = filter_scale / (2.0 ** (1.0 / bins_per_octave) - 1.0)
    freqs = cqt_frequencies(fmin, n_bins, bins_per_octave)
    lengths = np.ceil(q * sr / freqs).astype(int)
    big = 1 << int(math.ceil(math.log2(max(lengths.max(), 2))))
    bands = []
    for f_k, n_k in zip(freqs, lengths):
        # Hann without zero end points; the phase origin is the frame centre, sample big // 2.
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * (np.arange(n_k) + 0.5) / n_k)
        start = big // 2 - n_k // 2
        n = np.arange(start, start + n_k) - big // 2
        kernel = np.zeros(big, dtype=np.complex128)
        kernel[start : start + n_k] = 2.0 * w / w.sum() * np.exp(2j * np.pi * f_k * n / sr)
        spec = np.fft.fft(kernel)[: big // 2 + 1]
        mag = np.abs(spec)
        keep = np.nonzero(mag >= threshold * mag.max())[0]
        lo, hi = int(keep[0]), int(keep[-1]) + 1
        bands.append((lo, hi, np.conj(spec[lo:hi]) / big))
    return big, tuple(bands)


def cqt(
    x,
    sr: int,
    hop: int = 256,
    fmin: float = 32.7,
    n_bins: int = 84,
    bins_per_octave: int = 12,
    *,
    filter_scale: float = 1.0,
    threshold: float = 1e-4,
    chunk_frames: int = 64,
) -> Tensor:
    """Constant-Q transform with the Brown-Puckette spectral-kernel method.

    Bin ``k`` is centred at ``f_k = fmin * 2 ** (k / bins_per_octave)`` with quality
    ``Q = filter_scale / (2 ** (1 / bins_per_octave) - 1)``: its Hann-windowed complex kernel
    spans ``Q * sr / f_k`` samples, so every bin resolves the same fraction of an octave.
    Magnitudes are normalised so a sinusoid of amplitude ``A`` at ``f_k`` gives ``|C| = A`` in
    bin ``k``; phase is that of the sinusoid at the frame centre (advancing by
    ``2 pi f hop / sr`` per frame), as :func:`instantaneous_frequency` expects.

    Args:
        x: audio ``[..., T]``.
        sr: sample rate in Hz.
        hop: frame advance in samples; frames are centred as in :func:`stft`.
        fmin: frequency of bin 0 in Hz (32.70 Hz is C1).
        threshold: relative magnitude below which spectral-kernel entries are dropped.
        chunk_frames: frames transformed at once (bounds memory to ``chunk * L`` samples).

    Returns:
        complex ``[..., n_bins, 1 + T // hop]``.
    """
    x = _as_tensor(x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"cqt needs audio of shape [..., T] with T > 0, got {tuple(x.shape)}")
    f_top = fmin * 2.0 ** ((n_bins - 1) / bins_per_octave)
    if fmin <= 0 or f_top >= sr / 2.0:
        raise ValueError(
            f"cqt bins span {fmin:.1f}-{f_top:.1f} Hz but must lie in (0, sr/2={sr / 2:.0f}) Hz; "
            "lower n_bins or fmin"
        )
    big, bands = _cqt_kernels(
        int(sr),
        float(fmin),
        int(n_bins),
        int(bins_per_octave),
        float(filter_scale),
        float(threshold),
    )
    lead, t = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, t)
    ctype = torch.complex128 if flat.dtype == torch.float64 else torch.complex64
    kernels = [
        (lo, hi, torch.from_numpy(k).to(device=x.device, dtype=ctype)) for lo, hi, k in bands
    ]
    padded = torch.nn.functional.pad(flat, (big // 2, big // 2))
    frames = padded.unfold(-1, big, hop)[:, : 1 + t // hop]  # [B, M, L], a view
    out = torch.empty(flat.shape[0], n_bins, frames.shape[1], dtype=ctype, device=x.device)
    for start in range(0, frames.shape[1], chunk_frames):
        spec = torch.fft.rfft(frames[:, start : start + chunk_frames], dim=-1).to(ctype)
        for k, (lo, hi, kern) in enumerate(kernels):
            out[:, k, start : start + chunk_frames] = spec[..., lo:hi] @ kern
    return out.reshape(*lead, n_bins, out.shape[-1])


# ----------------------------------------------------------------------- instantaneous freq


def _wrap(phase: Tensor) -> Tensor:
    """Wrap angles to [-pi, pi)."""
    return torch.remainder(phase + math.pi, 2.0 * math.pi) - math.pi


def instantaneous_frequency(phase, time_axis: int = -1) -> Tensor:
    """GANSynth instantaneous frequency (Engel et al. 2019), in [-1, 1).

    The phase is unwrapped along time and finite-differenced; the first frame keeps its phase
    so the transform is invertible (:func:`phase_from_if`); everything is divided by pi. An
    unwrapped difference equals the wrapped difference, which is what is computed. For a
    sinusoid of frequency ``f`` the value is ``wrap(2 pi f hop / sr) / pi`` in every frame.

    Args:
        phase: phase angles in radians, e.g. ``torch.angle(stft(x))`` ``[..., F, frames]``.
        time_axis: the frames axis.
    """
    phase = _as_tensor(phase)
    first = phase.narrow(time_axis, 0, 1)
    dphase = torch.diff(phase, dim=time_axis)
    return torch.cat([_wrap(first), _wrap(dphase)], dim=time_axis) / math.pi


def phase_from_if(inst_freq, time_axis: int = -1) -> Tensor:
    """Inverse of :func:`instantaneous_frequency`: the *unwrapped* phase, ``pi * cumsum(IF)``.

    ``instantaneous_frequency(phase_from_if(f)) == f`` for ``f`` in [-1, 1), and
    ``phase_from_if(instantaneous_frequency(p))`` equals ``p`` modulo 2 pi.
    """
    return torch.cumsum(_as_tensor(inst_freq) * math.pi, dim=time_axis)


# ---------------------------------------------------------------------------- Griffin-Lim


def griffin_lim(
    mag,
    n_iter: int = 60,
    n_fft: int | None = None,
    hop: int = 256,
    momentum: float = 0.99,
    *,
    win=None,
    length: int | None = None,
    seed: int | None = 0,
    progress: bool = True,
) -> Tensor:
    """Audio whose STFT magnitude approximates ``mag``: fast Griffin-Lim (Perraudin et al. 2013).

    Alternates the projection onto spectrograms with the target magnitude and onto consistent
    spectrograms (``stft(istft(.))``), extrapolating each consistent estimate by ``momentum``
    times its last change: ``c_n = t_n + momentum (t_n - t_{n-1})``. ``momentum=0`` is the
    classic Griffin & Lim (1984) algorithm; 0.99 converges much faster (the paper's choice).

    Args:
        mag: target magnitude ``[..., F, frames]`` as produced by :func:`stft` (same hop/win).
        n_iter: iterations.
        n_fft: must equal ``2 * (F - 1)`` if given (a guard against mismatched settings).
        seed: seed of the random initial phase; ``None`` starts from zero phase.
        progress: show a tqdm bar over iterations.

    Returns:
        audio ``[..., T]`` with ``T = length or (frames - 1) * hop``.
    """
    mag = magnitude(mag)
    f = mag.shape[-2]
    if n_fft is not None and n_fft != 2 * (f - 1):
        raise ValueError(f"magnitude has {f} bins, i.e. n_fft={2 * (f - 1)}, not n_fft={n_fft}")
    ctype = torch.complex128 if mag.dtype == torch.float64 else torch.complex64
    if seed is None:
        phase = torch.zeros(mag.shape, dtype=torch.float64)
    else:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        phase = torch.rand(mag.shape, generator=gen, dtype=torch.float64) * (2.0 * math.pi)
    angles = torch.polar(torch.ones_like(phase), phase).to(device=mag.device, dtype=ctype)
    t_prev = None
    for _ in tqdm(range(n_iter), desc="griffin-lim", disable=not progress, leave=False):
        rebuilt = stft(istft(mag * angles, hop, win, length=length), 2 * (f - 1), hop, win)
        c = rebuilt if t_prev is None else rebuilt + momentum * (rebuilt - t_prev)
        t_prev = rebuilt
        angles = c / c.abs().clamp_min(1e-16)
    return istft(mag * angles, hop, win, length=length)


# ------------------------------------------------------------------------------- distances


def multiscale_spectral_distance(
    a,
    b,
    ffts: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64),
    overlap: float = 0.75,
    eps: float = 1e-7,
) -> Tensor:
    """Multi-scale spectral distance (DDSP, Engel et al. 2020) between audio ``[..., T]``.

    For each FFT size: mean ``|S_a - S_b|`` plus mean ``|log S_a - log S_b|`` over bins and
    frames, with ``S`` the STFT magnitude at hop ``n_fft * (1 - overlap)``; summed over sizes.
    The linear term weighs loud partials, the log term quiet detail and noise floors, and the
    range of sizes trades time against frequency resolution. Differentiable; returns one value
    per leading index (a scalar for ``[T]`` inputs).
    """
    a, b = _as_tensor(a), _as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"spectral distance needs equal shapes, got {a.shape} and {b.shape}")
    total = a.new_zeros(a.shape[:-1])
    for n_fft in ffts:
        hop = max(1, int(n_fft * (1.0 - overlap)))
        sa, sb = stft(a, n_fft, hop).abs(), stft(b, n_fft, hop).abs()
        lin = (sa - sb).abs().mean(dim=(-2, -1))
        log = (torch.log(sa.clamp_min(eps)) - torch.log(sb.clamp_min(eps))).abs().mean(dim=(-2, -1))
        total = total + lin + log
    return total
