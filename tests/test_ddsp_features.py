"""DDSP features: A-weighted loudness and f0 tracking (issue #22)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from waveloom.audio.f0 import METHODS, track_f0
from waveloom.audio.loudness import a_weighted_loudness, a_weighting_db
from waveloom.errors import ConfigError

SR, HOP = 16000, 64


def _sine(freq: float, db: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (10 ** (db / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _steady(loud: torch.Tensor) -> float:
    return float(loud[0, 40:-40].mean())


def test_a_weighting_curve_reference_values():
    # IEC 61672-1 table values (class 1 nominal): 100 Hz -19.1, 1 kHz 0.0, 10 kHz -2.5 dB
    got = a_weighting_db(np.array([100.0, 1000.0, 10000.0])).numpy()
    np.testing.assert_allclose(got, [-19.1, 0.0, -2.5], atol=0.1)


def test_loudness_reference_and_level_steps():
    x = torch.from_numpy(np.stack([_sine(1000, 0), _sine(1000, -20), _sine(1000, -40)]))
    loud = a_weighted_loudness(x, SR, HOP)
    assert loud.shape == (3, SR // HOP)
    levels = [float(loud[i, 40:-40].mean()) for i in range(3)]
    assert abs(levels[0] - (-3.01)) < 0.1  # full-scale sine = mean square 0.5
    assert abs((levels[1] - levels[2]) - 20.0) < 0.05
    assert float(loud[1, 40:-40].std()) < 0.05  # steady tone, steady reading


def test_low_tone_reads_about_19_db_under_1khz():
    low = a_weighted_loudness(torch.from_numpy(_sine(100, -20))[None], SR, HOP)
    mid = a_weighted_loudness(torch.from_numpy(_sine(1000, -20))[None], SR, HOP)
    assert abs((_steady(mid) - _steady(low)) - 19.1) < 0.5


def test_loudness_floor_and_frame_centres():
    x = torch.zeros(1, 10 * HOP + 5)
    x[0, 5 * HOP] = 1.0  # a click at frame 5's centre
    loud = a_weighted_loudness(x, SR, HOP, n_fft=256)
    assert loud.shape == (1, 10)
    assert float(loud.min()) == -100.0
    assert int(loud[0].argmax()) == 5
    assert torch.equal(a_weighted_loudness(torch.zeros(2, 640), SR, HOP),
                       torch.full((2, 10), -100.0))


def test_loudness_bad_input():
    with pytest.raises(ConfigError, match=r"\[B, T\]"):
        a_weighted_loudness(torch.zeros(640), SR, HOP)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("freq", [220.0, 440.0])
def test_f0_within_10_cents_on_steady_sines(method, freq):
    x = _sine(freq, -12, seconds=1.0)
    f0, conf = track_f0(x, SR, 250, method)
    assert f0.shape == conf.shape == (250,)
    inner = slice(15, -15)  # away from the zero-padded edges
    cents = 1200 * np.log2(f0[inner] / freq)
    assert np.abs(cents).max() < 10, (method, np.abs(cents).max())
    assert conf[inner].min() > 0.5 and conf.max() <= 1.0 and conf.min() >= 0.0


def test_f0_frame_count_rates_and_silence():
    x = _sine(330, -12, seconds=0.5, sr=22050)[:11001]
    f0, conf = track_f0(x, 22050, 100, "yin")
    assert len(f0) == int(np.ceil(11001 * 100 / 22050))
    f0, conf = track_f0(np.zeros(16000, np.float32), SR, 250, "crepe-tiny")
    assert conf.max() == 0.0  # silence is never voiced


def test_f0_bad_input():
    with pytest.raises(ConfigError, match="method"):
        track_f0(np.zeros(100), SR, 250, "swipe")
    with pytest.raises(ConfigError, match="mono"):
        track_f0(np.zeros((2, 100)), SR, 250, "yin")
    assert track_f0(np.zeros(0), SR, 250, "yin")[0].shape == (0,)
