"""GANSynth's source-filter output (``model.source_filter``, waveloom/nn/envelope_synth.py):
the generator's envelope means what the critic's analysis means, the partials sit at the
labelled pitch whatever the envelope, and the critic's IF of a generated note carries no
gradient."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.nn.envelope_synth import band_interpolation

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SR = 16000


def _model(overrides: list[str] | None = None):
    base = ["model.source_filter=true", "model.n_fft=512", "model.hop=128", "model.frames=64",
            "model.envelope_bands=16", "model.min_pitch=45", "model.max_pitch=79",
            "model.mel=true", "data.window=8192"]
    run = load_config(CONFIGS / "gansynth" / "tiny.yaml", base + (overrides or []))
    torch.manual_seed(0)
    return build_model(run)


def _flat(model, partials: float, noise: float, n: int = 1) -> torch.Tensor:
    """An envelope image at one level everywhere: [n, 2, bands, frames] (tanh scale)."""
    c = model.config
    image = torch.empty(n, 2, c.envelope_bands, c.frames)
    image[:, 0], image[:, 1] = partials, noise
    return image


def _harmonic_share(audio: torch.Tensor, f0: float, within_hz: float = 20.0) -> float:
    """Share of the power within ``within_hz`` of a harmonic k f0 (k >= 1), away from edges."""
    clip = audio[2048:-2048].double()
    power = torch.fft.rfft(clip * torch.hann_window(len(clip), dtype=torch.float64)).abs() ** 2
    ratio = torch.fft.rfftfreq(len(clip), 1 / SR) / f0
    near = ((ratio - ratio.round()).abs() * f0 < within_hz) & (ratio.round() >= 1)
    return float(power[near].sum() / power.sum())


def test_band_interpolation_rows_are_convex_and_mel_spaced():
    table = band_interpolation(SR, 512, 16)
    assert table.shape == (257, 16)
    torch.testing.assert_close(table.sum(1), torch.ones(257))
    assert float(table.min()) >= 0.0
    assert table[0, 0] == 1.0 and table[-1, -1] == 1.0
    # mel spacing: the lowest band's centre is closer to 0 Hz than an even split would put it
    first_full = int(torch.nonzero(table[:, 1] == table[:, 1].max())[0])
    assert first_full * SR / 512 < (SR / 2) / 15


def test_the_partials_sit_at_the_labelled_pitch_whatever_the_envelope():
    """Partials loud, noise 60 dB under them: >= 99 % of the power on the harmonics of the
    asked pitch, for two pitches in one batch (each note its own), and under 30 % on those of
    a semitone above."""
    model = _model()
    index = model.pitch_index(torch.tensor([57, 64]), 2)
    audio = model.source(_flat(model, 0.6, 0.0, n=2), model.pitch_hz(index))
    for row, midi in enumerate((57, 64)):
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        assert _harmonic_share(audio[row], f0) > 0.99
        assert _harmonic_share(audio[row], f0 * 2 ** (1 / 12)) < 0.3


def test_the_envelope_is_on_the_critics_log_magnitude_scale():
    """Channel 0 = v makes partials whose analysed peaks are exp(v * scale + centre); channel 1
    = v (partials silent) makes noise whose analysed mean magnitude is exp(v * scale + centre):
    the generator paints in the critic's own units."""
    model = _model()
    c = model.config
    index = model.pitch_index(torch.tensor([57]), 1)
    target = 0.5 * model.scale + model.centre
    tone = model.source(_flat(model, 0.5, -1.0), model.pitch_hz(index))
    image = model.analyse(tone)  # mel-warped; read the linear spectrum instead
    from waveloom.audio.spectral import stft

    spec = stft(tone, c.n_fft, c.hop)[0, :, 8:-8].abs()
    fundamental = round(220.0 / (SR / c.n_fft))
    assert abs(math.log(float(spec[fundamental].mean())) - target) < 0.1
    torch.manual_seed(1)
    noise = model.source(_flat(model, -1.0, 0.5), model.pitch_hz(index))
    level = stft(noise, c.n_fft, c.hop)[0, 4:-4, 8:-8].abs().mean()
    assert abs(math.log(float(level)) - target) < 0.1
    assert image.shape == (1, 2, c.bins, c.frames)


def test_a_generated_note_trains_through_the_magnitudes_only():
    """fake_sample is the audio's analysis: the log magnitude has a gradient to the generator,
    the IF none; a loss step gives finite gradients everywhere."""
    model = _model(["model.instrument_conditioning=true", "model.num_instruments=3"])
    batch = model.example_batch(2, model.config.length)
    batch["instrument"] = batch["instrument"] % 3
    _, cond = model.real_sample(batch, None)
    fake = model.fake_sample(cond, torch.Generator().manual_seed(0))
    assert fake.shape == (2, 2, model.config.bins, model.config.frames)
    fake[:, 1].sum().backward(retain_graph=True)  # reaches the generator only as zeros
    assert all(p.grad is None or not p.grad.any() for p in model.generator.parameters())
    fake[:, 0].sum().backward()
    grads = [p.grad for p in model.generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.any() for g in grads)
    loss = model.loss(batch)["loss"]
    assert torch.isfinite(loss)


def test_sampling_is_seeded_and_on_the_note_length():
    model = _model().eval()
    z = model.sample_latents(2, seed=3)
    torch.manual_seed(7)
    a = model.synthesize(z, {"pitch": 60})
    torch.manual_seed(7)
    b = model.synthesize(z, {"pitch": 60})
    assert a.shape == (2, model.config.length) and torch.equal(a, b)


@pytest.mark.parametrize("overrides, message", [
    (["model.pitch_conditioning=false"], "needs model.pitch_conditioning"),
    (["model.harmonic_prior=true"], "set one of them"),
    (["model.envelope_bands=12"], "divisible by"),
    (["model.envelope_weight=-1"], "envelope_weight=-1.0 must be >= 0"),
])
def test_source_filter_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _model(overrides)


def test_the_envelope_loss_is_pooled_l1_against_the_note_with_the_same_labels():
    """``envelope_weight`` x mean |pooled fake - pooled real| over the log-magnitude channel:
    0 for a fake equal to its real note, blind to detail finer than the pool (a checkerboard
    of +-0.5 inside each 4 x 4 cell costs nothing), and absent at weight 0."""
    model = _model(["model.envelope_weight=10", "model.envelope_pool=4"])
    c = model.config
    real = torch.rand(2, 2, c.bins, c.frames) * 2 - 1
    cond = {"n": 2, "index": None, "instrument": None}
    assert float(model.reconstruction_loss(real, real.clone(), cond)) == 0.0
    checker = (torch.arange(c.bins)[:, None] + torch.arange(c.frames)[None, :]) % 2 - 0.5
    assert float(model.reconstruction_loss(real, real + checker, cond)) < 1e-5
    shifted = real.clone()
    shifted[:, 0] += 0.1
    assert abs(float(model.reconstruction_loss(real, shifted, cond)) - 1.0) < 1e-4
    shifted[:, 1] += 5.0  # the IF channel is not compared
    assert abs(float(model.reconstruction_loss(real, shifted, cond)) - 1.0) < 1e-4
    assert _model().reconstruction_loss(real, shifted, cond) is None
