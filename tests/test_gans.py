"""The adversarial families (WaveGAN, SpecGAN, GANSynth, MelGAN), their shared layers and
losses, the adversarial trainer and the generate / vocode / interpolate verbs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from waveloom.audio.spectral import mel_spectrogram
from waveloom.checkpoint import save_checkpoint
from waveloom.cli import main
from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.nn.gan import (
    PhaseShuffle,
    feature_matching,
    gradient_penalty,
    hinge_d,
    minibatch_stddev,
    slerp,
    wasserstein_d,
)
from waveloom.sampling.sample import sample
from waveloom.train.trainer import RESUME_FILE, load_resume_state, train

from .conftest import CONFIGS

GANS = ("wavegan", "specgan", "gansynth", "melgan")


def _tiny(family: str, overrides: list[str] | None = None):
    run = load_config(CONFIGS / family / "tiny.yaml", overrides or [])
    torch.manual_seed(0)
    return run, build_model(run)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    from waveloom.data.prepare import prepare
    from waveloom.data.synth import render_notes

    root = tmp_path_factory.mktemp("gan-data")
    render_notes(root / "notes", programs=[0], pitches=range(58, 63), velocities=[100],
                 progress=False)
    prepare(root / "notes", root / "cache", progress=False)
    return root / "cache"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Untrained tiny checkpoints of every GAN family (the verbs need no trained weights)."""
    root = tmp_path_factory.mktemp("gan-ckpt")
    out = {}
    for family in GANS:
        run, model = _tiny(family)
        out[family] = save_checkpoint(root / f"{family}.safetensors", model, run)
    return out


# ----------------------------------------------------------------------------- layers


def test_phase_shuffle_shifts_each_example_with_reflection():
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).reshape(2, 3, 10)
    assert torch.equal(PhaseShuffle(0)(x), x)
    shuffle = PhaseShuffle(2)
    seen = set()
    for seed in range(30):
        y = shuffle(x, torch.Generator().manual_seed(seed))
        assert y.shape == x.shape
        assert torch.equal(y, shuffle(x, torch.Generator().manual_seed(seed)))
        for b in range(2):
            matches = []
            for k in range(-2, 3):
                idx = [abs(i - k) if i - k < 0 else (18 - (i - k) if i - k > 9 else i - k)
                       for i in range(10)]
                if torch.equal(y[b], x[b][:, idx]):
                    matches.append(k)
            assert len(matches) == 1, "every channel moves by the same shift, reflected"
            seen.add(matches[0])
    assert seen == {-2, -1, 0, 1, 2}
    with pytest.raises(ValueError):
        PhaseShuffle(-1)


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = w.x has gradient w everywhere: the penalty is (||w|| - 1)^2 = (5 - 1)^2."""
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    gp = gradient_penalty(lambda x: x @ w, real, fake, torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(16.0, rel=1e-6)
    gp.backward()  # differentiable in the critic's parameters: d/dw (|w| - 1)^2 = 2 (5-1) w/5
    assert torch.allclose(w.grad, torch.tensor([4.8, 6.4]))
    with torch.no_grad():  # an evaluation loss still gets a value
        assert gradient_penalty(lambda x: x @ w, real, fake).item() == pytest.approx(16.0)


def test_losses_on_known_scores():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert wasserstein_d(real, fake).item() == pytest.approx(-1.0 - 1.25)
    # relu(1 - [2, .5]) = [0, .5]; relu(1 + [-2, 0]) = [0, 1]
    assert hinge_d(real, fake).item() == pytest.approx(0.25 + 0.5)
    a = [torch.ones(2, 3), torch.zeros(2, 3)]
    b = [torch.zeros(2, 3), torch.zeros(2, 3)]
    # Kumar et al. 2019, eq. 5: mean L1 within a layer, summed over layers (1 + 0).
    assert feature_matching(a, b).item() == pytest.approx(1.0)


def test_slerp_keeps_the_norm_and_hits_the_endpoints():
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([0.0, 2.0, 0.0]) / 2.0
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a, atol=1e-6) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.allclose(path.norm(dim=-1), torch.ones(5), atol=1e-6)
    assert torch.allclose(slerp(a, a, torch.tensor([0.5])), a[None])  # parallel: the line


def test_minibatch_stddev_adds_one_channel():
    x = torch.randn(8, 3, 4, 5)
    y = minibatch_stddev(x, group=4)
    assert y.shape == (8, 4, 4, 5) and torch.equal(y[:, :3], x)
    same = minibatch_stddev(torch.ones(6, 2, 3), group=4)  # group reduced to gcd(4, 6) = 2
    assert same[:, 2].abs().max() < 1e-3


# ----------------------------------------------------------------------------- models


def test_wavegan_lengths_16384_and_65536():
    run, model = _tiny("wavegan", ["model.length=16384", "model.model_dim=1"])
    assert len(model.generator.ups) == 5
    assert model.synthesize(torch.randn(1, model.latent_dim)).shape == (1, 16384)
    run, model = _tiny("wavegan", ["model.length=65536", "model.model_dim=1"])
    assert len(model.generator.ups) == 6
    z = torch.randn(2, model.latent_dim)
    audio = model.synthesize(z)
    assert audio.shape == (2, 65536)
    score, feats, _ = model.discriminator(audio[:, None])
    assert score.shape == (2,) and feats[-1].shape[-1] == 16
    with pytest.raises(ConfigError, match="16 \\* stride"):
        load_config(CONFIGS / "wavegan" / "tiny.yaml", ["model.length=1000"])


def test_spectrogram_families_image_shapes():
    _, spec = _tiny("specgan")
    audio = torch.randn(2, 1024) * 0.1
    assert spec.image(audio).shape == (2, 1, 32, 32)
    assert spec.fake_sample({"n": 3}, None).shape == (3, 1, 32, 32)
    _, gs = _tiny("gansynth")
    assert gs.analyse(torch.randn(2, 512) * 0.1).shape == (2, 2, 32, 32)


def _notes(length: int, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(length, dtype=torch.float64) / sr
    a = 0.3 * torch.sin(2 * math.pi * 440.0 * t) + 0.2 * torch.sin(2 * math.pi * 1234.5 * t + 1)
    return torch.stack([a, 0.5 * torch.sin(2 * math.pi * 261.6 * t)]).float()


@pytest.mark.parametrize("mel", [False, True])
def test_gansynth_if_round_trip(mel):
    """analyse -> invert gives the audio back: the phase from the cumulative IF is exact. The
    last window (its frame and the dropped trailing frame) is lost; the mel warp keeps the low
    partials of these tones (its rows interpolate there) and only merges bins above them."""
    _, model = _tiny("gansynth", [f"model.mel={str(mel).lower()}", "model.n_fft=256",
                                  "model.hop=64", "model.frames=64"])
    audio = _notes(model.config.length)
    back = model.invert(model.analyse(audio))
    assert back.shape == audio.shape
    inner = slice(256, model.config.length - 256)
    err = (back[:, inner] - audio[:, inner]).abs().max().item()
    assert err < 1e-3, err
    if mel:
        assert torch.allclose(model.warp.sum(dim=1), torch.ones(model.config.bins))
        flat = torch.ones(model.config.bins)
        assert torch.allclose(model.unwarp @ (model.warp @ flat), flat, atol=1e-3)


def test_melgan_mel_loss_is_hifigans_term_and_trains_the_generator():
    """``model.mel_weight`` adds weight x L1 between the log mels of the generated and the
    real window to the generator's objective only, and its gradient reaches the generator."""
    _, plain = _tiny("melgan")
    _, model = _tiny("melgan", ["model.mel_weight=45"])
    model.eval()
    plain.eval()
    batch = {"audio": _notes(1024)}
    out = model.generator_loss(batch)
    assert "reconstruction" not in plain.generator_loss(batch)
    fake = model.generator(model.mel(batch["audio"]))[..., :1024]
    expected = 45 * (model.mel(fake[:, 0]) - model.mel(batch["audio"])).abs().mean()
    assert torch.allclose(out["reconstruction"], expected, rtol=1e-4)
    assert "reconstruction" not in model.discriminator_loss(batch)
    model.train()
    real, cond = model.real_sample(batch, None)
    model.reconstruction_loss(real, model.fake_sample(cond, None), cond).backward()
    grads = [p.grad for p in model.generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    with pytest.raises(ConfigError, match="mel_weight"):
        _tiny("melgan", ["model.mel_weight=-1"])
    # the multi-resolution variant: L1 of log mels at four windows
    from waveloom.nn.codec_losses import multiscale_mel_loss

    _, multi = _tiny("melgan", ["model.mel_weight=2", "model.mel_loss=multiscale"])
    multi.eval()
    real, cond = multi.real_sample(batch, None)
    fake = multi.fake_sample(cond, None)
    want = 2 * multiscale_mel_loss(fake[:, 0], real[:, 0], 16000, log=True)
    assert torch.allclose(multi.reconstruction_loss(real, fake, cond), want)
    # the linear-STFT variant: DDSP's multi-scale spectral loss, the held-out metric's form
    from waveloom.audio.spectral import multiscale_spectral_distance

    _, spec = _tiny("melgan", ["model.mel_weight=1", "model.mel_loss=spectral"])
    spec.eval()
    real, cond = spec.real_sample(batch, None)
    fake = spec.fake_sample(cond, None)
    want = multiscale_spectral_distance(fake[:, 0], real[:, 0]).mean()
    assert torch.allclose(spec.reconstruction_loss(real, fake, cond), want)
    with pytest.raises(ConfigError, match="mel_loss"):
        _tiny("melgan", ["model.mel_loss=other"])


def test_melgan_vocodes_the_spectral_layers_mel():
    _, model = _tiny("melgan")
    model.eval()
    c = model.config
    audio = _notes(1000)
    mel = mel_spectrogram(audio, c.sample_rate, c.n_fft, c.hop, c.n_mels)
    assert torch.equal(model.mel(audio), mel)
    out = model.vocode(mel)
    assert out.shape == (2, (mel.shape[-1] - 1) * c.hop)
    assert out.abs().max() <= 1.0
    with pytest.raises(ConfigError, match=r"expected \[16, frames\]"):
        model.vocode(torch.zeros(80, 10))
    with pytest.raises(ConfigError, match="vocoder"):
        sample(model, 1, 100)


def test_gansynth_pitch_is_checked():
    _, model = _tiny("gansynth")
    with pytest.raises(ConfigError, match="outside this model's range 24..84"):
        sample(model, 1, 100, {"pitch": torch.tensor([100])})
    a = sample(model, 2, 512, {"pitch": torch.tensor([60])}, options=SamplingOptions(seed=1))
    b = sample(model, 2, 512, {"pitch": torch.tensor([61])}, options=SamplingOptions(seed=1))
    assert not torch.equal(a, b), "the pitch reaches the generator"


@pytest.mark.parametrize("family", GANS)
def test_each_player_trains_only_its_own_weights(family):
    _, model = _tiny(family)
    model.train()
    batch = model.example_batch(2, 1024)
    model.discriminator_loss(batch)["loss"].backward()
    d_grads = [p.grad for p in model.discriminator.parameters()]
    assert all(g is not None for g in d_grads) and any(g.abs().sum() > 0 for g in d_grads)
    assert all(p.grad is not None and p.grad.abs().sum() == 0
               for p in model.generator.parameters()), "D's update leaves G untouched"
    model.zero_grad(set_to_none=True)
    model.generator_loss(batch)["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.generator.parameters())


# ----------------------------------------------------------------------------- trainer


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


@pytest.mark.parametrize("family", ["wavegan", "melgan"])
def test_adversarial_training_resumes_exactly(family, cache, tmp_path):
    tiny = CONFIGS / family / "tiny.yaml"
    common = ["train.checkpoint_every=2", "train.ema_decay=0.9", "model.n_critic=2"]
    straight = train(load_config(tiny, [*common, "train.max_steps=4"]), cache, tmp_path / "a",
                     progress=False)
    assert straight.step == 4 and math.isfinite(straight.last_loss)
    train(load_config(tiny, [*common, "train.max_steps=2"]), cache, tmp_path / "b",
          progress=False)
    state = load_resume_state(tmp_path / "b" / RESUME_FILE)
    assert {"optimizer", "optimizer_d", "scheduler_d", "rng"} <= state.keys()
    resumed = train(load_config(tiny, [*common, "train.max_steps=4"]), cache, tmp_path / "b",
                    resume=True, progress=False)
    assert resumed.step == 4
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The discriminator was trained too, and the generator's export is its EMA.
    first = build_model(load_config(tiny, common)).state_dict()
    assert any(not torch.equal(first[k], a[k]) for k in a if k.startswith("discriminator."))


def test_adversarial_start_warms_the_generator_up_alone(cache, tmp_path):
    """Before ``model.adversarial_start`` only the generator moves, on its reconstruction
    loss (Parallel WaveGAN's warm-up); a family without one refuses in one line."""
    tiny = CONFIGS / "melgan" / "tiny.yaml"
    overrides = ["model.mel_weight=45", "model.adversarial_start=3"]
    for steps in (1, 3):
        train(load_config(tiny, [*overrides, f"train.max_steps={steps}"]), cache,
              tmp_path / f"warm{steps}", progress=False)
    first, after = _weights(tmp_path / "warm1"), _weights(tmp_path / "warm3")
    assert all(torch.equal(first[k], after[k]) for k in after if k.startswith("discriminator."))
    assert any(not torch.equal(first[k], after[k]) for k in after if k.startswith("generator."))
    with pytest.raises(ConfigError, match="no reconstruction loss"):
        train(load_config(CONFIGS / "wavegan" / "tiny.yaml", ["model.adversarial_start=2"]),
              cache, tmp_path / "wg", progress=False)


# ----------------------------------------------------------------------------- CLI


def test_generate_interpolate_and_vocode_in_a_subprocess(checkpoints, tmp_path):
    """One process per verb family: generate with --seed/--pitch, --interpolate, vocode."""
    mel = mel_spectrogram(_notes(800)[0], 16000, 64, 16, 16).numpy()
    np.save(tmp_path / "note.npy", mel)
    script = "; ".join([
        "import sys",
        "from waveloom.cli import main",
        "a = ['--seconds', '0.05', '--seed', '3', '-q', '--device', 'cpu']",
        f"r = [main(['generate', {str(checkpoints['wavegan'])!r}, '--out', "
        f"{str(tmp_path / 'wg')!r}, '--n', '2', *a])]",
        f"r += [main(['generate', {str(checkpoints['gansynth'])!r}, '--out', "
        f"{str(tmp_path / 'gs')!r}, '--pitch', '62', '--interpolate', '3', *a])]",
        f"r += [main(['vocode', {str(checkpoints['melgan'])!r}, {str(tmp_path / 'note.npy')!r}, "
        f"'--out', {str(tmp_path / 'voc')!r}])]",
        "sys.exit(max(r))",
    ])
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    wg = sorted((tmp_path / "wg").glob("*.wav"))
    assert [p.name for p in wg] == ["sample-0.wav", "sample-1.wav"]
    assert sf.info(str(wg[0])).frames == 800
    gs = sorted((tmp_path / "gs").glob("*.wav"))
    assert [p.name for p in gs] == ["interp-0.wav", "interp-1.wav", "interp-2.wav"]
    assert (tmp_path / "gs" / "interp-0.png").is_file()
    voc, _ = sf.read(str(tmp_path / "voc" / "note.wav"))
    assert len(voc) == (mel.shape[-1] - 1) * 16


def test_same_seed_same_files_and_interpolation_endpoints(checkpoints, tmp_path):
    from waveloom.app.generate import generate_to_folder
    from waveloom.config import SamplingOptions

    kw = {"seconds": 0.05, "device": "cpu", "plots": False,
          "options": SamplingOptions(seed=5, progress=False)}
    one = generate_to_folder(checkpoints["specgan"], tmp_path / "a", n=1, **kw)
    again = generate_to_folder(checkpoints["specgan"], tmp_path / "b", n=1, **kw)
    assert one[0].read_bytes() == again[0].read_bytes()
    path = generate_to_folder(checkpoints["specgan"], tmp_path / "c", interpolate=4, **kw)
    start, _ = sf.read(str(path[0]))
    first, _ = sf.read(str(one[0]))
    assert np.abs(start - first).max() < 1e-3


@pytest.mark.parametrize("args, message", [
    (["vocode", "{melgan}", "{bad_npy}", "--out", "{out}"], "expected [16, frames]"),
    (["vocode", "{melgan}", "{not_npy}", "--out", "{out}"], "not a .npy array"),
    (["vocode", "{wavegan}", "{good_npy}", "--out", "{out}"], "cannot vocode"),
    (["generate", "{melgan}", "--out", "{out}", "--interpolate", "3"], "no latent"),
    (["generate", "{gansynth}", "--out", "{out}", "--pitch", "100"], "range 24..84"),
    (["generate", "{wavegan}", "--out", "{out}", "--interpolate", "1"], "at least 2"),
    (["generate", "{melgan}", "--out", "{out}"], "vocoder"),
    (["generate", "{gansynth}", "--out", "{out}", "--plots", "-1"], "--plots -1: must be >= 0"),
])
def test_bad_inputs_are_one_line_errors(args, message, checkpoints, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((80, 10), dtype=np.float32))
    np.save(tmp_path / "good.npy", np.zeros((16, 10), dtype=np.float32))
    (tmp_path / "x.npy").write_text("not numpy")
    names = {**{k: str(v) for k, v in checkpoints.items()}, "bad_npy": str(tmp_path / "bad.npy"),
             "not_npy": str(tmp_path / "x.npy"), "good_npy": str(tmp_path / "good.npy"),
             "out": str(tmp_path / "out")}
    code = main([a.format(**names) for a in args] + (
        ["--seconds", "0.05", "-q", "--device", "cpu"] if args[0] == "generate" else []))
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err
    assert message in err


def test_generate_plots_only_the_first_n_samples(checkpoints, tmp_path):
    """``--plots N`` draws the rainbowgrams of the first N samples (every WAV is written);
    ``--plots 0`` none: 64 pictures cost ~20 s where a GAN's 64 notes take ~1 s."""
    for n_plots, folder in ((2, "two"), (0, "none")):
        code = main(["generate", str(checkpoints["gansynth"]), "--out", str(tmp_path / folder),
                     "--n", "3", "--plots", str(n_plots), "--seconds", "0.05", "-q",
                     "--device", "cpu"])
        assert code in (0, None)
        assert sorted(p.name for p in (tmp_path / folder).glob("*.wav")) == [
            "sample-0.wav", "sample-1.wav", "sample-2.wav"]
        assert sorted(p.name for p in (tmp_path / folder).glob("*.png")) == [
            f"sample-{i}.png" for i in range(n_plots)]


def test_vocode_and_generate_have_help():
    for verb in ("vocode", "generate"):
        with pytest.raises(SystemExit) as exc:
            main([verb, "--help"])
        assert exc.value.code == 0


def test_adversarial_training_under_two_process_ddp(cache, tmp_path):
    """Both players' updates go through DDP (every parameter gets a gradient in every backward,
    the gradient penalty's double backward included); only rank 0 reports."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "waveloom.cli", "train", str(CONFIGS / "wavegan" / "tiny.yaml"),
         "--data", str(cache), "--out", str(tmp_path / "ddp"), "--max-steps", "3",
         "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "-q"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("done: step 3") == 1


@pytest.mark.parametrize("family", ["gansynth", "melgan"])
def test_training_logs_samples(family, cache, tmp_path):
    """GANSynth logs rainbowgrams; MelGAN resynthesises the example window (its mel is not served
    by the data set)."""
    cfg = load_config(CONFIGS / family / "tiny.yaml",
                      ["train.max_steps=2", "train.sample_every=2", "train.sample_seconds=0.1"])
    train(cfg, cache, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "samples" / "step-0000002.wav").is_file()
    assert (tmp_path / "run" / "samples" / "step-0000002.png").is_file()


def test_melgan_without_excitation_is_hop_periodic_on_a_constant_mel():
    """Why the excitation exists: the plain generator is shift-equivariant by whole frames,
    so a constant mel gives an output that repeats every hop exactly (docs/melgan.md)."""
    _, model = _tiny("melgan")
    model.eval()
    hop = model.config.hop
    mel = torch.randn(1, model.config.n_mels, 1).repeat(1, 1, 40) - 5
    with torch.no_grad():
        y = model.generator(mel)[0, 0]
    middle = y[10 * hop : 30 * hop]
    assert torch.allclose(middle[:-hop], middle[hop:], atol=1e-6)


def test_melgan_excitation_carries_the_tracked_pitch():
    """With ``excitation_harmonics`` the generator hears sines at the f0 tracked from the
    audio: the output is no longer hop-periodic, and the excitation is at the note's pitch."""
    from waveloom.nn.excitation import harmonic_excitation

    _, model = _tiny("melgan", ["model.excitation_harmonics=4"])
    model.eval()
    c = model.config
    t = torch.arange(4096) / 16000
    audio = (0.3 * torch.sin(2 * math.pi * 220.0 * t))[None]
    f0 = model.f0_of(audio)
    assert f0.shape == (1, 1 + 4096 // c.hop)
    assert torch.allclose(f0[0, 5:-5], torch.full_like(f0[0, 5:-5], 220.0), rtol=5e-3)
    exc = harmonic_excitation(torch.full((1, 40), 250.0), 16000, c.hop, 4)
    assert exc.shape == (1, 4, 40 * c.hop)
    spectrum = torch.fft.rfft(exc[0, 0, 320:].double()).abs()  # 250 Hz: bin 250 * N / 16000
    peak = int(spectrum.argmax()) * 16000 / (exc.shape[-1] - 320)
    assert abs(peak - 250.0) < 16000 / (exc.shape[-1] - 320)
    assert float(harmonic_excitation(torch.full((1, 8), 5000.0), 16000, c.hop, 4)[:, 1:]
                 .abs().max()) == 0.0  # harmonics at or above Nyquist are silent
    out = model.generate(1, 4096, {"audio": audio})
    assert out.shape == (1, 4096) and torch.isfinite(out).all()
    with pytest.raises(ConfigError, match="needs the audio's f0"):
        model.vocode(model.mel(audio))
    with pytest.raises(ConfigError, match="not built yet"):
        model.export_spec()


def test_gansynth_harmonic_prior_is_the_if_of_a_harmonic_note():
    """The prior table equals the analysed IF of a harmonic tone in every bin that carries a
    partial; a generator that draws the tone's magnitudes with a zero IF residual then makes
    a sound whose partials sit at k x f0: the phase comes from the pitch label alone."""
    from waveloom.models.gansynth import harmonic_if

    sr, n_fft, hop, pitch = 16000, 256, 64, 64  # f0 329.6 Hz: 5.3 bins apart
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    _, model = _tiny("gansynth", ["model.harmonic_prior=true", "model.mel=false",
                                  f"model.n_fft={n_fft}", f"model.hop={hop}", "model.frames=64"])
    t = torch.arange(model.config.length, dtype=torch.float64) / sr
    tone = sum(0.2 / k * torch.sin(2 * math.pi * k * f0 * t + k) for k in range(1, 8)).float()
    image = model.analyse(tone[None])
    table = harmonic_if(sr, n_fft, hop, n_fft // 2, torch.tensor([pitch]))[0]
    partials = torch.round(torch.arange(1, 8) * f0 / (sr / n_fft)).long()
    got = image[0, 1, partials, 4:-4]  # frames away from the edges
    diff = wrap_unit_diff(got, table[partials, None])
    assert diff.abs().max() < 0.02, diff.abs().max()
    drawn = torch.stack([image[:, 0], torch.zeros_like(image[:, 1])], dim=1)

    def harmonic_share(label: int) -> float:  # energy within 25 Hz of a harmonic of f0
        _, linear = model.with_prior(drawn, model.pitch_index(label, 1))
        audio = model.invert(drawn, linear)[0, 1024:-1024].double()
        window = torch.hann_window(len(audio), dtype=torch.float64)
        power = torch.fft.rfft(audio * window).abs() ** 2
        ratio = torch.fft.rfftfreq(len(audio), 1 / sr) / f0
        near = ((ratio - ratio.round()).abs() * f0 < 25.0) & (ratio.round() >= 1)
        return float(power[near].sum() / power.sum())

    assert harmonic_share(pitch) > 0.95  # measured 0.997
    assert harmonic_share(pitch + 1) < 0.5  # a semitone's prior moves the partials: 0.14


def wrap_unit_diff(a, b):
    from waveloom.models.gansynth import wrap_unit

    return wrap_unit(a - b)


def test_gansynth_instrument_conditioning():
    """With ``instrument_conditioning`` the generator reads a one-hot instrument (different
    instruments, different notes from one latent), the critic's auxiliary loss adds an
    instrument head to the pitch head, and an id out of range is a one-line error."""
    _, model = _tiny("gansynth", ["model.instrument_conditioning=true",
                                  "model.harmonic_prior=true", "model.num_instruments=3"])
    model.eval()
    assert model.conditioning_keys() == ("pitch", "instrument")
    z = model.sample_latents(1, seed=0)
    a, b = (model.synthesize(z, {"pitch": 60, "instrument": i}) for i in (0, 2))
    assert not torch.allclose(a, b)
    batch = model.example_batch(4, model.config.length)
    batch["instrument"] = batch["instrument"] % 3
    _, cond = model.real_sample(batch, None)
    logits = torch.zeros(4, model.config.num_labels)
    loss, _ = model.aux_loss(logits, cond)
    expected = math.log(model.config.num_pitches) + math.log(3)  # two uniform heads
    assert abs(float(loss) - expected) < 1e-5
    assert torch.isfinite(model.loss(batch)["loss"])
    with pytest.raises(ConfigError, match="knows 0..2"):
        model.synthesize(z, {"pitch": 60, "instrument": 3})


def test_equalized_layers_scale_their_weights_at_run_time():
    """An equalised layer stores N(0, 1) weights and applies them times gain / sqrt(fan_in), so
    it equals a plain layer holding the scaled weights; GANSynth builds them on request."""
    from waveloom.nn.gan import EqualizedConv2d, EqualizedLinear

    torch.manual_seed(0)
    lin, conv = EqualizedLinear(64, 32), EqualizedConv2d(8, 4, 3, padding=1, gain=1.0)
    assert abs(float(lin.weight.std()) - 1.0) < 0.05 and float(lin.bias.abs().max()) == 0.0
    x = torch.randn(5, 64)
    torch.testing.assert_close(lin(x), x @ (lin.weight * math.sqrt(2.0) / 8.0).T)
    img = torch.randn(2, 8, 6, 6)
    expected = torch.nn.functional.conv2d(img, conv.weight / math.sqrt(72.0), conv.bias,
                                          padding=1)
    torch.testing.assert_close(conv(img), expected)
    _, model = _tiny("gansynth", ["model.equalized_lr=true"])
    assert isinstance(model.generator.dense, EqualizedLinear)
    assert isinstance(model.discriminator.convs[0], EqualizedConv2d)
