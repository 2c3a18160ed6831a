"""The WaveNet family: configs, loss, overfitting, generation, and the two samplers agreeing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from waveloom.audio.mulaw import quantize
from waveloom.config import SamplingOptions
from waveloom.errors import ConfigError, DataError
from waveloom.models.load import build_run_config, load_config
from waveloom.models.registry import build_model
from waveloom.models.wavenet import WaveNet, WaveNetConfig
from waveloom.sampling import sample_incremental, sample_naive
from waveloom.sampling.sample import sample, vocode

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

TINY = dict(
    residual_channels=8,
    dilation_channels=8,
    skip_channels=16,
    end_channels=16,
    layers_per_stack=3,
    stacks=2,
    num_instruments=4,
    cond_dim=4,
)


def _model(seed=0, **overrides) -> WaveNet:
    torch.manual_seed(seed)
    return WaveNet(WaveNetConfig(**{**TINY, **overrides})).eval()


def _cond(model, n=2, length=64, seed=0):
    batch = model.example_batch(n, length, seed=seed)
    return {k: v for k, v in batch.items() if k != "audio"}


def _sine_clip(length: int) -> torch.Tensor:
    t = torch.arange(length) / 16000.0
    return 0.6 * torch.sin(2 * math.pi * 250 * t) + 0.2 * torch.sin(2 * math.pi * 500 * t + 1)


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", ["tiny", "small", "nsynth"])
def test_presets_load_and_build(name):
    run = load_config(CONFIGS / "wavenet" / f"{name}.yaml")
    assert run.family == "wavenet"
    model = build_model(run)
    size_mb = sum(p.numel() for p in model.parameters()) * 4 / 1e6
    if name == "small":
        assert size_mb <= 20, "the shipped demo must stay under 20 MB"
        assert model.context >= 1000  # several periods of low notes at 16 kHz
    if name == "nsynth":
        c = run.model
        assert (c.stacks, c.layers_per_stack, c.kernel_size) == (3, 10, 3)
        assert (c.residual_channels, c.skip_channels) == (512, 256)
        assert model.context == 1 + 2 * (1 + 3 * 1023)


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"stacks": 0}, "model.stacks=0"),
        ({"head": "laplace"}, "model.head='laplace'"),
        ({"input": "waveform"}, "model.input"),
        ({"kernel_size": 1}, "model.kernel_size"),
        ({"local": "mel", "local_hop": 256, "upsample_factors": [16, 8]}, "multiply to 128"),
        ({"local": "roll", "local_channels": 80}, "local_channels=128"),
        ({"head": "logistic_mixture", "mixture_levels": 1000}, "mixture_levels"),
        ({"cond_dropout": 1.0}, "cond_dropout"),
        ({"locale": "roll"}, "did you mean 'local'"),
    ],
)
def test_config_validation_names_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match) as err:
        build_run_config({"family": "wavenet", "model": {**TINY, **overrides}})
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- training side


@pytest.mark.parametrize("head", ["categorical", "logistic_mixture"])
def test_loss_metrics_and_log_prob_agree(head):
    model = _model(head=head, mixture_components=3)
    batch = model.example_batch(2, model.context + 100)
    out = model.loss(batch)
    assert set(out) == {"loss", "bits_per_sample", "accuracy"}
    assert torch.isfinite(out["loss"]) and 0 <= out["accuracy"] <= 1
    torch.testing.assert_close(out["bits_per_sample"], out["loss"].detach() / math.log(2))
    logp = model.log_prob(batch)
    assert logp.shape == (2, 100)  # one value per predicted sample
    torch.testing.assert_close(-logp.mean(), out["loss"].detach())
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_prediction_t_reads_exactly_the_context_samples_before_t():
    model = _model()
    ctx = model.context
    batch = model.example_batch(1, ctx + 50)
    before = model.log_prob(batch)

    def perturbed(index):
        audio = batch["audio"].clone()
        audio[:, index] = -audio[:, index] + 0.5
        return model.log_prob(dict(batch, audio=audio))

    # Sample ctx + 10 is the target of prediction 10 and is never an input before it.
    after = perturbed(ctx + 10)
    assert torch.equal(before[:, :10], after[:, :10])
    assert not torch.equal(before[:, 10], after[:, 10])
    # Sample 0 is only inside prediction 0's receptive field.
    assert torch.equal(before[:, 1:], perturbed(0)[:, 1:])
    with pytest.raises(DataError, match="raise data.window"):
        model.loss(model.example_batch(1, ctx))


def test_local_conditioning_batch_runs_and_is_required():
    model = _model(local="mel", local_channels=5, local_hop=16, upsample_factors=[4, 4])
    assert model.conditioning_keys() == ("pitch", "instrument", "mel")
    batch = model.example_batch(2, model.context + 64)
    assert batch["mel"].shape == (2, 5, (model.context + 64) // 16)
    assert torch.isfinite(model.loss(batch)["loss"])
    roll = _model(local="roll", local_channels=128, local_hop=16, upsample_factors=[4, 4])
    batch = roll.example_batch(2, roll.context + 64)
    batch.pop("roll")
    with pytest.raises(DataError, match="'roll'"):
        roll.loss(batch)


# --------------------------------------------------------------------------- mel vocoder


def _mel_model(**overrides) -> WaveNet:
    return _model(local="mel", local_channels=16, local_hop=16, upsample_factors=[4, 4],
                  mel_n_fft=64, pitch_conditioning=False, instrument_conditioning=False,
                  **overrides)


def test_mel_wavenet_takes_its_mel_from_the_window_like_melgan():
    """A training batch needs no 'mel': it is the window's own mel, in MelGAN's layout."""
    model = _mel_model()
    assert model.conditioning_keys() == ("mel",)
    assert model.batch_keys() == ()
    audio = _sine_clip(model.context + 200)[None].repeat(2, 1)
    mel = model.mel_features(audio)
    assert mel.shape == (2, 16, 1 + audio.shape[-1] // 16)
    own = model.loss({"audio": audio})["loss"]
    given = model.loss({"audio": audio, "mel": mel})["loss"]
    assert torch.equal(own, given)
    other = model.loss({"audio": audio, "mel": torch.zeros_like(mel) - 5})["loss"]
    assert not torch.equal(own, other)


def test_mel_wavenet_resynthesises_audio_and_vocodes_mels():
    model = _mel_model()
    audio = _sine_clip(480)[None]
    mel = model.mel_features(audio)
    from_audio = sample(model, 1, 480, {"audio": audio},
                        options=SamplingOptions(seed=3, progress=False))
    from_mel = sample(model, 1, 480, {"mel": mel}, options=SamplingOptions(seed=3, progress=False))
    assert torch.equal(from_audio, from_mel)
    out = vocode(model, mel[0], options=SamplingOptions(seed=3))  # [M, F] is one mel
    assert out.shape == (1, (mel.shape[-1] - 1) * 16)
    assert torch.equal(out, vocode(model, mel[0], options=SamplingOptions(seed=3)))
    with pytest.raises(ConfigError, match=r"expected \[16, frames\] log mel"):
        vocode(model, torch.zeros(8, 10))
    with pytest.raises(ConfigError, match=r"or cond\['audio'\] to resynthesise"):
        sample(model, 1, 480, {}, options=SamplingOptions(progress=False))
    with pytest.raises(ConfigError, match="model.local=mel"):
        vocode(_model(), mel)


@pytest.mark.parametrize("overrides, message", [
    ({"mel_n_fft": 8}, "shorter than model.local_hop"),
    ({"mel_fmax": 9000.0}, "fmax <= sample_rate / 2"),
    ({"mel_fmin": 500.0, "mel_fmax": 400.0}, "0 <= fmin < fmax"),
])
def test_mel_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        WaveNetConfig(**{**TINY, "local": "mel", "local_channels": 16, "local_hop": 16,
                         "upsample_factors": [4, 4], **overrides}).validate()


def test_mel_wavenet_and_melgan_read_the_same_mel():
    """The vocoder preset's mel is MelGAN's: one array vocodes through either family."""
    from waveloom.models.melgan import MelGAN

    wavenet = build_model(load_config(CONFIGS / "wavenet" / "small-mel.yaml"))
    melgan = build_model(load_config(CONFIGS / "melgan" / "small.yaml"))
    assert isinstance(melgan, MelGAN)
    assert wavenet.mel_features == melgan.mel_features


def test_tiny_wavenet_overfits_a_clip_and_then_continues_it():
    torch.manual_seed(0)
    model = build_model(load_config(CONFIGS / "wavenet" / "tiny.yaml"))
    clip = _sine_clip(model.context + 512 + 300)
    batch = {
        "audio": clip[None, : model.context + 512],
        "pitch": torch.tensor([59]),
        "instrument": torch.tensor([1]),
    }
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    first = None
    for _ in range(80):
        opt.zero_grad()
        loss = model.loss(batch)["loss"]
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert first > 4.0 and loss.item() < 0.3, (first, loss.item())
    # The memorised periodic signal must continue in phase from a prime: this checks the
    # one-sample shift and the sampler's alignment end to end.
    model.eval()
    prime_len = model.context + 100
    cond = {
        "pitch": batch["pitch"],
        "instrument": batch["instrument"],
        "prime": clip[None, :prime_len],
    }
    out = sample(model, 1, 200, cond,
                 options=SamplingOptions(temperature=0.05, seed=0, progress=False))
    target = clip[prime_len : prime_len + 200]
    assert (out[0] - target).abs().mean() < 0.02


# --------------------------------------------------------------------------- sampling


def test_generate_shape_range_and_determinism():
    model = _model()
    cond = _cond(model)
    a = sample(model, 2, 120, cond, options=SamplingOptions(seed=7, progress=False))
    b = sample(model, 2, 120, cond, options=SamplingOptions(seed=7, progress=False))
    c = sample(model, 2, 120, cond, options=SamplingOptions(seed=8, progress=False))
    assert a.shape == (2, 120) and a.dtype == torch.float32
    assert a.abs().max() <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"input": "onehot", "kernel_size": 3},
        {"head": "logistic_mixture", "mixture_components": 3},
        {"head": "logistic_mixture", "mixture_components": 2, "mixture_levels": 65536},
        {"local": "roll", "local_channels": 128, "local_hop": 8, "upsample_factors": [2, 4]},
        {"local": "roll", "local_channels": 128, "local_hop": 8, "upsample_factors": [2, 4],
         "roll_excitation": True},
        {"pitch_conditioning": False, "instrument_conditioning": False},
    ],
    ids=["softmax", "onehot-k3", "mixture", "mixture16", "roll", "roll-excitation",
         "unconditional"],
)
def test_incremental_and_naive_samplers_give_the_same_codes(overrides):
    model = _model(**overrides)
    cond = _cond(model, length=model.context + 200)
    kwargs = dict(temperature=0.9, seed=11, progress=False)
    fast = sample_incremental(model, 2, 90, cond, **kwargs)
    slow = sample_naive(model, 2, 90, cond, **kwargs)
    assert torch.equal(fast, slow)
    prime = 0.3 * torch.randn(2, 23)  # shorter than the context: padded with silence
    fast = sample_incremental(model, 2, 40, cond, prime=prime, **kwargs)
    slow = sample_naive(model, 2, 40, cond, prime=prime, **kwargs)
    assert torch.equal(fast, slow)


def test_prime_fills_the_history_and_long_primes_are_cropped():
    model = _model()
    ctx = model.context
    cond = {k: v[:1] for k, v in _cond(model).items()}
    prime = 0.5 * torch.sin(torch.arange(3 * ctx) / 3.0)
    plan = model.sampling_plan(1, 50, dict(cond, prime=prime))
    assert torch.equal(plan.prefix[0], quantize(prime[-ctx:]))
    short = model.sampling_plan(1, 50, dict(cond, prime=prime[-7:]))
    silence = int(quantize(torch.zeros(())))
    assert (short.prefix[0, :-7] == silence).all() and short.prefix.shape == (1, ctx)
    plain = model.sampling_plan(1, 50, cond)
    assert (plain.prefix == silence).all()
    # Only the last `context` samples of a prime matter.
    primed = sample(model, 1, 50, dict(cond, prime=prime),
                    options=SamplingOptions(seed=0, progress=False))
    cropped = sample(model, 1, 50, dict(cond, prime=prime[-ctx:]),
                     options=SamplingOptions(seed=0, progress=False))
    assert torch.equal(primed, cropped)


def test_generate_rejects_bad_conditioning_in_one_line():
    model = _model(local="roll", local_channels=128, local_hop=8, upsample_factors=[8])
    cond = _cond(model, length=400)
    with pytest.raises(ConfigError, match="cond\\['roll'\\]"):
        sample(model, 2, 50, {k: v for k, v in cond.items() if k != "roll"},
               options=SamplingOptions(progress=False))
    with pytest.raises(ConfigError, match="num_instruments=4"):
        sample(model, 2, 50, dict(cond, instrument=torch.tensor([0, 9])),
               options=SamplingOptions(progress=False))
    with pytest.raises(ConfigError, match="pass more frames"):
        sample(model, 2, 1000, cond, options=SamplingOptions(progress=False))
    with pytest.raises(ConfigError, match="temperature"):
        sample(model, 2, 10, cond, options=SamplingOptions(temperature=0.0, progress=False))


def test_unknown_labels_are_accepted():
    model = _model(cond_dropout=0.1)
    out = sample(model, 2, 20, {"pitch": torch.tensor([-1, 60])},
                 options=SamplingOptions(seed=0, progress=False))
    assert out.shape == (2, 20)


def test_activation_checkpointing_gives_the_same_loss_and_gradients():
    """Recomputing blocks on backward must not change the maths, only the memory."""
    from .conftest import CONFIGS

    grads = []
    for flag in (False, True):
        run = load_config(CONFIGS / "wavenet" / "tiny.yaml",
                          [f"model.checkpoint_activations={flag}"])
        torch.manual_seed(0)
        model = build_model(run).train()
        batch = model.example_batch(2, model.context + 128, seed=0)
        loss = model.loss(batch)["loss"]
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6)
    for a, b in zip(grads[0][1], grads[1][1]):
        assert torch.allclose(a, b, atol=1e-6)


def test_pitch_excitation_clock_is_exact_and_sampled_consistently():
    """The sin/cos pitch clock: right period, silent for unknown pitch, same codes from the
    incremental and the naive samplers."""
    from waveloom.sampling.incremental import sample_incremental, sample_naive

    from .conftest import CONFIGS

    run = load_config(CONFIGS / "wavenet" / "tiny.yaml", ["model.pitch_excitation=true"])
    torch.manual_seed(0)
    model = build_model(run).eval()
    exc = model._excitation(torch.tensor([69, -1]), torch.arange(16000).expand(2, -1),
                            random_phase=False)
    assert exc.shape == (2, 2, 16000)
    spectrum = torch.fft.rfft(exc[0, 0]).abs()
    assert int(spectrum.argmax()) == 440  # 1 s at 16 kHz: bin k is k Hz
    assert exc[1].abs().max() == 0
    batch = model.example_batch(2, model.context + 64)
    assert torch.isfinite(model.loss(batch)["loss"])
    cond = {"pitch": torch.tensor([60, 72]), "instrument": torch.tensor([0, 1])}
    a = sample_incremental(model, 2, 40, cond, temperature=1.0, seed=3, progress=False)
    b = sample_naive(model, 2, 40, cond, temperature=1.0, seed=3, progress=False)
    assert torch.equal(a, b)


def test_note_clock_features_and_training_sampling_alignment():
    """The note clock: a gate and decays of the right time scale; and the teacher-forced
    parameters of the training path (a window from -context, its 'start') equal those of a
    parallel pass over the sampler's plan, so the model sees the same clock when sampling."""
    from waveloom.audio.mulaw import quantize
    from waveloom.nn.pitch_clock import NOTE_CLOCK_TAUS

    from .conftest import CONFIGS

    run = load_config(CONFIGS / "wavenet" / "tiny.yaml", ["model.note_clock=true"])
    torch.manual_seed(0)
    model = build_model(run).eval()
    sr = run.model.sample_rate
    t0 = int(NOTE_CLOCK_TAUS[0] * sr)
    clock = model._note_clock(torch.tensor([[-5, 0, t0]]))
    assert clock[0, 0].tolist() == [0.0, 1.0, 1.0]  # gate
    assert clock[0, 1:, 0].abs().max() == 0  # silent before the onset
    assert torch.allclose(clock[0, 1:, 1], torch.ones(len(NOTE_CLOCK_TAUS)))
    assert abs(float(clock[0, 1, 2]) - math.exp(-1)) < 1e-6

    n, length, ctx = 2, 300, model.context
    cond = {"pitch": torch.tensor([60, 64]), "instrument": torch.tensor([0, 1])}
    audio = 0.3 * torch.sin(torch.arange(length) / 7.0).expand(n, -1)
    batch = {"audio": torch.cat([torch.zeros(n, ctx), audio], dim=1), **cond,
             "start": torch.full((n,), -ctx)}
    with torch.no_grad():
        train_params, targets = model._params(batch)
        plan = model.sampling_plan(n, length, cond, None)
        seq = torch.cat([plan.prefix, quantize(audio[:, :-1])], dim=1)
        out = model.stack(seq, plan.g, plan.local[..., 1 : ctx + length], padded=True)
    assert torch.allclose(out[..., ctx - 1 :], train_params, atol=1e-5)
    # and the clock matters: a window that claims to start elsewhere scores differently
    shifted = {**batch, "start": torch.full((n,), 4000)}
    with torch.no_grad():
        assert not torch.allclose(model._params(shifted)[0], train_params, atol=1e-3)
    assert model.batch_keys()[-1] == "start"


def test_onset_phase_excitation_is_aligned_between_training_and_sampling():
    """excitation_phase='onset': the pitch clock starts at phase 0 on the note's onset and is
    silent before it, and the training path's parameters equal a parallel pass over the
    sampler's plan (so the sampled note sees the phase it was trained with)."""
    from waveloom.audio.mulaw import quantize

    from .conftest import CONFIGS

    run = load_config(CONFIGS / "wavenet" / "tiny.yaml",
                      ["model.pitch_excitation=true", "model.excitation_phase=onset"])
    torch.manual_seed(0)
    model = build_model(run).eval()
    assert model.batch_keys()[-1] == "start"
    exc = model._excitation(torch.tensor([69]), torch.arange(-3, 16000 - 3)[None],
                            random_phase=True)
    assert exc[0, :, :3].abs().max() == 0  # silent before the onset
    assert float(exc[0, 0, 3]) == 0.0 and float(exc[0, 1, 3]) == 1.0  # phase 0 at the onset
    assert int(torch.fft.rfft(exc[0, 0, 3:]).abs().argmax()) == 440

    n, length, ctx = 2, 300, model.context
    cond = {"pitch": torch.tensor([60, 64]), "instrument": torch.tensor([0, 1])}
    audio = 0.3 * torch.sin(torch.arange(length) / 7.0).expand(n, -1)
    batch = {"audio": torch.cat([torch.zeros(n, ctx), audio], dim=1), **cond,
             "start": torch.full((n,), -ctx)}
    with torch.no_grad():
        train_params, _ = model._params(batch)
        plan = model.sampling_plan(n, length, cond, None)
        seq = torch.cat([plan.prefix, quantize(audio[:, :-1])], dim=1)
        out = model.stack(seq, plan.g, plan.local[..., 1 : ctx + length], padded=True)
    assert torch.allclose(out[..., ctx - 1 :], train_params, atol=1e-5)
    with pytest.raises(ConfigError, match="excitation_phase"):
        load_config(CONFIGS / "wavenet" / "tiny.yaml", ["model.excitation_phase=zero"])


def test_input_noise_corrupts_only_the_training_history():
    """model.input_noise: training sees a noisy history (the loss changes, the targets do
    not), evaluation and sampling see the clean one."""
    from .conftest import CONFIGS

    clean = load_config(CONFIGS / "wavenet" / "tiny.yaml")
    noisy = load_config(CONFIGS / "wavenet" / "tiny.yaml", ["model.input_noise=0.5"])
    torch.manual_seed(0)
    a = build_model(clean)
    b = build_model(noisy)
    b.load_state_dict(a.state_dict())
    batch = a.example_batch(2, a.context + 256, seed=1)
    batch["audio"] = 0.5 * torch.sin(torch.arange(batch["audio"].shape[-1]) / 5.0).expand(2, -1)
    a.eval(), b.eval()
    with torch.no_grad():
        assert torch.equal(a.log_prob(batch), b.log_prob(batch))
    a.train(), b.train()
    for m in (a, b):
        m.global_cond.dropout = 0.0
    with torch.no_grad():
        torch.manual_seed(2)
        la = a.loss(batch)["loss"]
        torch.manual_seed(2)
        lb = b.loss(batch)["loss"]
    assert not torch.allclose(la, lb)
    with pytest.raises(ConfigError, match="input_noise"):
        load_config(CONFIGS / "wavenet" / "tiny.yaml", ["model.input_noise=-1"])


def test_vocode_verb_runs_a_mel_wavenet_and_refuses_a_plain_one(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from waveloom.checkpoint import save_checkpoint
    from waveloom.cli import main

    overrides = ["model.local=mel", "model.local_channels=16", "model.local_hop=16",
                 "model.upsample_factors=[4,4]", "model.mel_n_fft=64"]
    run = load_config(CONFIGS / "wavenet" / "tiny.yaml", overrides)
    torch.manual_seed(0)
    mel_ckpt = save_checkpoint(tmp_path / "mel.safetensors", build_model(run), run)
    plain = load_config(CONFIGS / "wavenet" / "tiny.yaml")
    plain_ckpt = save_checkpoint(tmp_path / "plain.safetensors", build_model(plain), plain)
    np.save(tmp_path / "note.npy", build_model(run).mel_features(_sine_clip(800)).numpy())
    args = ["vocode", str(mel_ckpt), str(tmp_path / "note.npy"), "--threads", "1"]
    assert main(args + ["--out", str(tmp_path / "a"), "--seed", "2"]) == 0
    assert main(args + ["--out", str(tmp_path / "b"), "--seed", "2"]) == 0
    wav = tmp_path / "a" / "note.wav"
    audio, sr = sf.read(str(wav))
    assert sr == 16000 and len(audio) == (1 + 800 // 16 - 1) * 16
    assert wav.read_bytes() == (tmp_path / "b" / "note.wav").read_bytes()
    capsys.readouterr()
    assert main(["vocode", str(plain_ckpt), str(tmp_path / "note.npy"),
                 "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.local=mel" in err and "\n" not in err


@pytest.mark.parametrize("phase", ["random", "onset"])
def test_clock_features_stream_span_by_span_and_equal_the_full_length_ones(phase):
    """#19: the plan computes the note clock and excitation per span (an hour of them would
    not fit); every span, however it is cut, is bitwise the old full-length tensor."""
    from waveloom.models.plan import LocalFeatures

    model = _model(note_clock=True, pitch_excitation=True, excitation_phase=phase,
                   local="roll", local_channels=128, local_hop=8, upsample_factors=[8])
    n, length, ctx = 3, 9000, model.context
    cond = _cond(model, n=n, length=ctx + length + 64)
    cond["prime"] = 0.3 * torch.sin(torch.arange(70) / 5.0)
    cond["roll"] = cond["roll"][..., : (70 + length) // 8 + 1]
    plan = model.sampling_plan(n, length, cond)
    assert isinstance(plan.local, LocalFeatures) and plan.local.shape == (n, 128 + 6, ctx + length)
    whole = plan.local.materialise()
    # The old way: the whole timeline at once.
    times = (torch.arange(ctx + length) - ctx + 70)[None].expand(n, -1)
    exc_times = times if phase == "onset" else torch.arange(ctx + length)[None].expand(n, -1)
    kept = min(70, ctx)
    up = model._local(cond["roll"].float(), 70 + length, "cond")[..., 70 - kept :]
    up = torch.cat([up.new_zeros(n, 128, ctx - kept), up], -1)
    old = torch.cat([up, model._excitation(cond["pitch"], exc_times, False),
                     model._note_clock(times)], 1)
    assert torch.equal(whole, old)
    for lo, hi in ((0, 1), (5, 4100), (4095, 4097), (ctx + length - 3, ctx + length + 9)):
        assert torch.equal(plan.local[..., lo:hi], old[..., lo:hi])
    assert torch.equal(plan.local[1:2, :, 17:300], old[1:2, :, 17:300])


def test_streamed_features_draw_the_same_codes_as_whole_ones(monkeypatch):
    """Sampling on the span-by-span features gives the tokens of the materialised tensor
    (the plan before #19) on the fast and torch engines, streamed or not."""
    from waveloom.models.plan import SamplingPlan
    from waveloom.sampling.sample import sample_stream

    model = _model(note_clock=True, pitch_excitation=True)
    cond = {"pitch": torch.tensor([60, 67]), "instrument": torch.tensor([0, 1])}
    runs = {}
    original = WaveNet.sampling_plan

    def whole_plan(self, *args, **kwargs):
        plan = original(self, *args, **kwargs)
        return SamplingPlan(plan.prefix, plan.g, plan.local.materialise())

    for kind in ("lazy", "whole"):
        if kind == "whole":
            monkeypatch.setattr(WaveNet, "sampling_plan", whole_plan)
        for engine in ("fast", "torch"):
            options = SamplingOptions(seed=4, engine=engine, progress=False)
            runs[kind, engine] = sample(model, 2, 5000 if engine == "fast" else 300, cond,
                                        options)
        runs[kind, "stream"] = torch.cat(list(sample_stream(
            model, 2, 9000, cond, SamplingOptions(seed=5, engine="fast", progress=False),
            segment=4500)), 1)
    for key in ("fast", "torch", "stream"):
        assert torch.equal(runs["lazy", key], runs["whole", key])
