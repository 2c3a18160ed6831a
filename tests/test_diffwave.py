"""DiffWave and the diffusion samplers: schedule, paths, exactness with an oracle, seeds, errors."""

from __future__ import annotations

import math

import pytest
import torch

from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError
from waveloom.models.load import load_config
from waveloom.models.registry import build_model
from waveloom.nn.diffusion_schedule import DIFFWAVE_FAST_BETAS, NoiseSchedule
from waveloom.sampling import diffusion
from waveloom.sampling.sample import sample


def _tiny(**model):
    run = load_config("configs/diffwave/tiny.yaml")
    for key, value in model.items():
        setattr(run.model, key, value)
    torch.manual_seed(0)
    return build_model(run).eval()


def test_schedule_is_the_papers():
    s = NoiseSchedule(50, 1e-4, 0.05)
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.05)
    expected = math.prod(1 - b for b in s.betas.tolist())
    assert float(s.alpha_bar[-1]) == pytest.approx(expected, rel=1e-9)
    x0, noise = torch.ones(2, 5), torch.full((2, 5), 2.0)
    t = torch.tensor([0, 49])
    xt = s.noisy(x0, t, noise)
    a = s.alpha_bar[t].float()
    assert torch.allclose(xt[:, 0], a.sqrt() + 2 * (1 - a).sqrt())


def test_paths_subset_and_the_aligned_fast_schedule():
    s = NoiseSchedule(50, 1e-4, 0.05)
    sub = s.subset(6)
    assert sub.tau[0] == 49 and sub.tau[-1] == 0
    assert torch.all(sub.alpha_bar[1:] > sub.alpha_bar[:-1])  # noisiest first
    fast = s.aligned(DIFFWAVE_FAST_BETAS)
    assert torch.allclose(fast.betas, torch.tensor(DIFFWAVE_FAST_BETAS[::-1], dtype=torch.float64))
    assert torch.all(fast.tau[1:] < fast.tau[:-1]) and float(fast.tau.min()) >= 0
    # the cleanest fast level (beta 1e-4) is the first training step's: tau 0
    assert float(fast.tau[-1]) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError, match="trained with 50 steps"):
        s.subset(51)


class _Oracle(torch.nn.Module):
    """A 'model' of one known waveform: the exact noise prediction of x_t."""

    samplers = ("ddpm", "ddim", "dpm-solver")

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.schedule = NoiseSchedule(50, 1e-4, 0.05)
        self.target = target
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def fast_betas(self):
        return DIFFWAVE_FAST_BETAS

    def condition_input(self, labels, batch, length, audio=None, dropout=False):
        return None

    def noise_shape(self, n, length):
        return (n, length)

    def to_audio(self, x, length, labels=None, generator=None):
        return x

    def denoise(self, x, tau, cond):
        # abar at a float step: interpolate sqrt(abar) as the aligned path does
        root = self.schedule.alpha_bar.sqrt()
        lo = tau.floor().long().clamp(max=49)
        hi = (lo + 1).clamp(max=49)
        frac = (tau - lo).double()
        a = ((1 - frac) * root[lo] + frac * root[hi]).pow(2).float()[:, None]
        return (x - a.sqrt() * self.target) / (1 - a).sqrt()


@pytest.mark.parametrize("sampler,steps", [("ddim", 6), ("dpm-solver", 6), ("ddpm", 50),
                                           ("ddpm", 6), ("dpm-solver", 12)])
def test_every_sampler_lands_on_the_data_with_an_exact_denoiser(sampler, steps):
    target = 0.5 * torch.sin(torch.arange(400) / 7.0)[None].expand(2, -1)
    options = SamplingOptions(seed=1, denoising_steps=steps, sampler=sampler, progress=False)
    out = diffusion.generate(_Oracle(target), 2, 400, None, options)
    assert torch.allclose(out, target, atol=1e-3), float((out - target).abs().max())


def test_generate_is_seeded_and_refuses_bad_requests():
    model = _tiny()
    cond = {"pitch": torch.tensor([60, 64]), "instrument": torch.tensor([0, 1])}
    opts = SamplingOptions(seed=3, denoising_steps=6, sampler="dpm-solver", progress=False)
    a = sample(model, 2, 300, cond, opts)
    assert a.shape == (2, 300) and torch.equal(a, sample(model, 2, 300, cond, opts))
    assert not torch.equal(a, sample(model, 2, 300, cond, SamplingOptions(
        seed=4, denoising_steps=6, sampler="dpm-solver", progress=False)))
    with pytest.raises(ConfigError, match="--steps 0"):
        SamplingOptions(denoising_steps=0)
    with pytest.raises(ConfigError, match="this model offers ddpm, ddim, dpm-solver"):
        sample(model, 1, 100, cond, SamplingOptions(sampler="euler", progress=False))
    with pytest.raises(ConfigError, match="not a MIDI pitch"):
        sample(model, 1, 100, {"pitch": torch.tensor([200])}, SamplingOptions(progress=False))


def test_a_vocoder_reads_its_mel_and_refuses_another_shape():
    model = _tiny(conditioning="mel", n_mels=16, mel_hop=64, mel_n_fft=256,
                  upsample_factors=(8, 8))
    audio = 0.3 * torch.randn(2, 1024)
    assert torch.isfinite(model.loss(model.example_batch(2, 1024))["loss"])
    mel = model.mel_features(audio)
    opts = SamplingOptions(denoising_steps=3, sampler="ddim", progress=False)
    out = sample(model, 2, 1024, {"mel": mel}, opts)
    assert out.shape == (2, 1024)
    for key in ("prime", "audio"):  # resynthesis: the mel of the audio, as MelGAN reads it
        assert torch.equal(sample(model, 2, 1024, {key: audio}, opts), out)
    with pytest.raises(ConfigError, match="expected \\[16, frames\\] log mel"):
        sample(model, 1, 1024, {"mel": torch.zeros(1, 20, 17)}, SamplingOptions(progress=False))


def test_the_objective_corrupts_reproducibly_and_trains(notes_cache, tmp_path):
    from waveloom.train.objectives.denoising import corrupt
    from waveloom.train.trainer import train

    model = _tiny()
    batch = {"audio": torch.randn(3, 64)}
    a, b = corrupt(model, batch, 7), corrupt(model, batch, 7)
    assert torch.equal(a["noise"], b["noise"]) and torch.equal(a["diffusion_t"], b["diffusion_t"])
    assert not torch.equal(a["noise"], corrupt(model, batch, 8)["noise"])
    run = load_config("configs/diffwave/tiny.yaml", ["train.max_steps=2"])
    result = train(run, notes_cache, tmp_path / "run", progress=False)
    assert result.step == 2 and math.isfinite(result.last_loss)
    _generate_through_the_cli(tmp_path / "run" / "model.safetensors", tmp_path)


def test_the_clocks_carry_the_pitch_and_train_from_a_cache(notes_cache, tmp_path):
    from waveloom.train.trainer import train

    with pytest.raises(ConfigError, match="model.pitch_excitation=true needs model.conditioning"):
        _tiny(conditioning="mel", pitch_excitation=True, n_mels=16, mel_hop=64,
              upsample_factors=(8, 8))
    # the pitch reaches the network through the excitation alone (no pitch embedding)
    model = _tiny(pitch_conditioning=False, pitch_excitation=True, note_clock=True)
    assert model.conditioning_keys() == ("instrument", "pitch")
    assert model.batch_keys() == ("instrument", "pitch", "start")
    _, clocks = model.condition_input({"pitch": torch.tensor([69])}, 1, 16000)
    assert clocks.shape == (1, 2 + 4, 16000)
    peak_hz = torch.fft.rfft(clocks[0, 0]).abs().argmax().item()  # 1-s window: bins are Hz
    assert peak_hz == 440 and torch.all(clocks[0, 2] == 1)  # A4; the note gate is open
    torch.nn.init.normal_(model.net.head.weight)  # the head starts at zero: make it speak
    x, tau = torch.randn(1, 16000), torch.tensor([10.0])
    at = {p: model.predict(x, tau, model.condition_input({"pitch": torch.tensor([p])}, 1, 16000))
          for p in (60, 67)}
    assert not torch.allclose(at[60], at[67])
    # an onset-phased excitation is where in the period each sample of the note falls: a
    # window starting 100 samples into the note continues the note's own excitation
    onset = _tiny(pitch_excitation=True, excitation_phase="onset")
    assert onset.batch_keys() == ("pitch", "instrument", "start")
    _, whole = onset.condition_input({"pitch": torch.tensor([64])}, 1, 400)
    _, later = onset.condition_input({"pitch": torch.tensor([64]), "start": 100}, 1, 300)
    assert torch.allclose(whole[..., 100:], later, atol=1e-5)
    with pytest.raises(ConfigError, match="model.excitation_phase='zero': use one of"):
        _tiny(pitch_excitation=True, excitation_phase="zero")
    run = load_config("configs/diffwave/tiny.yaml", ["train.max_steps=2",
                                                     "model.pitch_excitation=true",
                                                     "model.note_clock=true"])
    result = train(run, notes_cache, tmp_path / "run", progress=False)
    assert result.step == 2 and math.isfinite(result.last_loss)
    _generate_through_the_cli(tmp_path / "run" / "model.safetensors", tmp_path)


def _generate_through_the_cli(ckpt, tmp_path):
    import soundfile as sf

    from waveloom.cli import main

    args = ["generate", str(ckpt), "--n", "1", "--seconds", "0.05", "--pitch", "60",
            "--steps", "6", "--sampler", "ddpm", "-q"]
    assert main([*args, "--out", str(tmp_path / "g1")]) in (0, None)
    assert main([*args, "--out", str(tmp_path / "g2")]) in (0, None)
    one, sr = sf.read(tmp_path / "g1" / "sample-0.wav")
    two, _ = sf.read(tmp_path / "g2" / "sample-0.wav")
    assert sr == 16000 and len(one) == 800 and (one == two).all()


def test_vocode_samples_a_mel_vocoder_and_refuses_a_class_model(tmp_path):
    import numpy as np

    from waveloom.app.vocode import vocode_files
    from waveloom.checkpoint import save_checkpoint

    model = _tiny(conditioning="mel", n_mels=16, mel_hop=64, mel_n_fft=256,
                  upsample_factors=(8, 8))
    run = load_config("configs/diffwave/tiny.yaml", [
        "model.conditioning=mel", "model.n_mels=16", "model.mel_hop=64", "model.mel_n_fft=256",
        "model.upsample_factors=8,8"])
    ckpt = save_checkpoint(tmp_path / "voc.safetensors", model, run)
    mel = model.mel_features(0.3 * torch.randn(1, 640))[0].numpy()
    np.save(tmp_path / "m.npy", mel)
    opts = SamplingOptions(seed=0, denoising_steps=4, sampler="ddim", progress=False)
    (wav,) = vocode_files(ckpt, [tmp_path / "m.npy"], tmp_path / "out", plots=False,
                          options=opts)
    import soundfile as sf

    assert len(sf.read(wav)[0]) == (mel.shape[-1] - 1) * 64
    with pytest.raises(ConfigError, match="only conditioning=mel vocodes"):
        _tiny().vocode_request(mel)


@pytest.mark.parametrize("steps", [6, 25])
def test_ddim_and_dpm_solver_equal_diffusers_schedulers(steps):
    """Our DDIM and DPM-Solver++(2M) against diffusers' DDIMScheduler and
    DPMSolverMultistepScheduler on the same steps, noise and exact denoiser
    (benchmarks/diffusion_samplers.py): the same samples to float rounding."""
    pytest.importorskip("diffusers")
    import math
    import sys

    from waveloom.nn.diffusion_schedule import NoiseSchedule
    from waveloom.sampling import diffusion as ours

    from .conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import diffusion_samplers as bench
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    schedule = NoiseSchedule(bench.T, bench.BETA_START, bench.BETA_END)
    t = torch.arange(bench.LENGTH, dtype=torch.float64) / 16000.0
    data = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in bench.FREQS])
    exact = bench.ExactDenoiser(schedule, data)
    x = torch.randn(3, bench.LENGTH, generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64)
    ddim, ddim_path, dpm, path = bench.schedulers(schedule, steps)
    torch.testing.assert_close(ours._ddim(exact, x.clone(), None, ddim_path, None, False),
                               bench.run_diffusers(ddim, exact, x.clone()),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(ours._dpm_solver(exact, x.clone(), None, path, None, False),
                               bench.run_diffusers(dpm, exact, x.clone()), atol=1e-4, rtol=0)


def test_recorded_steps_and_sampler_are_the_default_and_flags_override_them(tmp_path, capsys):
    """extra.sampling.steps/.sampler (scripts/ship_checkpoint.py --steps/--sampler) are what
    generate uses without --steps/--sampler, with a note; a flag wins; a bad record is one
    line naming the key."""
    import soundfile as sf

    from waveloom.checkpoint import save_checkpoint
    from waveloom.cli import main

    cfg = load_config("configs/diffwave/tiny.yaml")
    model = _tiny()
    torch.nn.init.normal_(model.net.head.weight)  # the head starts at zero: make it speak
    ckpt = save_checkpoint(tmp_path / "rec.safetensors", model, cfg,
                           extra={"sampling": {"steps": 3, "sampler": "ddim"}})

    def drawn(path, *flags):
        out = tmp_path / f"g-{path.stem}-{'-'.join(flags) or 'default'}"
        assert main(["generate", str(path), "--n", "1", "--seconds", "0.05", "--pitch", "60",
                     "--instrument", "0", "-q", "--out", str(out), *flags]) in (0, None)
        return sf.read(out / "sample-0.wav")[0]

    capsys.readouterr()
    default = drawn(ckpt)
    err = capsys.readouterr().err
    assert "note: steps 3" in err and "note: sampler ddim" in err
    assert (default == drawn(ckpt, "--steps", "3", "--sampler", "ddim")).all()
    assert not (default == drawn(ckpt, "--steps", "4")).all()
    bad = save_checkpoint(tmp_path / "bad.safetensors", model, cfg,
                          extra={"sampling": {"steps": 0}})
    capsys.readouterr()
    assert main(["generate", str(bad), "--n", "1", "--seconds", "0.05", "-q", "--out",
                 str(tmp_path / "g-bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "extra.sampling.steps=0" in err


def test_building_a_diffwave_does_not_import_dynamo():
    """The schedule is made on the CPU even under build_model's meta-device parameter count:
    `1 - betas` on the meta device runs torch's Python references, whose first use imports
    torch._dynamo (measured: ~3 s of a loaded machine's `generate` start-up)."""
    import subprocess
    import sys

    code = ("import sys\nfrom waveloom.models.load import load_config\n"
            "from waveloom.models.registry import build_model\n"
            "build_model(load_config('configs/diffwave/notes.yaml'))\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    assert out == "False"
