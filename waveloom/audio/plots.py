"""Images of sounds: waveform, spectrograms (linear, mel, constant-Q) and rainbowgrams.

Used by training callbacks and evaluation to compare generated and real sounds by eye. Figures
are built with the object-oriented API on an Agg canvas and never enter pyplot's global figure
list, so no GUI backend is touched, nothing is ever shown, and no figure outlives its call (long
training runs that plot every N steps do not leak memory).

All images share conventions: time in seconds on x (frame ``m`` centred on ``m * hop / sr``),
frequency labelled in Hz (or note names for constant-Q), level in dB relative to full scale with
an 80 dB range. Silence renders black rather than failing; empty or non-finite audio raises
:class:`~waveloom.errors.AudioError` naming the image it was meant for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from waveloom.audio import mel_scale
from waveloom.errors import AudioError

__all__ = [
    "KINDS",
    "plot_embedding",
    "plot_rainbowgram",
    "plot_score",
    "plot_sheet",
    "plot_spectrogram",
    "plot_waveform",
]

#: Image kinds :func:`plot_spectrogram` and :func:`plot_sheet` draw ('rainbow': sheet only).
KINDS = ("mel", "linear", "cqt", "rainbow")

DB_RANGE = 80.0  # dynamic range shown, dB
DB_SILENCE = -120.0  # at most this level (dB re full scale) is drawn black
DPI = 100
#: Fixed margins of a 10 x 4 in one-axes plot with a colorbar (room for the tick labels, the
#: y label and a title; measured against the constrained layout it replaces).
ONE_AXES_MARGINS = {"left": 0.07, "right": 0.99, "bottom": 0.12, "top": 0.92}
CQT_FMIN = 32.703  # C1
CQT_BINS_PER_OCTAVE = 24
_NOTE_C = [CQT_FMIN * 2.0**octave for octave in range(10)]  # C1 ... C10


@dataclass
class _Image:
    """A time-frequency image ready to draw: ``level_db`` ``[rows, frames]`` and its axes."""

    level_db: np.ndarray
    inst_freq: np.ndarray | None  # [rows, frames] in [-1, 1) for rainbowgrams, else None
    extent: tuple[float, float, float, float]  # left, right, bottom, top in axis units
    yticks: list[float]
    yticklabels: list[str]
    ylabel: str


# ------------------------------------------------------------------------------- helpers


def _mono(audio, path: Path) -> np.ndarray:
    """Tensor/array ``[T]``, ``[1, T]`` or ``[C, T]`` -> float64 ``[T]`` (channels averaged)."""
    if hasattr(audio, "detach"):  # a torch tensor
        audio = audio.detach().cpu().numpy()
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise AudioError(f"{path}: cannot plot audio of shape {x.shape}; pass [T] or [C, T]")
    if x.size == 0:
        raise AudioError(f"{path}: audio is empty (0 samples); nothing to plot")
    if not np.isfinite(x).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples; cannot plot it")
    return x


def _fft_size(sr: int) -> int:
    """About 64 ms frames (1024 at 16 kHz, 2048 at 44.1 kHz): resolves partials of low notes."""
    return 1 << max(6, round(math.log2(sr * 0.064)))


def _to_db(mag: np.ndarray, full_scale: float) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(mag / full_scale, 1e-12))


def _hz_label(f: float) -> str:
    return f"{f / 1000:g}k" if f >= 1000 else f"{f:g}"


def _analyse(x: np.ndarray, sr: int, kind: str, with_phase: bool = False) -> _Image:
    """Transform ``x`` [T] for ``kind`` ('linear' | 'mel' | 'cqt'); levels in dB re full scale.

    Full scale means a sinusoid of amplitude 1 reads 0 dB (linear, cqt) or the mel filter's
    weighted average of such a partial (mel).
    """
    n_fft = _fft_size(sr)
    hop = n_fft // 4
    frames = 1 + len(x) // hop
    t_left, t_right = -0.5 * hop / sr, (frames - 0.5) * hop / sr
    if kind == "linear":  # linear and mel in numpy (mel_scale): a plot needs no torch
        spec = mel_scale.stft_numpy(x, n_fft, hop)
        df = sr / n_fft
        level = _to_db(np.abs(spec), n_fft / 4.0)  # Hann: unit sine peaks at n_fft / 4
        step = 1000 if sr <= 16000 else 2000 if sr <= 48000 else 5000
        ticks = list(range(0, int(sr / 2) + 1, step))
        return _Image(
            level,
            _if(spec) if with_phase else None,
            (t_left, t_right, -df / 2, sr / 2 + df / 2),
            ticks,
            [_hz_label(f) for f in ticks],
            "frequency (Hz)",
        )
    if kind == "mel":
        n_mels = 128 if n_fft >= 2048 else 80
        fb = mel_scale.mel_filterbank_numpy(sr, n_fft, n_mels)
        mel = fb @ np.abs(mel_scale.stft_numpy(x, n_fft, hop))
        level = _to_db(mel, n_fft / 4.0 / (sr / n_fft))  # area-normalised filters: x 1/df
        top = float(mel_scale.hz_to_mel(sr / 2))
        step = top / (n_mels + 1)  # band i is centred on mel (i + 1) * step
        ticks_hz = [f for f in (0, 250, 500, 1000, 2000, 4000, 8000, 16000) if f <= sr / 2]
        return _Image(
            level,
            None,
            (t_left, t_right, 0.5 * step, (n_mels + 0.5) * step),
            [float(mel_scale.hz_to_mel(f)) for f in ticks_hz],
            [_hz_label(f) for f in ticks_hz],
            "frequency (Hz, mel scale)",
        )
    if kind == "cqt":
        bpo = CQT_BINS_PER_OCTAVE
        n_bins = int(math.floor(bpo * math.log2(0.45 * sr / CQT_FMIN)))  # stop below Nyquist
        import torch

        from waveloom.audio import spectral

        spec = spectral.cqt(torch.from_numpy(x), sr, hop, CQT_FMIN, n_bins, bpo).numpy()
        level = _to_db(np.abs(spec), 1.0)  # cqt magnitude is the sinusoid's amplitude
        octaves = [i for i, f in enumerate(_NOTE_C) if f < CQT_FMIN * 2 ** (n_bins / bpo)]
        return _Image(
            level,
            _if(spec) if with_phase else None,
            (t_left, t_right, -0.5, n_bins - 0.5),
            [float(bpo * i) for i in octaves],
            [f"C{i + 1} {_NOTE_C[i]:.0f}" for i in octaves],
            "pitch (note, Hz)",
        )
    raise ValueError(f"unknown image kind {kind!r}; choose one of {KINDS}")


def _if(spec: np.ndarray) -> np.ndarray:
    import torch

    from waveloom.audio import spectral

    return spectral.instantaneous_frequency(torch.from_numpy(np.angle(spec))).numpy()


def _levels(ref_db: float) -> tuple[float, float]:
    """Colour range ``(vmin, vmax)``: the loudest level, but never so low that silence shows."""
    vmax = max(ref_db, DB_SILENCE + DB_RANGE)
    return vmax - DB_RANGE, vmax


def _draw(ax, image: _Image, vmin: float, vmax: float, title: str | None):
    """Draw a level image (magma) or a rainbowgram (hue = IF, brightness = level) on ``ax``."""
    if image.inst_freq is None:
        artist = ax.imshow(
            image.level_db,
            origin="lower",
            aspect="auto",
            extent=image.extent,
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            interpolation="antialiased",
        )
    else:
        brightness = np.clip((image.level_db - vmin) / (vmax - vmin), 0.0, 1.0)
        # 'hsv' is cyclic, as IF is: +1 and -1 are the same phase advance (pi = -pi).
        hue = colormaps["hsv"]((image.inst_freq + 1.0) / 2.0)[..., :3]
        rgb = hue * brightness[..., None]
        artist = ax.imshow(
            rgb, origin="lower", aspect="auto", extent=image.extent, interpolation="antialiased"
        )
    ax.set_yticks(image.yticks, image.yticklabels)
    ax.set_ylim(image.extent[2], image.extent[3])
    ax.set_ylabel(image.ylabel)
    ax.set_xlabel("time (s)")
    if title:
        ax.set_title(title)
    return artist


def _new_figure(width: float, height: float, margins: dict[str, float] | None = None) -> Figure:
    """A figure on the Agg canvas: constrained layout, or fixed ``margins`` (fractions, as
    ``subplots_adjust`` takes them) for a one-axes plot drawn per generated file. Constrained
    layout draws the figure twice (measure, then place): 40 % of a spectrogram's time, which
    `generate` pays once per sample."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout=None if margins else "constrained")
    if margins:
        fig.subplots_adjust(**margins)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # zlib level 1: a spectrogram is noise to a PNG compressor; level 6 (the default) spent
    # a third of a plot's CPU time on it (0.32 -> 0.21 s a 10-s plot) for files 15 % smaller.
    fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 1} if path.suffix == ".png" else None)
    fig.clear()  # drop the artists now rather than at garbage collection
    return path


def _level_colorbar(fig: Figure, artist, ax) -> None:
    fig.colorbar(artist, ax=ax, label="level (dB re full scale)", pad=0.01)


def _if_colorbar(fig: Figure, ax) -> None:
    mappable = ScalarMappable(Normalize(-1.0, 1.0), cmap="hsv")
    fig.colorbar(mappable, ax=ax, label="inst. frequency (π rad / hop)", pad=0.01)


# ---------------------------------------------------------------------------- public API


def plot_waveform(audio, sr: int, path: str | Path, title: str | None = None) -> Path:
    """Waveform ``[T]`` (or ``[C, T]``, averaged) against time in seconds, saved to ``path``.

    Long signals are drawn as a min/max envelope per pixel column, which shows every peak
    (unlike decimation) and keeps the file small.
    """
    path = Path(path)
    x = _mono(audio, path)
    fig = _new_figure(10, 3)
    ax = fig.add_subplot()
    n_cols = 2000
    if len(x) > 2 * n_cols:
        edges = np.linspace(0, len(x), n_cols + 1).astype(int)
        lo = np.minimum.reduceat(x, edges[:-1])
        hi = np.maximum.reduceat(x, edges[:-1])
        ax.fill_between(edges[:-1] / sr, lo, hi, color="tab:blue", linewidth=0.0)
    else:
        ax.plot(np.arange(len(x)) / sr, x, color="tab:blue", linewidth=0.8)
    peak = max(1.0, float(np.abs(x).max()))
    ax.set_ylim(-1.05 * peak, 1.05 * peak)
    ax.set_xlim(0.0, max(len(x) - 1, 1) / sr)
    ax.axhline(0.0, color="0.6", linewidth=0.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    ax.set_title(title or f"{len(x)} samples at {sr} Hz ({len(x) / sr:.3f} s)")
    return _save(fig, path)


def plot_spectrogram(
    audio, sr: int, path: str | Path, title: str | None = None, kind: str = "mel"
) -> Path:
    """Log-magnitude spectrogram image: ``kind`` is 'mel', 'linear' (STFT) or 'cqt'.

    About 64 ms Hann frames at 75 % overlap; constant-Q from C1 at 24 bins per octave.
    """
    path = Path(path)
    if kind not in KINDS[:3]:
        raise ValueError(f"unknown spectrogram kind {kind!r}; choose 'mel', 'linear' or 'cqt'")
    image = _analyse(_mono(audio, path), sr, kind)
    fig = _new_figure(10, 4, margins=ONE_AXES_MARGINS)
    ax = fig.add_subplot()
    artist = _draw(ax, image, *_levels(float(image.level_db.max())), title or f"{kind} spectrogram")
    _level_colorbar(fig, artist, ax)
    return _save(fig, path)


def plot_rainbowgram(
    audio, sr: int, path: str | Path, title: str | None = None, kind: str = "cqt"
) -> Path:
    """Rainbowgram (NSynth, Engel et al. 2017): hue = instantaneous frequency, brightness = level.

    A steady partial is a band of one colour; onsets, vibrato and noise show as colour changes,
    which makes phase errors of generated audio visible where a magnitude image hides them.
    ``kind`` is 'cqt' (the original) or 'linear' (STFT, as GANSynth models it).
    """
    path = Path(path)
    if kind not in ("cqt", "linear"):
        raise ValueError(f"unknown rainbowgram kind {kind!r}; choose 'cqt' or 'linear'")
    image = _analyse(_mono(audio, path), sr, kind, with_phase=True)
    fig = _new_figure(10, 4.5)
    ax = fig.add_subplot()
    _draw(ax, image, *_levels(float(image.level_db.max())), title or f"rainbowgram ({kind})")
    _if_colorbar(fig, ax)
    return _save(fig, path)


def plot_sheet(
    items: Sequence[tuple[object, str]],
    sr: int,
    path: str | Path,
    kind: str = "mel",
    ncols: int = 4,
    title: str | None = None,
) -> Path:
    """A grid of spectrograms or rainbowgrams, one per ``(audio, title)`` item, in one image.

    All panels share one colour scale (referenced to the loudest item), so level differences
    between, say, a real note and its reconstruction stay visible. ``kind`` is one of
    :data:`KINDS`; 'rainbow' draws constant-Q rainbowgrams.
    """
    path = Path(path)
    if not items:
        raise ValueError("plot_sheet needs at least one (audio, title) item")
    if kind not in KINDS:
        raise ValueError(f"unknown sheet kind {kind!r}; choose one of {KINDS}")
    rainbow = kind == "rainbow"
    images = [
        _analyse(_mono(audio, path), sr, "cqt" if rainbow else kind, with_phase=rainbow)
        for audio, _ in items
    ]
    vmin, vmax = _levels(max(float(im.level_db.max()) for im in images))
    ncols = max(1, min(ncols, len(items)))
    nrows = math.ceil(len(items) / ncols)
    fig = _new_figure(4.0 * ncols + 1.0, 3.0 * nrows + (0.4 if title else 0.0))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    artist = None
    for ax, image, (_, item_title) in zip(axes, images, items):
        artist = _draw(ax, image, vmin, vmax, item_title)
    for ax in axes[len(items) :]:
        ax.set_axis_off()
    if rainbow:
        _if_colorbar(fig, list(axes))
    else:
        _level_colorbar(fig, artist, list(axes))
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_score(
    audio, sr: int, lines: Sequence[Sequence[tuple[float, float, int, int]]], path: str | Path,
    names: Sequence[str] | None = None, title: str | None = None,
) -> Path:
    """A piano roll over the constant-Q spectrogram of its render, one colour per line.

    ``lines``: per voice, notes ``(start_s, end_s, midi_pitch, velocity)``; ``names`` label the
    voices in the legend. Each note is an outlined box one semitone high on the CQT's pitch
    axis (MIDI ``p`` sits at bin ``2 (p - 24)``: C1 is MIDI 24, two bins a semitone), so a
    rendered note lies inside its box when the renderer played it in tune.
    """
    path = Path(path)
    image = _analyse(_mono(audio, path), sr, "cqt")
    fig = _new_figure(12, 5)
    ax = fig.add_subplot()
    artist = _draw(ax, image, *_levels(float(image.level_db.max())), title or "score and render")
    per_semitone = CQT_BINS_PER_OCTAVE / 12
    _note_boxes(ax, lines, names, lambda pitch: per_semitone * (pitch - 24), per_semitone)
    _level_colorbar(fig, artist, ax)
    return _save(fig, path)


def plot_notes(notes: np.ndarray, path: str | Path, title: str | None = None) -> Path:
    """A piano roll alone: what a symbolic sample looks like before any renderer plays it.

    ``notes`` float ``[N, 4]`` (onset s, offset s, MIDI pitch, velocity 0-127): a box per note
    at its pitch, filled darker for louder (the same boxes :func:`plot_score` draws over audio).
    """
    notes = np.asarray(notes, np.float64).reshape(-1, 4)
    fig = _new_figure(10, 4)
    ax = fig.add_subplot()
    _note_boxes(ax, [notes] if len(notes) else [], None, float, 0.8, filled=True)
    if len(notes):
        ax.set_ylim(notes[:, 2].min() - 2, notes[:, 2].max() + 2)
        ax.set_xlim(0, max(float(notes[:, 1].max()), 1e-3))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title or Path(path).stem)
    return _save(fig, Path(path))


def _note_boxes(ax, lines, names: Sequence[str] | None, y_of, height: float,
                filled: bool = False) -> None:
    """One box per note ``(start s, end s, pitch, velocity)`` of each line, centred on
    ``y_of(pitch)``, ``height`` tall, one colour per line (legend when several or named);
    ``filled``: shaded by velocity instead of outlined."""
    from matplotlib.patches import Rectangle

    colours = colormaps["tab10"]
    for i, line in enumerate(lines):
        colour = colours(i % 10)
        label = f"{i + 1}: {names[i]}" if names and i < len(names) else f"voice {i + 1}"
        for k, (start, end, pitch, velocity) in enumerate(line):
            style = (dict(facecolor=(*colour[:3], 0.25 + 0.75 * min(max(velocity, 0), 127) / 127),
                          edgecolor="none") if filled
                     else dict(fill=False, edgecolor=colour, linewidth=1.0))
            ax.add_patch(Rectangle((start, y_of(pitch) - height / 2), end - start, height,
                                   label=label if k == 0 else None, **style))
    if len(lines) > 1 or names:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.6)


def plot_embedding(
    z, hop: int, sr: int, path: str | Path, title: str | None = None
) -> Path:
    """An autoencoder's code ``[D, frames]`` as an image: one row per dimension, time in
    seconds on x (frame ``k`` covers ``[k*hop, (k+1)*hop)`` samples), a diverging colour scale
    symmetric about zero, so sign and size of each dimension read at a glance."""
    path = Path(path)
    z = np.asarray(z.detach().cpu() if hasattr(z, "detach") else z, dtype=np.float64)
    if z.ndim != 2 or z.size == 0 or not np.isfinite(z).all():
        raise AudioError(f"{path}: an embedding image needs finite values [D, frames], "
                         f"got shape {z.shape}")
    dims, frames = z.shape
    limit = max(float(np.abs(z).max()), 1e-6)
    fig = _new_figure(10, 1.5 + 0.18 * dims)
    ax = fig.add_subplot()
    artist = ax.imshow(z, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit,
                       interpolation="nearest", extent=(0.0, frames * hop / sr, -0.5, dims - 0.5))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("code dimension")
    ax.set_title(title or f"{dims}-dim code, {frames} frames of {hop} samples")
    fig.colorbar(artist, ax=ax, label="value", pad=0.01)
    return _save(fig, path)

