"""waveloom.audio.plots: valid PNGs, robust to odd input, axes that put partials where they are."""

from __future__ import annotations

import struct
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from waveloom.audio import plots as P
from waveloom.audio.spectral import hz_to_mel
from waveloom.errors import AudioError

SR = 16000


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; asserts the PNG signature."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def chord(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    notes = (261.63, 329.63, 392.0)
    x = sum(
        np.exp(-3 * t) * sum(np.sin(2 * np.pi * f * n * t) / n for n in range(1, 6)) for f in notes
    )
    return (0.9 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(autouse=True)
def no_leaked_figures():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a plot function left a pyplot figure open"


def test_each_plot_writes_a_png(tmp_path):
    x = chord()
    outs = [
        P.plot_waveform(x, SR, tmp_path / "wave.png", title="chord"),
        P.plot_spectrogram(x, SR, tmp_path / "mel.png", kind="mel"),
        P.plot_spectrogram(x, SR, tmp_path / "lin.png", kind="linear"),
        P.plot_spectrogram(x, SR, tmp_path / "cqt.png", kind="cqt"),
        P.plot_rainbowgram(x, SR, tmp_path / "sub" / "rainbow.png"),  # creates the folder
        P.plot_rainbowgram(x, SR, tmp_path / "rainbow_lin.png", kind="linear"),
    ]
    for out in outs:
        assert isinstance(out, Path) and out.exists()
        w, h = png_size(out)
        assert 600 <= w <= 2000 and 200 <= h <= 1000
        assert out.stat().st_size > 5000  # an image with content, not a blank canvas


@pytest.mark.parametrize("kind", ["mel", "cqt", "rainbow"])
def test_sheet_is_a_grid(tmp_path, kind):
    x = chord(0.5)
    items = [
        (x, "a"),
        (0.1 * x, "b"),
        (np.zeros(SR // 2, np.float32), "silence"),
        (x, "d"),
        (x, "e"),
    ]
    out = P.plot_sheet(items, SR, tmp_path / f"{kind}.png", kind=kind, ncols=3, title="five")
    w, h = png_size(out)
    single_w, single_h = png_size(P.plot_sheet(items[:1], SR, tmp_path / "one.png", kind=kind))
    assert w > 2 * single_w and h > 1.8 * single_h  # 3 columns, 2 rows


@pytest.mark.parametrize("audio", [np.zeros(SR, np.float32), np.array([0.3], np.float32)])
def test_silence_and_a_single_sample_plot(tmp_path, audio):
    for kind in ("mel", "linear", "cqt"):
        png_size(P.plot_spectrogram(audio, SR, tmp_path / f"{kind}.png", kind=kind))
    png_size(P.plot_rainbowgram(audio, SR, tmp_path / "rb.png"))
    png_size(P.plot_waveform(audio, SR, tmp_path / "w.png"))
    png_size(P.plot_sheet([(audio, "x")], SR, tmp_path / "s.png"))


def test_tensors_and_stereo_are_accepted(tmp_path):
    x = torch.from_numpy(chord(0.25))
    png_size(P.plot_waveform(torch.stack([x, -x]), SR, tmp_path / "stereo.png"))
    png_size(P.plot_spectrogram(x[None], SR, tmp_path / "batch1.png"))


def test_bad_audio_raises_audio_error_naming_the_image(tmp_path):
    target = tmp_path / "bad.png"
    for audio in (np.zeros(0), np.full(100, np.nan), np.zeros((2, 3, 4))):
        for call in (
            lambda a: P.plot_waveform(a, SR, target),
            lambda a: P.plot_spectrogram(a, SR, target),
            lambda a: P.plot_rainbowgram(a, SR, target),
        ):
            with pytest.raises(AudioError, match="bad.png"):
                call(audio)
    assert not target.exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        P.plot_spectrogram(chord(0.1), SR, tmp_path / "x.png", kind="bark")
    with pytest.raises(ValueError, match="kind"):
        P.plot_sheet([(chord(0.1), "x")], SR, tmp_path / "x.png", kind="bark")
    with pytest.raises(ValueError, match="at least one"):
        P.plot_sheet([], SR, tmp_path / "x.png")


@pytest.mark.parametrize(
    "kind,y_of_hz,tolerance",
    [
        ("linear", lambda f: f, SR / 1024),
        ("mel", lambda f: float(hz_to_mel(f)), float(hz_to_mel(SR / 2)) / 81),
        ("cqt", lambda f: P.CQT_BINS_PER_OCTAVE * np.log2(f / P.CQT_FMIN), 1.0),
    ],
)
def test_partials_land_on_their_labelled_frequency(kind, y_of_hz, tolerance):
    """The brightest row of a 440 Hz tone sits where the y axis (ticks) says 440 Hz is, and its
    onset where the time axis says 0.5 s is."""
    t = np.arange(SR) / SR
    x = np.where(t >= 0.5, 0.5 * np.sin(2 * np.pi * 440.0 * t), 0.0)
    image = P._analyse(x, SR, kind)
    left, right, bottom, top = image.extent
    rows, frames = image.level_db.shape
    row = int(image.level_db[:, frames // 2 + 5 :].mean(axis=1).argmax())
    y_peak = bottom + (row + 0.5) * (top - bottom) / rows
    assert abs(y_peak - y_of_hz(440.0)) <= tolerance
    onset = int(np.argmax(image.level_db[row] > image.level_db[row].max() - 6.0))
    x_onset = left + (onset + 0.5) * (right - left) / frames
    assert abs(x_onset - 0.5) < 0.05  # within a few hops (and half a 78 ms CQT kernel)
