"""DiffWave's source-filter mode (``model.source_filter``; waveloom/models/diffwave_source.py)
and the envelope fit it learns from (waveloom/nn/envelope_fit.py): the fit inverts the synth,
the mode denoises envelope frames, plays them at the labelled pitch, trains from a notes cache
and samples through the CLI, seeded."""

from __future__ import annotations

import math

import pytest
import torch

from waveloom.audio.tuning import midi_hz
from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.models.specgan import log_range
from waveloom.nn.diffwave import DiffWaveNet
from waveloom.nn.envelope_fit import fit_envelope, fit_note
from waveloom.nn.envelope_synth import SourceFilterSynth
from waveloom.sampling.sample import sample

SR = 16000
SOURCE = ["model.source_filter=true", "model.note_clock=true", "model.n_fft=256",
          "model.hop=64", "model.envelope_bands=16", "model.harmonics=40",
          "model.diffusion_steps=100", "model.beta_end=0.05", "model.fast_betas=[]",
          "data.window=4096"]


def _synth(bands: int = 64) -> SourceFilterSynth:
    centre, scale = log_range(1024, 1e-6)
    return SourceFilterSynth(SR, 1024, 256, bands, 80, centre, scale)


def _smooth_envelope(frames: int = 64) -> torch.Tensor:
    """[1, 2, 64, frames]: partials falling 0.5 -> -0.1 across the bands and fading over
    time; a noise floor 0.35 below them."""
    across = torch.linspace(0.5, -0.1, 64)[:, None]
    fade = torch.linspace(0.0, -0.15, frames)[None, :]
    peak = across + fade
    return torch.stack([peak, peak - 0.35])[None]


def test_the_fit_inverts_the_synth_where_partials_and_noise_are_heard():
    synth = _synth()
    truth = _smooth_envelope()
    f0 = midi_hz(torch.tensor([57.0]))  # 220 Hz: partials every 14 bins
    audio = synth(truth, f0, torch.Generator().manual_seed(0))
    fit = fit_envelope(audio, f0, synth, 64)
    assert fit.shape == truth.shape and float(fit.abs().max()) <= 1.0
    bins_hz = torch.arange(513) * SR / 1024
    heard = (synth.to_bins[(bins_hz > 300) & (bins_hz < 7000)] > 0).any(0)  # bands with data
    inner = slice(4, 60)  # away from the window's edge frames
    peak_error = fit[0, 0, heard, inner] - truth[0, 0, heard, inner]
    noise_error = fit[0, 1, heard, inner] - truth[0, 1, heard, inner]
    # 0.01 of the normalised range is 0.1 nat (0.9 dB) of log magnitude. The partials come
    # back frame by frame; the noise floor, read from a few Rayleigh-distributed bins per
    # band and frame, scatters (~0.3 nat a frame) but without bias, band by band.
    assert float(peak_error.abs().median()) < 0.01 and abs(float(peak_error.mean())) < 0.01
    assert abs(float(noise_error.mean())) < 0.01
    assert float(noise_error.mean(1).abs().max()) < 0.05


def test_the_fit_refuses_what_it_cannot_fit():
    synth = _synth()
    with pytest.raises(ValueError, match="one positive f0 per note"):
        fit_envelope(torch.zeros(2, 4096), torch.tensor([220.0, 0.0]), synth, 8)
    with pytest.raises(ValueError, match="need 16384 samples"):
        fit_envelope(torch.zeros(1, 4096), torch.tensor([220.0]), synth, 64)


def test_the_network_runs_over_frames_of_many_channels():
    net = DiffWaveNet(8, 2, 2, in_channels=6)
    torch.nn.init.normal_(net.head.weight)
    out = net(torch.randn(3, 6, 20), torch.tensor([1.0, 2.0, 3.0]))
    assert out.shape == (3, 6, 20)
    assert DiffWaveNet(8, 2, 2)(torch.randn(2, 50), torch.tensor([1.0, 2.0])).shape == (2, 50)


def _source_model():
    run = load_config("configs/diffwave/tiny.yaml", SOURCE)
    torch.manual_seed(0)
    return build_model(run).eval()


def test_the_mode_denoises_envelope_frames_and_plays_the_labelled_pitch():
    model = _source_model()
    batch = model.example_batch(2, 4096)
    batch["pitch"] = torch.tensor([60, 67])
    target = model.clean_target(batch)
    assert target.shape == (2, 32, 64) and float(target.abs().max()) <= 1.0
    assert model.noise_shape(3, 4000) == (3, 32, 63)  # ceil(4000 / 64) frames
    assert math.isfinite(model.loss(batch)["loss"].item())
    torch.nn.init.normal_(model.net.head.weight, std=0.01)
    opts = SamplingOptions(denoising_steps=4, sampler="ddim", seed=3, progress=False)
    a4 = {"pitch": torch.tensor([69]), "instrument": torch.tensor([0])}
    audio = sample(model, 1, 16000, a4, opts)
    assert audio.shape == (1, 16000) and torch.equal(audio, sample(model, 1, 16000, a4, opts))
    spectrum = torch.fft.rfft(audio[0, 4000:12000] * torch.hann_window(8000)).abs()
    harmonic = spectrum.argmax().item() * 2 / 440.0  # 0.5-s window: bins of 2 Hz
    assert abs(harmonic - round(harmonic)) < 0.02 and round(harmonic) >= 1
    with pytest.raises(ConfigError, match="give --pitch"):
        sample(model, 1, 4000, {"instrument": torch.tensor([0])}, opts)


def test_the_mode_refuses_configs_it_cannot_play():
    with pytest.raises(ConfigError, match="needs model.conditioning=class"):
        build_model(load_config("configs/diffwave/tiny.yaml",
                                SOURCE + ["model.conditioning=none"]))
    with pytest.raises(ConfigError, match="set model.pitch_excitation=false"):
        build_model(load_config("configs/diffwave/tiny.yaml",
                                SOURCE + ["model.pitch_excitation=true"]))
    with pytest.raises(ConfigError, match="model.hop=256 must be at most"):
        build_model(load_config("configs/diffwave/tiny.yaml", SOURCE + ["model.hop=256"]))


def test_the_mode_trains_from_notes_and_generates_through_the_cli(notes_cache, tmp_path):
    import soundfile as sf

    from waveloom.cli import main
    from waveloom.train.trainer import train

    run = load_config("configs/diffwave/tiny.yaml", SOURCE + ["train.max_steps=2",
                                                              "data.onset_fraction=1.0"])
    result = train(run, notes_cache, tmp_path / "run", progress=False)
    assert result.step == 2 and math.isfinite(result.last_loss)
    args = ["generate", str(tmp_path / "run" / "model.safetensors"), "--n", "1", "--seconds",
            "0.5", "--pitch", "62", "--steps", "3", "--sampler", "dpm-solver", "-q"]
    assert main([*args, "--out", str(tmp_path / "g1")]) in (0, None)
    assert main([*args, "--out", str(tmp_path / "g2")]) in (0, None)
    one, sr = sf.read(tmp_path / "g1" / "sample-0.wav")
    two, _ = sf.read(tmp_path / "g2" / "sample-0.wav")
    assert sr == SR and len(one) == 8000 and (one == two).all()


def test_the_fit_follows_a_vibrato_and_the_synth_plays_it():
    synth = _synth(bands=32)
    frames = 64
    seconds = torch.arange(frames) * 256 / SR
    cents = (30 * torch.sin(2 * math.pi * 5.5 * seconds))[None].repeat(2, 1)  # +-30 c, 5.5 Hz
    across = torch.linspace(0.5, -0.1, 32)[:, None].expand(32, frames)
    truth = torch.stack([across, torch.full((32, frames), -0.3)])[None].repeat(2, 1, 1, 1)
    f0 = torch.tensor([110.0, 523.25])  # A2 and C5
    audio = synth(truth, f0, torch.Generator().manual_seed(0), cents)
    bent, got = fit_note(audio, f0, synth, frames)
    error = (got - cents)[:, 4:-4].abs()
    assert float(error.mean()) < 3.0 and float(error.max()) < 6.0  # cents
    steady, none = fit_note(audio, f0, synth, frames, bent=False)
    assert torch.equal(none, torch.zeros_like(none))
    # read where the vibrato puts them, the partials' levels come back twice as close
    inner = (slice(None), 0, slice(3, 28), slice(4, -4))
    assert (bent - truth)[inner].abs().mean() < 0.6 * (steady - truth)[inner].abs().mean()


@pytest.mark.parametrize("prediction", ["x0", "edm", "v", "eps"])
def test_every_prediction_gives_the_samplers_the_exact_noise_from_an_exact_network(prediction):
    """A network that predicts its target exactly (the clean data, EDM's scaled residual, v
    or the noise) hands the samplers the true noise: denoise() undoes each parameterisation."""
    model = build_model(load_config("configs/diffwave/tiny.yaml",
                                    SOURCE + [f"model.prediction={prediction}",
                                              "model.sigma_data=0.3"]))
    x0 = torch.rand(2, 32, 10) - 0.5
    noise = torch.randn(2, 32, 10)
    t = torch.tensor([3, 80])
    xt = model.schedule.noisy(x0, t, noise)
    a = model.schedule.alpha_bar[t].float()[:, None, None]
    inp, skip, scale = model.precondition(xt, t.float())
    exact = {"x0": (xt, x0), "edm": (inp, (x0 - skip) / scale),
             "v": (xt, a.sqrt() * noise - (1 - a).sqrt() * x0), "eps": (xt, noise)}[prediction]

    def network(x, tau, cond):
        assert torch.allclose(x, exact[0])  # what the network is shown
        return exact[1]

    model.predict = network
    torch.testing.assert_close(model.denoise(xt, t.float(), None), noise, atol=2e-3, rtol=0)
