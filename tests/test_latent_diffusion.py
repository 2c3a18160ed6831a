"""Latent diffusion: v-prediction, guidance, timing, the autoencoder inside (a codec or a
spectral AE), training and sampling."""

from __future__ import annotations

import math

import pytest
import torch

from waveloom.config import SamplingOptions
from waveloom.models.load import load_checkpoint, load_config
from waveloom.models.registry import build_model
from waveloom.sampling.sample import sample


def _tiny(*overrides):
    torch.manual_seed(0)
    return build_model(load_config("configs/latent_diffusion/tiny.yaml", list(overrides)))


def test_v_prediction_gives_the_noise_the_samplers_read():
    """If the network returned the exact v, denoise() must return the exact noise."""
    model = _tiny().eval()
    x0, noise = torch.randn(2, 16, 8), torch.randn(2, 16, 8)
    t = torch.tensor([3, 40])
    xt = model.schedule.noisy(x0, t, noise)
    a = model.schedule.alpha_bar[t].float().view(-1, 1, 1)
    v = a.sqrt() * noise - (1 - a).sqrt() * x0
    model.predict = lambda x, tau, cond: v
    torch.testing.assert_close(model.denoise(xt, t.float(), None), noise, atol=1e-5, rtol=1e-5)


def test_guidance_mixes_the_two_predictions_and_timing_conditions():
    model = _tiny().eval()
    x, tau = torch.randn(1, 16, 8), torch.tensor([10.0])
    labels = {"pitch": torch.tensor([60]), "instrument": torch.tensor([1])}
    cond = model.condition_input(labels, 1, 64)
    with torch.no_grad():
        for block in model.net.blocks:  # leave adaLN-zero's identity start
            torch.nn.init.normal_(block.ada.weight, 0, 0.1)
        torch.nn.init.normal_(model.net.out.weight, 0, 0.1)
        c = model.predict(x, tau, cond)
        u = model.predict(x, tau, {**cond, "c": cond["null"]})
        guided = model.predict(x, tau, model.condition_input({**labels, "cfg": 3.0}, 1, 64))
        torch.testing.assert_close(guided, u + 3.0 * (c - u), atol=1e-5, rtol=1e-5)
        longer = model.condition_input({**labels, "total": 6400}, 1, 64)["c"]
        assert not torch.allclose(longer, cond["c"])


def test_samples_decode_through_the_autoencoder_and_are_seeded():
    model = _tiny().eval()
    opts = SamplingOptions(seed=1, denoising_steps=4, sampler="ddim", progress=False)
    cond = {"pitch": torch.tensor([60, 62]), "instrument": torch.tensor([0, 1])}
    a = sample(model, 2, 100, cond, opts)
    assert a.shape == (2, 100) and torch.isfinite(a).all()
    assert torch.equal(a, sample(model, 2, 100, cond, opts))
    assert model.noise_shape(2, 100) == (2, 16, 13)  # ceil(100 / hop 8) frames


def _train_over(preset: str, overrides: list[str], data, tmp_path):
    """Train ``preset`` (an autoencoder) one step, then the tiny latent model two steps over
    its checkpoint; returns (loaded latent model, its run, the autoencoder, its checkpoint)."""
    from waveloom.train.trainer import train

    train(load_config(preset, ["train.max_steps=1", *overrides]), data, tmp_path / "ae",
          progress=False)
    ae_ckpt = tmp_path / "ae" / "model.safetensors"
    run = load_config("configs/latent_diffusion/tiny.yaml",
                      ["train.max_steps=2", "model.autoencoder_config=",
                       f"model.autoencoder={ae_ckpt}"])
    result = train(run, data, tmp_path / "ld", progress=False)
    assert result.step == 2 and math.isfinite(result.last_loss)
    model, saved = load_checkpoint(tmp_path / "ld" / "model.safetensors")
    return model, saved, load_checkpoint(ae_ckpt)[0], ae_ckpt


def test_trains_with_a_codec_checkpoint_and_ships_it_inside(notes_cache, tmp_path):
    model, saved, codec, _ = _train_over("configs/codec/tiny.yaml",
                                         ["model.quantizer_dropout=false"], notes_cache, tmp_path)
    assert saved.model.autoencoder_config  # recorded: the checkpoint needs no codec file
    for name, value in codec.generator.state_dict().items():
        assert torch.equal(model.autoencoder.module.state_dict()[name], value), name
    assert float(model.latent_scale) > 0


def test_learns_a_spectral_autoencoders_latents_and_decodes_by_griffin_lim(notes_cache,
                                                                           tmp_path):
    """The spectral AE route: its code is the latent, its decoder + Griffin-Lim the audio."""
    model, _, ae, _ = _train_over("configs/spectral_ae/tiny.yaml",
                                  ["model.pitch_conditioning=false"], notes_cache, tmp_path)
    for name, value in ae.state_dict().items():
        assert torch.equal(model.autoencoder.module.state_dict()[name], value), name
    audio = torch.randn(1, 1024) * 0.1
    torch.testing.assert_close(model.autoencoder.encode(audio), ae.encode(audio))
    assert model.noise_shape(1, 1000) == (1, ae.config.embedding_dim, -(-1000 // ae.config.hop))
    opts = SamplingOptions(seed=3, denoising_steps=3, sampler="ddim", progress=False)
    a = sample(model, 2, 1000, {"instrument": torch.tensor([0, 1])}, opts)
    assert a.shape == (2, 1000) and torch.isfinite(a).all() and a.abs().max() <= 1.0
    assert torch.equal(a, sample(model, 2, 1000, {"instrument": torch.tensor([0, 1])}, opts))


def test_a_missing_or_wrong_autoencoder_is_one_line(tmp_path):
    from waveloom.errors import ConfigError

    with pytest.raises(ConfigError, match="model.autoencoder"):
        _tiny("model.autoencoder_config=")
    with pytest.raises(ConfigError, match="no such checkpoint"):
        _tiny("model.autoencoder_config=", f"model.autoencoder={tmp_path / 'none.safetensors'}")
    with pytest.raises(ConfigError, match="latents come from one of codec, spectral_ae"):
        _tiny("model.autoencoder_config='{\"family\": \"diffwave\", \"model\": {}}'")


def test_generate_takes_cfg_for_latent_diffusion_and_refuses_it_elsewhere(tmp_path):
    import soundfile as sf

    from waveloom.app.generate import generate_to_folder
    from waveloom.checkpoint import save_checkpoint
    from waveloom.errors import ConfigError

    run = load_config("configs/latent_diffusion/tiny.yaml")
    ckpt = save_checkpoint(tmp_path / "ld.safetensors", _tiny(), run)
    opts = SamplingOptions(seed=0, denoising_steps=3, sampler="dpm-solver", progress=False)
    (wav,) = generate_to_folder(ckpt, tmp_path / "out", n=1, seconds=0.01, pitch=60, cfg=2.0,
                                plots=False, options=opts)
    assert len(sf.read(wav)[0]) == 160
    wrun = load_config("configs/diffwave/tiny.yaml")
    wave = save_checkpoint(tmp_path / "dw.safetensors", build_model(wrun), wrun)
    with pytest.raises(ConfigError, match="has no guidance"):
        generate_to_folder(wave, tmp_path / "o2", n=1, seconds=0.01, cfg=2.0, plots=False,
                           options=opts)
