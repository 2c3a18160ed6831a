"""A score through a roll-conditioned WaveNet (waveloom.sampling.roll_render)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError, DataError
from waveloom.models.wavenet import WaveNet, WaveNetConfig
from waveloom.sampling.roll_render import TAIL_SECONDS, render_roll, score_roll

TINY = dict(residual_channels=8, dilation_channels=8, skip_channels=16, end_channels=16,
            layers_per_stack=3, stacks=1, pitch_conditioning=False,
            instrument_conditioning=False, sample_rate=1000)
NOTES = np.array([[0.0, 0.2, 60, 100], [0.1, 0.3, 64, 50]], float)  # s, s, pitch, velocity


def _roll_model(seed=0):
    torch.manual_seed(seed)
    return WaveNet(WaveNetConfig(**TINY, local="roll", local_channels=128, local_hop=10,
                                 upsample_factors=[10])).eval()


def test_the_roll_is_the_training_roll_of_the_score():
    roll = score_roll(NOTES, 1000, 10)
    assert roll.shape == (128, int(np.ceil((0.3 + TAIL_SECONDS) * 100)))
    np.testing.assert_allclose(roll[60, :20], 100 / 127)
    np.testing.assert_allclose(roll[64, 10:30], 50 / 127)
    assert roll[64, :10].max() == 0 and roll[:, 30:].max() == 0


def test_render_length_and_seed():
    model = _roll_model()
    options = SamplingOptions(seed=3, progress=False, engine="torch")
    audio = render_roll(model, NOTES, options)
    assert audio.shape == (80 * 10,) and audio.abs().max() <= 1.0
    assert torch.equal(audio, render_roll(model, NOTES, options))


def test_bad_input_is_one_line():
    with pytest.raises(DataError, match="no notes"):
        score_roll(np.zeros((0, 4)), 1000, 10)
    plain = WaveNet(WaveNetConfig(**TINY)).eval()
    with pytest.raises(ConfigError, match="not a roll-conditioned WaveNet"):
        render_roll(plain, NOTES)


def test_roll_excitation_sounds_the_rolls_pitches():
    """One held A4 at value 0.5: the source is 0.5 sin / cos at 440 Hz; silence elsewhere."""
    from waveloom.nn.roll_excitation import roll_excitation

    roll = torch.zeros(1, 128, 10)
    roll[0, 69, 2:8] = 0.5
    source = roll_excitation(roll, hop=160, length=1600, sample_rate=16000)
    assert source.shape == (1, 2, 1600)
    assert source[..., :320].abs().max() == 0 and source[..., 1280:].abs().max() == 0
    t = torch.arange(320, 1280, dtype=torch.float64)
    expected = 0.5 * torch.sin(2 * torch.pi * 440 * t / 16000)
    torch.testing.assert_close(source[0, 0, 320:1280].double(), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(source[0, 0] ** 2 + source[0, 1] ** 2,
                               (roll[0, 69, torch.arange(1600) // 160] ** 2), atol=1e-4, rtol=0)


def test_a_roll_excitation_wavenet_trains_and_renders():
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(**TINY, local="roll", local_channels=128, local_hop=10,
                                  upsample_factors=[10], roll_excitation=True))
    batch = model.example_batch(2, model.context + 40)
    loss = model.loss(batch)["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    audio = render_roll(model, NOTES, SamplingOptions(seed=1, progress=False))
    assert audio.shape == (800,) and torch.isfinite(audio).all()
    with pytest.raises(ConfigError, match="roll_excitation needs model.local=roll"):
        WaveNetConfig(**TINY, roll_excitation=True).validate()
