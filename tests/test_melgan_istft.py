"""MelGAN's iSTFT source-filter generator (``model.generator: istft``)."""

from __future__ import annotations

import math

import pytest
import torch

from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.nn.excitation import harmonic_excitation, pulse_train
from waveloom.train.trainer import train

from .conftest import CONFIGS

ISTFT = ["model.generator=istft", "model.excitation_harmonics=40", "model.istft_blocks=1",
         "model.mel_loss=spectral", "model.mel_weight=1"]
# The shipped analysis (n_fft 1024, hop 256): the tiny preset's 64-point frames are shorter
# than a 220 Hz period, so its bins cannot resolve the partials the filter shapes.
AT_16K = ["model.n_fft=1024", "model.hop=256", "model.upsample_factors=[16,16]"]


def _tiny(overrides: list[str] | None = None):
    run = load_config(CONFIGS / "melgan" / "tiny.yaml", [*ISTFT, *(overrides or [])])
    torch.manual_seed(0)
    return run, build_model(run)


def _tone(hz: float, samples: int = 4096, sr: int = 16000) -> torch.Tensor:
    return (0.3 * torch.sin(2 * math.pi * hz * torch.arange(samples) / sr))[None]


def _energy_near_harmonics(x: torch.Tensor, f0: float, sr: int = 16000) -> float:
    """Fraction of ``x``'s energy within 10 Hz of a multiple of ``f0`` (Hann-windowed FFT).
    Not YIN: on a pulse train whose period is not a whole number of samples it picks a
    multiple of the period (220 Hz reads as 73.3)."""
    power = torch.fft.rfft(x.double() * torch.hann_window(x.shape[-1], dtype=torch.float64)
                           ).abs() ** 2
    hz = torch.arange(power.shape[-1]) * sr / x.shape[-1]
    offset = torch.remainder(hz + f0 / 2, f0) - f0 / 2
    return float(power[(offset.abs() <= 10) & (hz > f0 / 2)].sum() / power.sum())


def test_pulse_train_is_the_sum_of_the_harmonic_channels():
    """Summed one harmonic at a time, it equals harmonic_excitation's channels summed (which
    hold every harmonic below Nyquist, and silence where the f0 is 0)."""
    f0 = torch.tensor([[0.0, 220.0, 230.0, 240.0, 0.0, 3000.0]])
    phase0 = torch.tensor([0.7])
    exc = harmonic_excitation(f0, 16000, 64, 12, phase0).sum(1)
    assert torch.allclose(pulse_train(f0, 16000, 64, 12, phase0), exc, atol=1e-5)
    assert float(pulse_train(torch.zeros(1, 4), 16000, 64, 12).abs().max()) == 0.0


def test_istft_generator_plays_the_tracked_pitch_not_the_frame_rate():
    """An untrained generator already carries the note's pitch: the source is a pulse train at
    the f0 tracked from the audio, and the filter cannot move its lines. The conv generator's
    failure (a constant mel -> an output periodic in the hop) cannot happen."""
    _, model = _tiny(AT_16K)
    model.eval()
    hop = model.config.hop
    audio = _tone(220.0, 8192)
    out = model.generate(1, 8192, {"audio": audio})
    assert out.shape == (1, 8192) and torch.isfinite(out).all()
    assert _energy_near_harmonics(out[0, 2048:6144], 220.0) > 0.8  # by chance: 0.09
    middle = out[0, 2048:6144]
    assert not torch.allclose(middle[:-hop], middle[hop:], atol=1e-3)


def test_istft_vocoding_is_seeded_and_needs_the_f0():
    """The shaped noise is drawn from the seed: the same seed gives the same audio, another
    seed other noise. A bare mel without f0 is refused in one line, and so is export."""
    _, model = _tiny()
    model.eval()
    audio = _tone(330.0)
    mel, f0 = model.mel(audio), model.f0_of(audio)
    a, b = model.vocode(mel, seed=1, f0=f0), model.vocode(mel, seed=1, f0=f0)
    assert torch.equal(a, b)
    assert not torch.equal(a, model.vocode(mel, seed=2, f0=f0))
    assert a.shape == (1, (mel.shape[-1] - 1) * model.config.hop)
    with pytest.raises(ConfigError, match="needs the audio's f0"):
        model.vocode(mel)
    with pytest.raises(ConfigError, match="not built yet"):
        model.export_spec()


@pytest.mark.parametrize("overrides, message", [
    (["model.generator=wavetable"], "use conv or istft"),
    (["model.excitation_harmonics=0"], "filters a pulse train"),
])
def test_istft_config_errors_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _tiny(overrides)


def test_istft_generator_learns_a_tones_spectrum():
    """The spectral loss trains the frame-rate filter: 40 Adam steps on one tone cut it by
    more than a third (the head starts quiet, so the first error is the tone's level)."""
    _, model = _tiny()
    audio = _tone(440.0, 2048)
    real, cond = model.real_sample({"audio": audio}, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.generator.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        gen = torch.Generator().manual_seed(step)
        loss = model.reconstruction_loss(real, model.fake_sample(cond, gen), cond)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.65 * losses[0]


def test_istft_melgan_trains_through_the_trainer(tmp_path):
    """Warm-up then the discriminators, end to end on the tiny preset's layout."""
    from waveloom.data.prepare import prepare
    from waveloom.data.synth import render_notes

    render_notes(tmp_path / "notes", programs=[0], pitches=range(60, 62), velocities=[100],
                 progress=False)
    prepare(tmp_path / "notes", tmp_path / "cache", progress=False)
    run, _ = _tiny(["model.adversarial_start=2", "train.max_steps=4"])
    train(run, tmp_path / "cache", tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_a_silent_window_keeps_finite_gradients():
    """On silence the source is zero; a noise head pushed far down must still not give an
    all-zero frame, whose magnitude's gradient is 0/0 (what sent a CPU run to NaN)."""
    _, model = _tiny()
    with torch.no_grad():
        model.generator.head.bias.fill_(-300.0)
    real, cond = model.real_sample({"audio": torch.zeros(1, 2048)}, torch.Generator())
    loss = model.reconstruction_loss(real, model.fake_sample(cond, torch.Generator()), cond)
    loss.backward()
    grads = [p.grad for p in model.generator.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_the_flat_mel_inverse_returns_a_flat_spectrum():
    """mel = fb @ |X|: for a flat |X| the inverse gives it back in every covered bin, and the
    band widths grow from ~2.6 bins (linear part of the Slaney scale) upwards."""
    from waveloom.audio.spectral import mel_filterbank
    from waveloom.models.melgan_istft import mel_prior_matrix

    fb = mel_filterbank(16000, 1024, 80)
    inverse, width = mel_prior_matrix(fb)
    flat = inverse @ (fb @ torch.full((513,), 3.0))
    assert torch.allclose(flat[1:-1], torch.full((511,), 3.0), rtol=1e-4)
    assert 2.0 < float(width[20]) < 3.5 and float(width[400]) > 10 * float(width[20]) / 2


def test_the_mel_prior_alone_puts_partials_near_their_level():
    """With the head zeroed, the prior's estimate of a tone's partials (from its mel and f0
    alone) lands within a factor of 2.5 of the truth on its first 6 partials: the network
    starts from a vocoder, and learns corrections."""
    from waveloom.audio.spectral import stft

    _, model = _tiny([*AT_16K, "model.n_mels=80", "model.mel_prior=true"])
    model.eval()
    with torch.no_grad():
        model.generator.head.weight.zero_()
    t = torch.arange(16384) / 16000
    audio = sum(0.3 / k * torch.sin(2 * math.pi * 196.0 * k * t) for k in range(1, 7))[None]
    out = model.generate(1, 16384, {"audio": audio})
    frame = 30
    x, y = (stft(a[0], 1024, 256).abs()[:, frame] for a in (audio, out))
    peaks = [round(196.0 * k * 1024 / 16000) for k in range(1, 7)]
    ratio = y[peaks] / x[peaks]
    assert bool(((ratio > 0.4) & (ratio < 2.5)).all()), ratio


def test_vocode_verb_plays_a_mel_with_its_f0(tmp_path):
    """``vocode CKPT MEL.npy --f0 F0.npy``: a bare mel plus its f0 per frame is vocoded; the
    counts must match, the f0 must fit the mel, and a model without an excitation refuses
    --f0, each in one line."""
    import numpy as np

    from waveloom.app.vocode import vocode_files
    from waveloom.checkpoint import save_checkpoint

    run, model = _tiny()
    ckpt = save_checkpoint(tmp_path / "istft.safetensors", model, run)
    audio = _tone(330.0)
    mel, f0 = model.mel(audio)[0].numpy(), model.f0_of(audio)[0].numpy()
    np.save(tmp_path / "note.npy", mel)
    np.save(tmp_path / "note-f0.npy", f0)
    np.save(tmp_path / "short-f0.npy", f0[:-3])
    [wav] = vocode_files(ckpt, [tmp_path / "note.npy"], tmp_path / "out", plots=False,
                         f0s=[tmp_path / "note-f0.npy"])
    import soundfile as sf

    assert sf.info(str(wav)).frames == (mel.shape[-1] - 1) * run.model.hop
    with pytest.raises(ConfigError, match="1 mel"):
        vocode_files(ckpt, [tmp_path / "note.npy"], tmp_path / "o", plots=False,
                     f0s=[tmp_path / "note-f0.npy"] * 2)
    with pytest.raises(ConfigError, match="one a frame"):
        vocode_files(ckpt, [tmp_path / "note.npy"], tmp_path / "o", plots=False,
                     f0s=[tmp_path / "short-f0.npy"])
    with pytest.raises(ConfigError, match="--f0 F0.npy"):
        vocode_files(ckpt, [tmp_path / "note.npy"], tmp_path / "o", plots=False)
    plain_run = load_config(CONFIGS / "melgan" / "tiny.yaml", [])
    plain = save_checkpoint(tmp_path / "plain.safetensors", build_model(plain_run), plain_run)
    with pytest.raises(ConfigError, match="plays no pitch excitation"):
        vocode_files(plain, [tmp_path / "note.npy"], tmp_path / "o", plots=False,
                     f0s=[tmp_path / "note-f0.npy"])
